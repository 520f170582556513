// Where calibration windows come from: a file of windows (JSON lines, JSON or CSV), the
// simulator, or the gateway's own SQLite log of the live stream (the data never leaves the
// gateway). Each source also gives held-out windows to check the quantized model on.
import * as path from 'node:path';
import { featureShape, type ModelCard } from '../model';
import type { ModelSignature, TensorMap } from '../engine';
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

/**
 * Loads `samples` calibration windows and a held-out set. From the simulator: fresh seeds, all
 * conditions for calibration and moderate faults, with labels, for the check. From a file or the
 * log: the windows in order, the last fifth held out (a quantizer must not be checked on what
 * it was calibrated on).
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
  let all: TensorMap[];
  if (source.kind === 'file') {
    all = (await readInputWindows(source.file, signature.inputs, card)).map((w) => w.feeds);
  } else {
    if (!card) throw new EdgeInferError('E_ARGUMENT', 'calibrating on the result log needs the model card (the log keeps windows by model id)');
    all = asFeeds(card, await logWindows(source.file, card.id, Math.ceil(opts.samples * 1.25)));
  }
  if (all.length < 2) throw new EdgeInferError('E_ARGUMENT', `${description}: ${all.length} window${all.length === 1 ? '' : 's'}; calibration needs at least 2 (one to calibrate on, one to check)`);
  const kept = all.slice(0, Math.ceil(opts.samples * 1.25));
  const split = Math.max(1, Math.floor(kept.length * 0.8));
  return {
    calibration: kept.slice(0, split),
    heldOut: { windows: kept.slice(split), source: `last ${kept.length - split} windows of the ${source.kind === 'db' ? 'log' : 'file'}` },
    description: `${description}, ${split} windows`,
  };
}

/** The newest windows the gateway logged for a model. */
async function logWindows(file: string, model: string, limit: number): Promise<Float32Array[]> {
  const store = ResultStore.open({ path: file, readonly: true } as Parameters<typeof ResultStore.open>[0]);
  try {
    const rows = store.windows(model, { limit });
    if (rows.length === 0) throw new EdgeInferError('E_ARGUMENT', `${file}: the log holds no windows of model '${model}' (the gateway records them as it runs that model)`);
    return rows.map((r) => r.features);
  } finally {
    await store.close();
  }
}
