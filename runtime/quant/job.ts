// A whole quantization, as `edge-infer quantize` and the Node-RED editor's Quantize button run
// it: quantize, check against fp32 on held-out windows, write the variant and its card (and the
// HTML report) through temporary files, so nothing half-written is ever left behind. With an
// acceptance bound, a variant that does not agree with fp32 well enough is refused before any
// file is written.
import type { BackendChoice } from '../engine';
import { EdgeInferError } from '../errors';
import type { ModelCard } from '../model';
import { cardFileFor } from '../model';
import { type ModelProto, encodeModel, writeFileAtomic } from '../onnx';
import type { CalibrationMethod } from './calibrate';
import { type HeldOut, type VariantComparison, compareWithFp32 } from './compare';
import { type WeightLoading, loadOptionsFor } from './load';
import { type QuantTarget, type QuantizeResult, embedCard, precisionOf, quantizeModel, variantCard } from './quantize';
import { htmlReport } from './report';
import type { CalibrationSet } from './sources';

export interface QuantizeJob {
  /** The fp32 model, its bytes and its card (null for a model without one). */
  model: ModelProto;
  bytes: Uint8Array;
  card: ModelCard | null;
  to: QuantTarget;
  /** Calibration windows and held-out windows. */
  calibration?: CalibrationSet;
  /** Held-out windows when there is no calibration set. */
  heldOut?: HeldOut;
  /**
   * Why no held-out windows could be made (an input with a dynamic dimension and no size for it).
   * Weight-only FP8 needs no inputs: the variant is written all the same, unchecked, with this
   * reason in the result; every other method is refused with it.
   */
  noHeldOutReason?: string;
  method: CalibrationMethod;
  blockSize?: number;
  /** int8: weights within ±64 (default: what this machine needs, see defaultReduceRange). */
  reduceRange?: boolean;
  /** How the variant is loaded for the latency check. */
  load: WeightLoading;
  backend: BackendChoice;
  /** Where the quantized .onnx goes; its card goes next to it. */
  output: string;
  /** The variant's name in its card (default: the target). */
  variantName?: string;
  /** Also write `<output>.report.html`. */
  html: boolean;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** Refuse (E_QUANT_CHECK, nothing written) a variant below this agreement with fp32; none: no check. */
  acceptance?: QuantAcceptance;
}

export interface QuantAcceptance {
  /** Least share of held-out windows with fp32's decision (label, anomaly verdict), 0..1. */
  minTop1: number;
  /** Most the task metric may fall below fp32's, when the held-out windows have labels (0.01: one point). */
  maxMetricDrop: number;
  /** Fewest held-out windows the check accepts. */
  minWindows: number;
}

/** The Quantize button's bound: the cards' "within 1 point of fp32", as 98 % agreement on at least 50 windows. */
export const DEFAULT_ACCEPTANCE: QuantAcceptance = { minTop1: 0.98, maxMetricDrop: 0.01, minWindows: 50 };

const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;

/** Why a comparison misses the bound, or undefined when it meets it. */
export function acceptanceFailure(c: Pick<VariantComparison, 'variant' | 'top1' | 'windows' | 'heldOutSource' | 'metric'>, a: QuantAcceptance): string | undefined {
  const misses: string[] = [];
  if (c.top1 < a.minTop1) misses.push(`it agrees with fp32 on ${pct(c.top1)} of ${c.windows} held-out windows (${c.heldOutSource}), the bound is ${pct(a.minTop1)}`);
  if (c.metric && -c.metric.delta > a.maxMetricDrop + 1e-12) misses.push(`its ${c.metric.name} is ${(c.metric.variant * 100).toFixed(2)} against fp32's ${(c.metric.fp32 * 100).toFixed(2)}, ${(-c.metric.delta * 100).toFixed(2)} points below; the bound is ${(a.maxMetricDrop * 100).toFixed(2)}`);
  return misses.length ? `${c.variant} refused: ${misses.join('; ')}. No file was written.` : undefined;
}

export interface QuantizeJobResult {
  result: QuantizeResult;
  comparison: VariantComparison;
  card: ModelCard | null;
  sizeBytes: number;
  reportFile?: string;
}

/** A weight-only FP8 variant written without a check against fp32, and why it was not checked. */
export interface UncheckedJobResult extends Omit<QuantizeJobResult, 'comparison'> {
  comparison?: undefined;
  /** Why it could not be compared with fp32, in a line. */
  unchecked: string;
}

/** Weight-only formats: no calibration, and no inputs needed to make them. */
const needsNoInputs = (to: QuantTarget): boolean => to === 'fp8-e4m3' || to === 'fp8-e5m2';

export async function runQuantizeJob(job: QuantizeJob & { acceptance: QuantAcceptance }): Promise<QuantizeJobResult>;
export async function runQuantizeJob(job: QuantizeJob): Promise<QuantizeJobResult | UncheckedJobResult>;
export async function runQuantizeJob(job: QuantizeJob): Promise<QuantizeJobResult | UncheckedJobResult> {
  const heldOut = job.calibration?.heldOut ?? job.heldOut;
  const name = job.variantName ?? job.to;
  if (job.acceptance && (heldOut?.windows.length ?? 0) < job.acceptance.minWindows) {
    throw new EdgeInferError('E_ARGUMENT', `${name}: the check needs at least ${job.acceptance.minWindows} held-out windows, ${heldOut ? `${heldOut.source} gives ${heldOut.windows.length}` : `there are none${job.noHeldOutReason ? ` (${job.noHeldOutReason})` : ''}`}`);
  }
  if (!heldOut || heldOut.windows.length === 0) {
    const why = job.noHeldOutReason ?? (heldOut ? `${heldOut.source} gives no windows` : 'no held-out windows were given');
    if (!needsNoInputs(job.to)) throw new EdgeInferError('E_ARGUMENT', `${name}: cannot check the variant against fp32: ${why}`);
    return writeUnchecked(job, why);
  }
  const result = await quantizeModel({
    model: job.model,
    to: job.to,
    blockSize: job.blockSize,
    reduceRange: job.reduceRange,
    calibration: job.calibration && job.to === 'int8' ? { windows: job.calibration.calibration, source: job.calibration.description, method: job.method } : undefined,
    onProgress: job.onProgress,
    signal: job.signal,
  });
  const calibration = job.calibration && job.to === 'int8' ? { source: job.calibration.description, windows: job.calibration.calibration.length, method: job.method } : undefined;
  const named = (c: ModelCard): ModelCard => (job.variantName ? { ...c, variant: job.variantName } : c);
  // Compared without its card: the card needs the comparison's figures, and sessions never read it.
  const variant = encodeModel(result.model);
  const comparison = await compareWithFp32(job.bytes, variant, heldOut, { card: job.card, variant: job.variantName ?? job.to, backend: job.backend, load: loadOptionsFor(precisionOf(job.to), job.load) });
  const refused = job.acceptance && acceptanceFailure(comparison, job.acceptance);
  if (refused) throw new EdgeInferError('E_QUANT_CHECK', refused);
  let card: ModelCard | null = null;
  let bytes = variant;
  if (job.card) {
    card = named(variantCard(job.card, job.to, result, calibration, comparison));
    bytes = encodeModel(embedCard(result.model, card));
    // The card first: a registry that sees the model appear finds its card already there.
    await writeFileAtomic(cardFileFor(job.output), `${JSON.stringify(card, null, 2)}\n`);
  }
  await writeFileAtomic(job.output, bytes);
  let reportFile: string | undefined;
  if (job.html) {
    reportFile = `${job.output.replace(/\.onnx$/i, '')}.report.html`;
    await writeFileAtomic(reportFile, htmlReport(job.card?.id ?? job.output, [{ ...comparison, sizeBytes: bytes.length }]));
  }
  return { result, comparison: { ...comparison, sizeBytes: bytes.length }, card, sizeBytes: bytes.length, reportFile };
}

/** Weight-only FP8 without a check: quantized and written with its card (no agreement in it). */
async function writeUnchecked(job: QuantizeJob, why: string): Promise<UncheckedJobResult> {
  const result = await quantizeModel({ model: job.model, to: job.to, blockSize: job.blockSize, reduceRange: job.reduceRange, signal: job.signal });
  let card: ModelCard | null = null;
  if (job.card) {
    card = variantCard(job.card, job.to, result, undefined);
    if (job.variantName) card = { ...card, variant: job.variantName };
    await writeFileAtomic(cardFileFor(job.output), `${JSON.stringify(card, null, 2)}\n`);
  }
  const bytes = encodeModel(card ? embedCard(result.model, card) : result.model);
  await writeFileAtomic(job.output, bytes);
  return { result, card, sizeBytes: bytes.length, unchecked: `not compared with fp32: ${why}` };
}
