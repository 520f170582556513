// Where calibration windows come from: a file of windows (JSON lines, JSON or CSV), the
// simulator, or the gateway's own SQLite log of the live stream (the data never leaves the
// gateway). Each source also gives held-out windows to check the quantized model on.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { featureShape, type ModelCard } from '../model';
import { type ModelSignature, type TensorMap, type TensorSpec, formatShape, syntheticFeeds } from '../engine';
import { EdgeInferError } from '../errors';
import { MODERATE, featuresOf, simulatedWindows } from '../eval';
import { ResultStore } from '../store';
import { readInputWindows } from '../stream';
import type { HeldOut } from './compare';

export type CalibrationSource = { kind: 'file'; file: string } | { kind: 'sim'; seed: number } | { kind: 'db'; file: string };

/** `sim`, `sim:<seed>`, `db:<file>` (or a .db / .sqlite file), or a window file. */
export function parseCalibrationSource(text: string): CalibrationSource {
  if (text === 'sim') return { kind: 'sim', seed: 1 };
  const sim = /^sim:(\d+)$/.exec(text);
  if (sim) return { kind: 'sim', seed: Number(sim[1]) };
  if (text.startsWith('db:')) return { kind: 'db', file: text.slice(3) };
  if (['.db', '.sqlite', '.sqlite3'].includes(path.extname(text).toLowerCase())) return { kind: 'db', file: text };
  if (text.trim() === '') throw new EdgeInferError('E_ARGUMENT', 'calibration source is empty: expected sim, sim:<seed>, db:<file> or a file of windows');
  return { kind: 'file', file: text };
}

export function describeSource(source: CalibrationSource): string {
  if (source.kind === 'sim') return `simulator (seed ${source.seed})`;
  if (source.kind === 'db') return `result log ${source.file}`;
  return `file ${source.file}`;
}

export interface CalibrationSet {
  calibration: TensorMap[];
  heldOut: HeldOut;
  description: string;
}

const asFeeds = (card: ModelCard, features: readonly Float32Array[]): TensorMap[] => {
  const dims = featureShape(card.input);
  return features.map((f) => ({ [card.input.tensor]: { type: 'float32', data: f, dims } }));
};

/** Windows read for `samples` calibration windows: a quarter more, for the held-out fifth. */
const withHeldOut = (samples: number): number => Math.ceil(samples * 1.25);

/** The first four fifths (at least one) to calibrate on, the rest held out. */
function split(windows: TensorMap[]): { calibration: TensorMap[]; heldOut: TensorMap[] } {
  const at = Math.max(1, Math.floor(windows.length * 0.8));
  return { calibration: windows.slice(0, at), heldOut: windows.slice(at) };
}

/**
 * Loads `samples` calibration windows and a held-out set. From the simulator: fresh seeds, all
 * conditions for calibration and moderate faults, with labels, for the check. From a file: the
 * windows in order, the last fifth held out (a quantizer must not be checked on what it was
 * calibrated on). From the log: as `calibrationFromLog`.
 */
export async function loadCalibration(source: CalibrationSource, card: ModelCard | null, signature: ModelSignature, opts: { samples: number; heldOut?: number }): Promise<CalibrationSet> {
  if (!Number.isInteger(opts.samples) || opts.samples < 1) throw new EdgeInferError('E_ARGUMENT', `samples must be a whole number ≥ 1, got ${opts.samples}`);
  const description = describeSource(source);
  if (source.kind === 'sim') {
    if (!card) throw new EdgeInferError('E_ARGUMENT', 'calibrating on the simulator needs the model card (what the model reads); give --calibrate a file of windows instead');
    const calibration = asFeeds(card, featuresOf(card.input, simulatedWindows(card.input, { count: opts.samples, seed: source.seed * 7919 + 17 })));
    const held = simulatedWindows(card.input, { count: opts.heldOut ?? 1000, seed: source.seed * 7919 + 29, severity: MODERATE });
    return { calibration, heldOut: { windows: asFeeds(card, featuresOf(card.input, held)), labels: held.map((w) => w.label), source: 'simulator, moderate faults' }, description: `${description}, ${opts.samples} windows` };
  }
  if (source.kind === 'db') {
    if (!card) throw new EdgeInferError('E_ARGUMENT', 'calibrating on the result log needs the model card (the log keeps windows by model id)');
    return calibrationFromLog(source.file, card, { samples: opts.samples });
  }
  const all = (await readInputWindows(source.file, signature.inputs, card)).map((w) => w.feeds);
  if (all.length < 2) throw new EdgeInferError('E_ARGUMENT', `${description}: ${all.length} window${all.length === 1 ? '' : 's'}; calibration needs at least 2 (one to calibrate on, one to check)`);
  const kept = split(all.slice(0, withHeldOut(opts.samples)));
  return {
    calibration: kept.calibration,
    heldOut: { windows: kept.heldOut, source: `last ${kept.heldOut.length} windows of the file` },
    description: `${description}, ${kept.calibration.length} windows`,
  };
}

/**
 * Calibration windows from the windows a gateway recorded in its result log (a file, or a store
 * already open): the newest ⌈1.25 × samples⌉ of the model, put in the order they were recorded;
 * the older four fifths calibrate, the newest fifth is held out to check the variant on.
 * `atLeast` windows must be there (default 2); `hint` is added to the error when they are not.
 */
export async function calibrationFromLog(log: string | ResultStore, card: ModelCard, opts: { samples: number; atLeast?: number; hint?: string }): Promise<CalibrationSet> {
  if (!Number.isInteger(opts.samples) || opts.samples < 1) throw new EdgeInferError('E_ARGUMENT', `samples must be a whole number ≥ 1, got ${opts.samples}`);
  const atLeast = Math.max(2, opts.atLeast ?? 2);
  const file = typeof log === 'string' ? log : log.path;
  if (typeof log === 'string' && !existsSync(log)) throw new EdgeInferError('E_ARGUMENT', `${log}: no such result log`);
  const store = typeof log === 'string' ? ResultStore.open({ path: log }) : log;
  let features: Float32Array[];
  try {
    // Newest first from the store; reversed, so that "held out" means the newest windows.
    features = store.windows(card.id, { limit: withHeldOut(opts.samples) }).map((r) => r.features).reverse();
  } finally {
    if (store !== log) await store.close();
  }
  if (features.length < atLeast) {
    const recorded = features.length === 0 ? 'holds no windows' : `holds only ${features.length} window${features.length === 1 ? '' : 's'}`;
    throw new EdgeInferError('E_ARGUMENT', `${file}: the log ${recorded} of model '${card.id}'; calibration needs at least ${atLeast}${opts.hint ? ` (${opts.hint})` : ' (the gateway records them as it runs that model)'}`);
  }
  const { calibration, heldOut } = split(asFeeds(card, features));
  return {
    calibration,
    heldOut: { windows: heldOut, source: `newest ${heldOut.length} windows of the log` },
    description: `${describeSource({ kind: 'db', file })}, ${calibration.length} windows`,
  };
}

/**
 * Sizes for inputs whose shapes have dynamic dimensions: input name → its whole shape, batch
 * axis first (`--shape audio=1,16000`). The quantizer feeds such a model only at sizes it is told.
 */
export type InputShapes = Readonly<Record<string, readonly number[]>>;

/** One `--shape name=dim,dim,...` added to `previous`. */
export function parseShapeOption(text: string, previous: InputShapes = {}): InputShapes {
  const m = /^([^=]+)=(.*)$/.exec(text);
  if (!m || m[1].trim() === '') throw new EdgeInferError('E_ARGUMENT', `--shape '${text}': expected name=dim,dim,... (for example audio=1,16000)`);
  const name = m[1].trim();
  const dims = m[2].split(',').map((d) => d.trim());
  for (const d of dims) {
    if (!/^\d+$/.test(d) || Number(d) < 1 || !Number.isSafeInteger(Number(d))) throw new EdgeInferError('E_ARGUMENT', `--shape '${text}': '${d}' is not a whole number ≥ 1`);
  }
  if (previous[name]) throw new EdgeInferError('E_ARGUMENT', `--shape '${text}': input '${name}' was already given a shape`);
  return { ...previous, [name]: dims.map(Number) };
}

/** `name=1,<samples>`: what to write after --shape, with the dynamic dimensions named. */
function shapeHint(spec: TensorSpec): string {
  return `${spec.name}=${(spec.shape ?? []).map((d, axis) => (typeof d === 'number' ? d : axis === 0 ? 1 : `<${d ?? `axis ${axis}`}>`)).join(',')}`;
}

/** The most values one window of one input may hold (64 MB of float32): a --shape beyond is a typo, not a model. */
export const MAX_WINDOW_VALUES = 2 ** 24;
/** The most values the synthetic held-out windows hold together (256 MB of float32); fewer windows beyond. */
const MAX_HELD_OUT_VALUES = 2 ** 26;

/**
 * Refuses shapes that name no input of the model, or that do not fit the input's declared shape
 * (another rank, another size on a fixed axis), naming the --shape and the axis.
 */
export function checkShapes(signature: ModelSignature, shapes: InputShapes): void {
  const names = signature.inputs.map((i) => i.name);
  for (const [name, given] of Object.entries(shapes)) {
    const spec = signature.inputs.find((i) => i.name === name);
    if (!spec) throw new EdgeInferError('E_ARGUMENT', `--shape names '${name}', which is not an input of the model (it takes ${names.map((n) => `'${n}'`).join(', ')})`);
    const said = `--shape ${name}=${given.join(',')}`;
    const values = given.slice(1).reduce((a, b) => a * b, 1);
    if (values > MAX_WINDOW_VALUES) throw new EdgeInferError('E_ARGUMENT', `${said}: a window of ${values.toLocaleString('en-US')} values is more than the quantizer feeds (${MAX_WINDOW_VALUES.toLocaleString('en-US')})`);
    if (spec.shape === null) continue;
    if (given.length !== spec.shape.length) throw new EdgeInferError('E_ARGUMENT', `${said}: input '${name}' has ${spec.shape.length} dimensions ${formatShape(spec.shape)}, not ${given.length}`);
    spec.shape.forEach((d, axis) => {
      if (typeof d === 'number' && d !== given[axis]) throw new EdgeInferError('E_ARGUMENT', `${said}: axis ${axis} of input '${name}' is fixed at ${d}, not ${given[axis]}`);
    });
  }
}

/**
 * The dims of one window of each input (its shape without the batch axis), from its declared
 * shape and `shapes`. A dynamic batch axis is 1; any other dynamic dimension must be given, or
 * this throws E_INPUT_SHAPE naming the input and the dimension (onnxruntime, fed a guess of 1,
 * would only say "Invalid input shape: {1}"). A given shape must fit the declared one.
 */
export function windowDims(signature: ModelSignature, shapes: InputShapes = {}): Record<string, number[]> {
  checkShapes(signature, shapes);
  const out: Record<string, number[]> = {};
  for (const spec of signature.inputs) {
    const given = shapes[spec.name];
    if (given) {
      out[spec.name] = given.slice(1);
      continue;
    }
    if (spec.shape === null) throw new EdgeInferError('E_INPUT_SHAPE', `input '${spec.name}' declares no shape: give one with --shape ${spec.name}=1,<dims>`);
    const dynamic = spec.shape.findIndex((d, axis) => axis > 0 && typeof d !== 'number');
    if (dynamic > 0) {
      const d = spec.shape[dynamic];
      throw new EdgeInferError('E_INPUT_SHAPE', `input '${spec.name}' has a dynamic dimension ${d ? `'${d}' ` : ''}(axis ${dynamic}): give its size with --shape ${shapeHint(spec)}`);
    }
    out[spec.name] = spec.shape.slice(1) as number[];
  }
  return out;
}

/**
 * Seeded random windows of the model's input shapes (dynamic dimensions from `shapes`): a last
 * resort to compare a variant on, for a model without card or data. Throws as windowDims does.
 * Long windows come fewer, so that together they stay within `maxValues` (default 2²⁶: 256 MB).
 */
export function syntheticHeldOut(signature: ModelSignature, count: number, shapes: InputShapes = {}, maxValues = MAX_HELD_OUT_VALUES): HeldOut {
  const dims = windowDims(signature, shapes);
  // syntheticFeeds sizes a dynamic dimension by its name; one not named goes through a fixed shape.
  const specs = signature.inputs.map((spec) => ({ ...spec, shape: [spec.shape?.[0] ?? 'batch', ...dims[spec.name]] }));
  const perWindow = Object.values(dims).reduce((a, d) => a + d.reduce((x, y) => x * y, 1), 0);
  const n = Math.max(1, Math.min(count, Math.floor(maxValues / Math.max(1, perWindow))));
  const windows: TensorMap[] = [];
  for (let i = 0; i < n; i++) {
    const feeds = syntheticFeeds(specs, 1, {}, i + 1);
    windows.push(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { ...t, dims: t.dims.slice(1) }])));
  }
  const sized = Object.keys(shapes).length ? ` at --shape ${Object.entries(shapes).map(([k, v]) => `${k}=${v.join(',')}`).join(' ')}` : '';
  return { windows, source: `synthetic random windows${sized} (no card, no --calibrate)` };
}
