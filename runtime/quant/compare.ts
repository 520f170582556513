// What a low-bit variant costs: agreement with fp32 on held-out windows, the task metric before
// and after, size, and latency measured side by side.
import { ortFailure } from './ort-errors';
import { type BackendChoice, ModelSession, type SessionOptions, type TensorMap, timeSideBySide } from '../engine';
import { EdgeInferError } from '../errors';
import { argmax, outputAgreement, primaryMetric, taskMetrics } from '../eval';
import type { ModelCard } from '../model';

export interface HeldOut {
  /** Held-out windows: one feeds map each (inputs without their batch axis). */
  windows: readonly TensorMap[];
  /** Ground-truth label index per window, when the source knows it (the simulator does). */
  labels?: readonly number[];
  /** Where they came from, for the report. */
  source: string;
}

export interface VariantComparison {
  variant: string;
  sizeBytes: number;
  fp32SizeBytes: number;
  windows: number;
  heldOutSource: string;
  /** Share of windows with the same decision: top-1 label, anomaly verdict, or argmax of the first output. */
  top1: number;
  cosine: number;
  maxAbsError: number;
  meanAbsError: number;
  /** The task metric (accuracy or ROC AUC) of fp32 and of the variant, when labels are known. */
  metric?: { name: string; fp32: number; variant: number; delta: number };
  latency: { batch: number; fp32Ms: number; variantMs: number; speedup: number };
  /** |variant − fp32| of every output value, for the error histogram. */
  errors: Float32Array;
}

export interface CompareOptions {
  backend?: BackendChoice;
  /** Windows per run for the latency figures (default 32). */
  batch?: number;
  /** How the variant is loaded (fast or compact FP8 weights). */
  load?: Pick<SessionOptions, 'sessionConfig'>;
  /** The fp32 card: names the output to compare and how to read it. Without one, the first output. */
  card?: ModelCard | null;
  /** Name of the variant in the report. */
  variant: string;
}

/** The decision a window's output stands for: its label, its anomaly verdict, or its argmax. */
function decision(card: ModelCard | null | undefined, output: ArrayLike<number>): number {
  if (card?.task === 'anomaly') return card.output.threshold !== undefined && output[0] >= card.output.threshold ? 1 : 0;
  return argmax(output);
}

async function outputsOf(session: ModelSession, windows: readonly TensorMap[], output: string): Promise<Float32Array[]> {
  const outcomes = await session.runWindows(windows);
  return outcomes.map((o, i) => {
    if (!o.ok) throw new EdgeInferError(o.error.code, `held-out window ${i}: ${o.error.message}`, { cause: o.error });
    return o.outputs[output].data as Float32Array;
  });
}

/** `batch` held-out windows (taken in turn, again from the first when there are fewer) stacked into one feeds map. */
function timingFeeds(windows: readonly TensorMap[], batch: number): TensorMap {
  const feeds: TensorMap = {};
  for (const [name, first] of Object.entries(windows[0])) {
    const per = first.data.length;
    const data = new Float32Array(per * batch);
    for (let i = 0; i < batch; i++) data.set(windows[i % windows.length][name].data as Float32Array, i * per);
    feeds[name] = { type: 'float32', data, dims: [batch, ...first.dims] };
  }
  return feeds;
}

/** Compares a variant with its fp32 model on held-out windows. */
export async function compareWithFp32(fp32: Uint8Array, variant: Uint8Array, heldOut: HeldOut, options: CompareOptions): Promise<VariantComparison> {
  if (heldOut.windows.length === 0) throw new EdgeInferError('E_ARGUMENT', 'no held-out windows to compare on');
  const backend = options.backend ?? 'wasm';
  const card = options.card ?? null;
  // No warm-up run: it feeds zeros of the declared shapes, 1 for every dynamic dimension, which
  // a model with a dynamic input length cannot take; the held-out windows have real sizes.
  const a = await ModelSession.load(fp32, { backend, name: 'fp32', warmupRuns: 0 }).catch((err: unknown) => {
    throw ortFailure(`checking ${options.variant} against fp32: the fp32 model does not load on ${backend}`, err, 'E_MODEL_UNSUPPORTED');
  });
  const b = await ModelSession.load(variant, { backend, name: options.variant, warmupRuns: 0, ...options.load }).catch(async (err: unknown) => {
    await a.dispose();
    throw ortFailure(`the ${options.variant} variant the quantizer wrote does not load on ${backend}`, err, 'E_MODEL_UNSUPPORTED');
  });
  try {
    const output = card?.output.tensor ?? a.signature.outputs[0].name;
    const shapes = Object.entries(heldOut.windows[0]).map(([k, t]) => `${k} [${t.dims.join(', ')}]`).join(', ');
    // One window through each first: a model that cannot take these shapes fails once, with
    // one onnxruntime message, not once per window.
    await a.run(timingFeeds(heldOut.windows, 1)).catch((err: unknown) => {
      throw ortFailure(`checking ${options.variant} against fp32: the fp32 model cannot run held-out windows of ${shapes}`, err);
    });
    await b.run(timingFeeds(heldOut.windows, 1)).catch((err: unknown) => {
      throw ortFailure(`the ${options.variant} variant cannot run held-out windows of ${shapes}, which fp32 runs`, err);
    });
    const ref = await outputsOf(a, heldOut.windows, output).catch((err: unknown) => {
      throw ortFailure(`checking ${options.variant} against fp32: the fp32 model cannot run held-out windows of ${shapes}`, err);
    });
    const got = await outputsOf(b, heldOut.windows, output).catch((err: unknown) => {
      throw ortFailure(`the ${options.variant} variant cannot run held-out windows of ${shapes}, which fp32 runs`, err);
    });
    const flatRef = Float32Array.from(ref.flatMap((o) => Array.from(o)));
    const flatGot = Float32Array.from(got.flatMap((o) => Array.from(o)));
    const same = ref.filter((o, i) => decision(card, o) === decision(card, got[i])).length;
    let metric: VariantComparison['metric'];
    if (card && heldOut.labels && (card.task === 'classification' || card.task === 'anomaly')) {
      const name = primaryMetric(card);
      const before = taskMetrics(card, ref, heldOut.labels)[name];
      const after = taskMetrics(card, got, heldOut.labels)[name];
      metric = { name, fp32: before, variant: after, delta: after - before };
    }
    const batch = options.batch ?? 32;
    // A quarter second each before timing, so both run V8's optimized code, not its first compile.
    // Timed on held-out windows, not synthetic ones: those would guess 1 for a dynamic length.
    const feeds = timingFeeds(heldOut.windows, a.batchable ? batch : 1);
    const [msA, msB] = await timeSideBySide([() => a.run(feeds), () => b.run(feeds)], { rounds: 5, runsPerTurn: 10, warmupMs: 250 }).catch((err: unknown) => {
      throw ortFailure(`timing ${options.variant} against fp32 on held-out windows of ${shapes}`, err);
    });
    const fa = { msPerRun: msA };
    const fb = { msPerRun: msB };
    return {
      variant: options.variant,
      sizeBytes: variant.length,
      fp32SizeBytes: fp32.length,
      windows: heldOut.windows.length,
      heldOutSource: heldOut.source,
      top1: same / ref.length,
      ...outputAgreement(flatRef, flatGot),
      metric,
      latency: { batch, fp32Ms: fa.msPerRun, variantMs: fb.msPerRun, speedup: fa.msPerRun / fb.msPerRun },
      errors: flatRef.map((v, i) => Math.abs(v - flatGot[i])),
    };
  } finally {
    await a.dispose();
    await b.dispose();
  }
}
