// Reading windows from JSON, JSON-lines or CSV files, with errors that say where: what
// `edge-infer infer` runs and what the quantizer calibrates on.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { TensorData, TensorMap, TensorSpec } from '../engine';
import { EdgeInferError } from '../errors';
import { type ModelCard, windowFeeds } from '../model/card';
import { computeFeatures } from './features';
import { SlidingWindow } from './window';

/** One window ready to run (without its batch axis), and where it came from. */
export interface InputWindow {
  feeds: TensorMap;
  /** Sample span in the source, when cut from raw channel samples. */
  span?: { start: number; end: number };
}

const bad = (source: string, message: string): EdgeInferError => new EdgeInferError('E_ARGUMENT', `${source}: ${message}`);

/** A nested array of numbers as flat data and dims; the path names where it is not rectangular. */
export function nestedToTensor(value: unknown, where: string): { data: Float32Array; dims: number[] } {
  const dims: number[] = [];
  for (let v = value; Array.isArray(v); v = v[0]) dims.push(v.length);
  const data: number[] = [];
  const walk = (v: unknown, depth: number, at: string): void => {
    if (depth === dims.length) {
      if (typeof v !== 'number') throw new EdgeInferError('E_INPUT_VALUE', `${at}: expected a number, got ${JSON.stringify(v)?.slice(0, 30)}`);
      data.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== dims[depth]) {
      throw new EdgeInferError('E_INPUT_SHAPE', `${at}: expected an array of ${dims[depth]}, got ${Array.isArray(v) ? `an array of ${v.length}` : JSON.stringify(v)?.slice(0, 30)} (rows must all be the same length)`);
    }
    v.forEach((x, i) => walk(x, depth + 1, `${at}[${i}]`));
  };
  walk(value, 0, where);
  return { data: Float32Array.from(data), dims };
}

function tensorFrom(value: unknown, spec: TensorSpec, where: string): TensorData {
  let t: { data: Float32Array; dims: number[] };
  if (value && typeof value === 'object' && !Array.isArray(value) && 'data' in value) {
    const v = value as { data: unknown; dims?: unknown };
    const flat = nestedToTensor(v.data, `${where}.data`);
    const dims = Array.isArray(v.dims) ? (v.dims as number[]) : flat.dims;
    t = { data: flat.data, dims };
  } else {
    t = nestedToTensor(value, where);
  }
  // A window comes without the batch axis; accept one with a batch of 1 too.
  const rank = spec.shape?.length;
  if (rank !== undefined && t.dims.length === rank && t.dims[0] === 1) t.dims = t.dims.slice(1);
  return { type: 'float32', data: t.data, dims: t.dims };
}

/** Raw samples per channel → windows of the card's features, cut by its window and hop. */
export function windowsFromChannels(card: ModelCard, channels: Record<string, ArrayLike<number>>, source: string): InputWindow[] {
  const names = card.input.channels.map((c) => c.name);
  const missing = names.filter((n) => !(n in channels));
  if (missing.length) throw bad(source, `channel${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')} missing (the model reads ${names.join(', ')})`);
  const lengths = names.map((n) => channels[n].length);
  if (lengths.some((l) => l !== lengths[0])) throw bad(source, `channels differ in length (${names.map((n, i) => `${n}: ${lengths[i]}`).join(', ')})`);
  if (lengths[0] < card.input.window) throw bad(source, `${lengths[0]} samples per channel, the model needs windows of ${card.input.window}`);
  names.forEach((n) => {
    const c = channels[n];
    for (let i = 0; i < c.length; i++) {
      if (typeof c[i] !== 'number' || !Number.isFinite(c[i])) throw new EdgeInferError('E_INPUT_VALUE', `${source}: channel '${n}' sample ${i} is ${String(c[i])}; samples must be finite numbers`);
    }
  });
  const slider = new SlidingWindow(names.length, card.input.window, card.input.hop);
  return slider.push(names.map((n) => channels[n])).map((w) => ({
    feeds: windowFeeds(card.input, computeFeatures(card.input, w.channels)),
    span: { start: w.start, end: w.end },
  }));
}

/**
 * CSV of samples: a header row of channel names, then one row per sample. Only the `wanted`
 * columns (default: all) must hold numbers; others (a time or a label column) are skipped.
 */
export function parseSamplesCsv(text: string, source: string, wanted?: readonly string[]): Record<string, number[]> {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.startsWith('#'));
  if (lines.length < 2) throw bad(source, 'expected a header row of channel names and at least one row of samples');
  const delimiter = [',', ';', '\t'].find((d) => lines[0].includes(d)) ?? ',';
  const header = lines[0].split(delimiter).map((h) => h.trim().replace(/^"(.*)"$/, '$1'));
  const keep = header.map((h) => !wanted || wanted.includes(h));
  const columns: Record<string, number[]> = Object.fromEntries(header.filter((_, c) => keep[c]).map((h) => [h, []]));
  lines.slice(1).forEach((line, r) => {
    const cells = line.split(delimiter);
    if (cells.length !== header.length) throw bad(source, `line ${r + 2}: ${cells.length} values, the header names ${header.length} columns`);
    cells.forEach((cell, c) => {
      if (!keep[c]) return;
      const v = Number(cell.trim());
      if (cell.trim() === '' || !Number.isFinite(v)) throw new EdgeInferError('E_INPUT_VALUE', `${source}: line ${r + 2}, column '${header[c]}': ${JSON.stringify(cell.trim())} is not a number`);
      columns[header[c]].push(v);
    });
  });
  return columns;
}

function windowFromObject(value: unknown, inputs: readonly TensorSpec[], card: ModelCard | null, where: string): InputWindow[] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad(where, `expected an object of inputs by name${card ? " or {\"channels\": {...}}" : ''}`);
  const obj = value as Record<string, unknown>;
  if ('channels' in obj && !inputs.some((i) => i.name === 'channels')) {
    if (!card) throw bad(where, 'raw channel samples need the model card (none found next to the model)');
    return windowsFromChannels(card, obj.channels as Record<string, number[]>, where);
  }
  const feeds: TensorMap = {};
  for (const [name, v] of Object.entries(obj)) {
    const spec = inputs.find((i) => i.name === name);
    if (!spec) throw new EdgeInferError('E_INPUT_UNKNOWN', `${where}: '${name}' is not an input of the model (it takes ${inputs.map((i) => `'${i.name}'`).join(', ')})`);
    feeds[name] = tensorFrom(v, spec, `${where}.${name}`);
  }
  return [{ feeds }];
}

/**
 * The windows in an input file ('-' reads stdin). JSON: tensors by input name (nested arrays,
 * or {dims, data}), raw samples as {"channels": {"vib_x": [...], ...}}, or an array of those.
 * JSON lines (.jsonl, .ndjson): one such object per line. CSV: samples with a header row of
 * channel names.
 */
export async function readInputWindows(file: string, inputs: readonly TensorSpec[], card: ModelCard | null): Promise<InputWindow[]> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await fs.readFile(file, 'utf8');
  } catch (err) {
    throw bad(file, `cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const source = file === '-' ? '<stdin>' : file;
  if (path.extname(file).toLowerCase() === '.csv') {
    if (!card) throw bad(source, 'CSV samples need the model card (none found next to the model)');
    return windowsFromChannels(card, parseSamplesCsv(text, source, card.input.channels.map((c) => c.name)), source);
  }
  if (['.jsonl', '.ndjson'].includes(path.extname(file).toLowerCase())) {
    return text.split(/\r?\n/).flatMap((line, i) => {
      if (line.trim() === '') return [];
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (err) {
        throw bad(`${source} line ${i + 1}`, `not valid JSON (${err instanceof Error ? err.message : String(err)})`);
      }
      return windowFromObject(v, inputs, card, `${source} line ${i + 1}`);
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw bad(source, `not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => windowFromObject(v, inputs, card, `${source}[${i}]`));
  return windowFromObject(value, inputs, card, source);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
