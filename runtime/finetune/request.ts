// What a fine-tune is asked to do, its settings, and the checks at its boundary: each bad part
// of a request is refused in one line that names it, before any thread starts or file is written.
import { EdgeInferError } from '../errors';
import type { ModelCard } from '../model';
import { TEACH_IN_DEFAULTS, type ThresholdRule, checkRule } from '../teachin';

export interface FineTuneRequest {
  /** The device whose healthy windows the model learns. */
  device: string;
  /** The model's id (the base card's). */
  model: string;
  /** The base model: its fp32 .onnx file and card. */
  base: { file: string; card: ModelCard };
  /** Model-input features of the device's healthy windows (what computeFeatures gives), oldest first. */
  windows: readonly Float32Array[];
  /** Data time of the first and last window, ms since the epoch. */
  firstWindowMs: number;
  lastWindowMs: number;
  /** The model folder to write (registry layout); replaced whole when it exists. */
  outDir: string;
  settings?: Partial<FineTuneSettings>;
}

export interface FineTuneSettings {
  /** Passes over the training windows (default 15: the loss has flattened by then on the demo machines, and 2,000 windows fit the 60 s goal; BENCHMARKS.md). */
  epochs: number;
  /** Windows per training step (default 64). */
  batchSize: number;
  /** Adam's starting learning rate, decayed to 0 over the epochs (default 1e-3: a fine-tune, not a training from scratch). */
  learningRate: number;
  /** Seeds the shuffles: one request, one model. */
  seed: number;
  /** Share of the windows held out to set and check the threshold, spread evenly over time (default 0.2). */
  heldOutShare: number;
  /** Fewest windows a fine-tune takes (default 200). */
  minWindows: number;
  /** Most windows it takes (default 5,000, the recorder's bound); more are refused, not cut. */
  maxWindows: number;
  /** Training windows the int8 variant is calibrated on, spread evenly (default 500). */
  calibrationWindows: number;
  /** Least cosine of a variant's held-out scores with the fine-tuned fp32's (default 0.99). */
  minCosine: number;
  /** The threshold rule (default the teach-in's). */
  rule: ThresholdRule;
}

export const FINE_TUNE_DEFAULTS: FineTuneSettings = {
  epochs: 15, batchSize: 64, learningRate: 1e-3, seed: 1, heldOutShare: 0.2, minWindows: 200, maxWindows: 5000, calibrationWindows: 500, minCosine: 0.99,
  rule: { quantile: TEACH_IN_DEFAULTS.quantile, margin: TEACH_IN_DEFAULTS.margin },
};

const bad = (message: string): EdgeInferError => new EdgeInferError('E_ARGUMENT', `fine-tune: ${message}`);
const shown = (v: unknown): string => (typeof v === 'number' ? String(v) : (JSON.stringify(v) ?? String(v)));

function wholeAtLeast(name: string, v: unknown, min: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw bad(`${name} must be a whole number ≥ ${min}, got ${shown(v)}`);
}

/** The request's settings over the defaults, checked. */
export function settingsOf(request: Pick<FineTuneRequest, 'settings'>): FineTuneSettings {
  const s: FineTuneSettings = { ...FINE_TUNE_DEFAULTS, ...request.settings, rule: { ...FINE_TUNE_DEFAULTS.rule, ...request.settings?.rule } };
  wholeAtLeast('epochs', s.epochs, 1);
  wholeAtLeast('batchSize', s.batchSize, 1);
  wholeAtLeast('seed', s.seed, 0);
  wholeAtLeast('minWindows', s.minWindows, 10);
  wholeAtLeast('maxWindows', s.maxWindows, s.minWindows);
  wholeAtLeast('calibrationWindows', s.calibrationWindows, 1);
  if (typeof s.learningRate !== 'number' || !(s.learningRate > 0 && s.learningRate < 1)) throw bad(`learningRate must be a number in (0, 1), got ${shown(s.learningRate)}`);
  if (typeof s.heldOutShare !== 'number' || !(s.heldOutShare >= 0.05 && s.heldOutShare <= 0.5)) throw bad(`heldOutShare must be a number in [0.05, 0.5], got ${shown(s.heldOutShare)}`);
  if (typeof s.minCosine !== 'number' || !(s.minCosine >= -1 && s.minCosine <= 1)) throw bad(`minCosine must be a number in [-1, 1], got ${shown(s.minCosine)}`);
  checkRule(s.rule, 'fine-tune');
  return s;
}

/** Checks a request's device, model, card, windows and dates against its settings; `width` is the model's feature length. */
export function checkRequest(r: FineTuneRequest, s: FineTuneSettings): void {
  if (typeof r !== 'object' || r === null) throw bad('expected a request object');
  if (typeof r.device !== 'string' || r.device === '') throw bad(`device must be a name, got ${shown(r.device)}`);
  if (typeof r.model !== 'string' || r.model === '') throw bad(`model must be a model id, got ${shown(r.model)}`);
  if (typeof r.outDir !== 'string' || r.outDir === '') throw bad(`outDir must be a folder, got ${shown(r.outDir)}`);
  if (!r.base || typeof r.base.file !== 'string' || !r.base.card) throw bad('base must give the fp32 model file and its card');
  const card = r.base.card;
  if (card.id !== r.model) throw bad(`the base card is model '${card.id}', not '${r.model}'`);
  if (card.task !== 'anomaly') throw bad(`model '${r.model}' is a ${card.task} model; only anomaly models (autoencoders) are fine-tuned`);
  if (card.precision !== 'fp32') throw bad(`${r.base.file} is the ${card.precision} variant of '${r.model}'; fine-tune the fp32 one`);
  if (!Array.isArray(r.windows) || r.windows.length === 0) throw bad(`no windows of ${r.device} to learn from`);
  if (r.windows.length < s.minWindows) throw bad(`${r.windows.length} windows of ${r.device}, fewer than the ${s.minWindows} a fine-tune needs`);
  if (r.windows.length > s.maxWindows) throw bad(`${r.windows.length} windows of ${r.device}, more than the ${s.maxWindows} a fine-tune takes`);
  if (!Number.isFinite(r.firstWindowMs) || !Number.isFinite(r.lastWindowMs) || r.firstWindowMs > r.lastWindowMs) {
    throw bad(`firstWindowMs and lastWindowMs must be times with first ≤ last, got ${shown(r.firstWindowMs)} and ${shown(r.lastWindowMs)}`);
  }
}

/** Checks every window against the model's feature length; names the first bad window and value. */
export function checkWindows(windows: readonly Float32Array[], width: number, device: string): void {
  for (let i = 0; i < windows.length; i++) {
    const w = windows[i];
    if (!(w instanceof Float32Array)) throw bad(`window ${i} of ${device} is not a Float32Array`);
    if (w.length !== width) throw bad(`window ${i} of ${device} has ${w.length} features, the model takes ${width}`);
    for (let k = 0; k < width; k++) if (!Number.isFinite(w[k])) throw bad(`window ${i} of ${device}: feature ${k} is ${w[k]}, expected a finite number`);
  }
}
