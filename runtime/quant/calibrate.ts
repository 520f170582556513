// Calibration: the range of every activation the static quantizer will quantize, observed by
// running the fp32 model on real windows. MinMax takes the extremes; Percentile clips the rare
// outliers; Entropy picks the clipping threshold that loses least information (minimum KL
// divergence between the float distribution and its 128-level quantized form).
import { ModelSession, type TensorMap } from '../engine';
import { EdgeInferError } from '../errors';
import { DataType, type ModelProto, encodeModel } from '../onnx';
import { ortFailure } from './ort-errors';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';
export const CALIBRATION_METHODS: readonly CalibrationMethod[] = ['minmax', 'percentile', 'entropy'];

export interface TensorRange {
  min: number;
  max: number;
}

export interface CalibrationOptions {
  method: CalibrationMethod;
  /** Percentile method: the share of values kept inside the range, in percent (default 99.99). */
  percentile?: number;
  /** Histogram bins for percentile and entropy (default 2048). */
  bins?: number;
  /** Windows per run (default 64). */
  batch?: number;
  /** Called as windows are processed: done of total (two passes count as 2 × windows). */
  onProgress?: (done: number, total: number) => void;
  /** Aborts the calibration (E_CANCELLED). */
  signal?: AbortSignal;
}

/** Windows to calibrate on: one feeds map per window (each input without its batch axis). */
export type CalibrationWindows = readonly TensorMap[];

/**
 * The model with the named tensors added as outputs, so one run observes them all. A shallow
 * copy: only the output list is new, the weights are shared with `model`, which stays as it was.
 */
function exposing(model: ModelProto, tensors: readonly string[]): ModelProto {
  const graph = model.graph ?? {};
  const outputs = new Set((graph.output ?? []).map((o) => o.name));
  const extra = tensors.filter((t) => !outputs.has(t)).map((name) => ({ name, type: { tensor_type: { elem_type: DataType.FLOAT } } }));
  return { ...model, graph: { ...graph, output: [...(graph.output ?? []), ...extra] } };
}

class Histogram {
  readonly counts: Float64Array;
  constructor(readonly lo: number, readonly hi: number, bins: number) {
    this.counts = new Float64Array(bins);
  }
  add(data: Float32Array): void {
    const n = this.counts.length;
    const width = (this.hi - this.lo) / n || 1;
    for (let i = 0; i < data.length; i++) {
      const b = Math.floor((data[i] - this.lo) / width);
      this.counts[b < 0 ? 0 : b >= n ? n - 1 : b]++;
    }
  }
  /**
   * The value below which `share` of the observations fall, taking the values of a bin as spread
   * evenly across it. The same rule serves both tails: share 0 gives the lower edge of the first
   * bin that holds anything (the minimum, when the histogram starts there), share 1 the upper edge
   * of the last one.
   */
  quantile(share: number): number {
    const n = this.counts.length;
    const total = this.counts.reduce((a, b) => a + b, 0);
    const target = share * total;
    const width = (this.hi - this.lo) / n;
    let seen = 0;
    for (let b = 0; b < n; b++) {
      const c = this.counts[b];
      if (c > 0 && seen + c >= target) {
        const within = Math.min(1, Math.max(0, (target - seen) / c));
        // The edges themselves exactly, not lo + n × width rounded.
        if (within === 0 && b === 0) return this.lo;
        if (within === 1 && b === n - 1) return this.hi;
        return this.lo + (b + within) * width;
      }
      seen += c;
    }
    return this.hi;
  }
}

/**
 * TensorRT's entropy calibration on a histogram of |x| over [0, amax]: for each candidate
 * threshold, fold the tail into the last bin (P), quantize the kept bins into 128 levels and
 * expand back (Q), and keep the threshold with the smallest KL(P‖Q).
 */
export function entropyThreshold(histogram: Float64Array, amax: number, levels = 128): number {
  const bins = histogram.length;
  // The zeros of a ReLU output pile up in the first bin and would pull the threshold down to
  // them; like NVIDIA's calibrator, weigh that bin no more than its neighbour.
  const counts = Float64Array.from(histogram);
  if (bins > 1) counts[0] = Math.min(counts[0], counts[1]);
  const all = counts.reduce((a, b) => a + b, 0);
  let best = bins;
  let bestKl = Number.POSITIVE_INFINITY;
  let kept = counts.subarray(0, levels - 1).reduce((a, b) => a + b, 0);
  for (let t = levels; t <= bins; t++) {
    kept += counts[t - 1];
    // A threshold that clips away most values would make P and Q one spike each (KL 0) on
    // one-sided tensors such as Softmax or Sigmoid outputs.
    if (kept < all / 2) continue;
    const p = Array.from(counts.subarray(0, t));
    for (let b = t; b < bins; b++) p[t - 1] += counts[b];
    const total = p.reduce((a, b) => a + b, 0);
    if (total === 0) continue;
    const q = new Float64Array(t);
    const per = t / levels;
    for (let l = 0; l < levels; l++) {
      const start = Math.floor(l * per);
      const end = Math.min(t, Math.floor((l + 1) * per));
      // The level's mass comes from the bins as observed, and is spread over the bins where P
      // has mass: P's last bin also holds the folded tail, so it gets its share even when no
      // value fell in it (as in TensorRT's and onnxruntime's calibrators).
      let sum = 0;
      let nonzero = 0;
      for (let b = start; b < end; b++) {
        sum += counts[b];
        if (p[b] > 0) nonzero++;
      }
      for (let b = start; b < end; b++) if (p[b] > 0) q[b] = sum / nonzero;
    }
    const qTotal = q.reduce((a, b) => a + b, 0);
    let kl = 0;
    for (let b = 0; b < t; b++) {
      if (p[b] === 0) continue;
      const pb = p[b] / total;
      const qb = q[b] / qTotal;
      kl += qb > 0 ? pb * Math.log(pb / qb) : pb * 50; // an empty Q bin where P has mass: heavy penalty
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = t;
    }
  }
  return (best / bins) * amax;
}

function stack(windows: CalibrationWindows, from: number, to: number): TensorMap {
  const feeds: TensorMap = {};
  for (const name of Object.keys(windows[0])) {
    const first = windows[0][name];
    const per = first.data.length;
    const data = new Float32Array(per * (to - from));
    for (let i = from; i < to; i++) data.set(windows[i][name].data as Float32Array, (i - from) * per);
    feeds[name] = { type: 'float32', data, dims: [to - from, ...first.dims] };
  }
  return feeds;
}

/** Observes the ranges of `tensors` over the calibration windows; `model` is left as it is. */
export async function calibrateRanges(model: ModelProto, tensors: readonly string[], windows: CalibrationWindows, options: CalibrationOptions): Promise<Map<string, TensorRange>> {
  if (windows.length === 0) throw new EdgeInferError('E_ARGUMENT', 'calibration needs at least one window');
  if (!CALIBRATION_METHODS.includes(options.method)) throw new EdgeInferError('E_ARGUMENT', `calibration method must be one of ${CALIBRATION_METHODS.join(', ')}, got '${String(options.method)}'`);
  const session = await ModelSession.load(encodeModel(exposing(model, tensors)), { name: 'calibration', warmupRuns: 0 }).catch((err: unknown) => {
    throw ortFailure('calibration: the fp32 model with its activations exposed does not load', err, 'E_MODEL_UNSUPPORTED');
  });
  const batch = options.batch ?? 64;
  const passes = options.method === 'minmax' ? 1 : 2;
  const total = windows.length * passes;
  let done = 0;
  const run = async (visit: (name: string, data: Float32Array) => void): Promise<void> => {
    for (let start = 0; start < windows.length; start += batch) {
      if (options.signal?.aborted) throw new EdgeInferError('E_CANCELLED', `calibration cancelled after ${done} of ${total} windows`);
      const end = Math.min(windows.length, start + batch);
      const feeds = stack(windows, start, end);
      const { outputs } = await session.run(feeds).catch((err: unknown) => {
        throw ortFailure(`calibration: the fp32 model cannot run windows of ${Object.entries(feeds).map(([k, t]) => `${k} [${t.dims.join(', ')}]`).join(', ')}`, err);
      });
      for (const name of tensors) {
        const t = outputs[name];
        if (!t) throw new EdgeInferError('E_RUN', `calibration: the model did not give tensor '${name}'`);
        visit(name, t.data as Float32Array);
      }
      done += end - start;
      options.onProgress?.(done, total);
    }
  };
  try {
    const ranges = new Map<string, TensorRange>(tensors.map((t) => [t, { min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY }]));
    await run((name, data) => {
      const r = ranges.get(name)!;
      for (let i = 0; i < data.length; i++) {
        const v = data[i];
        if (v < r.min) r.min = v;
        if (v > r.max) r.max = v;
      }
    });
    for (const [name, r] of ranges) {
      if (!Number.isFinite(r.min) || !Number.isFinite(r.max)) throw new EdgeInferError('E_INPUT_VALUE', `calibration: tensor '${name}' took non-finite values (min ${r.min}, max ${r.max}); check the calibration windows`);
    }
    if (options.method === 'minmax') return ranges;
    const bins = options.bins ?? 2048;
    const hists = new Map<string, Histogram>();
    for (const [name, r] of ranges) {
      // Entropy works on |x|; percentile on x itself, both tails.
      hists.set(name, options.method === 'entropy' ? new Histogram(0, Math.max(Math.abs(r.min), Math.abs(r.max)) || 1, bins) : new Histogram(r.min, r.max > r.min ? r.max : r.min + 1, bins));
    }
    await run((name, data) => hists.get(name)!.add(options.method === 'entropy' ? data.map(Math.abs) : data));
    const out = new Map<string, TensorRange>();
    for (const [name, r] of ranges) {
      const h = hists.get(name)!;
      if (options.method === 'percentile') {
        const keep = (options.percentile ?? 99.99) / 100;
        const min = Math.max(r.min, h.quantile((1 - keep) / 2));
        out.set(name, { min, max: Math.max(min, Math.min(r.max, h.quantile(1 - (1 - keep) / 2))) });
      } else {
        const t = entropyThreshold(h.counts, h.hi);
        const min = Math.max(r.min, -t);
        out.set(name, { min, max: Math.max(min, Math.min(r.max, t)) });
      }
    }
    return out;
  } finally {
    await session.dispose();
  }
}
