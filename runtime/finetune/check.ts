// A variant of the fine-tuned model is written only once it has shown, on the held-out healthy
// windows, that it loads in a real session, that its scores agree with the fine-tuned fp32's,
// and that it flags no more of those healthy windows than the threshold rule lets through.
import { type BackendChoice, ModelSession } from '../engine';
import { outputAgreement, predictWindows } from '../eval';
import type { ModelCard } from '../model';
import { loadOptionsFor } from '../quant';

export interface VariantCheck {
  variant: string;
  /** Whether it passed and was written. */
  written: boolean;
  /** Why it was not written. */
  reason?: string;
  /** Cosine of its held-out scores (healthy and probes) with the fine-tuned fp32's (1 for fp32 itself). */
  cosine: number | null;
  maxAbsError: number | null;
  /** Held-out healthy windows at or above the threshold, and the most the rule allows. */
  flagged: number | null;
  allowed: number;
  /** Anomaly probes of the held-out windows (probes.ts) at or above the threshold. */
  probesFlagged: number | null;
  sizeBytes: number;
  /** Where it was written, in the output folder. */
  file?: string;
}

/**
 * Scores of sets of windows from one real session of the model's bytes, on the backend the
 * gateway serves it on (a session per set would grow onnxruntime's WASM memory each time).
 */
export async function scoresOf(bytes: Uint8Array, card: ModelCard, sets: ReadonlyArray<readonly Float32Array[]>, name: string, backend: BackendChoice = 'auto'): Promise<Float64Array[]> {
  const session = await ModelSession.load(bytes, { backend, threads: 1, name, ...loadOptionsFor(card.precision, 'fast') });
  try {
    const out: Float64Array[] = [];
    for (const windows of sets) out.push(Float64Array.from(await predictWindows(session, card, windows), (o) => o[0]));
    return out;
  } finally {
    await session.dispose();
  }
}

/**
 * The most held-out healthy windows a threshold may flag: the share the rule's quantile leaves
 * above it (0.1 % of them for 0.999), rounded down. The threshold is set above the fine-tuned
 * fp32's highest held-out score, so fp32 itself flags none.
 */
export function allowedFlags(windows: number, quantile: number): number {
  return Math.floor(windows * (1 - quantile) + 1e-9);
}

/** Scores of the held-out healthy windows and of their anomaly probes (probes.ts). */
export interface HeldOutScores {
  healthy: Float64Array;
  probes: Float64Array;
}

/** Probes a variant must flag, of those fp32 flags: 98 %. */
export const MIN_PROBE_RECALL = 0.98;

const countAtOrAbove = (scores: Float64Array, threshold: number): number => scores.reduce((n, s) => n + (s < threshold ? 0 : 1), 0);

function joined(s: HeldOutScores): Float64Array {
  const all = new Float64Array(s.healthy.length + s.probes.length);
  all.set(s.healthy);
  all.set(s.probes, s.healthy.length);
  return all;
}

/**
 * Checks a variant's held-out scores against fp32's and the threshold: the cosine over the
 * healthy windows and the probes together (a variant whose scores saturate below anomalous
 * levels fails it), the healthy windows it flags, and the probes it flags of those fp32 flags.
 */
export function judgeVariant(variant: string, scores: HeldOutScores, fp32: HeldOutScores, threshold: number, allowed: number, minCosine: number, sizeBytes: number): VariantCheck {
  const a = outputAgreement(joined(fp32), joined(scores));
  const flagged = countAtOrAbove(scores.healthy, threshold);
  const probesFlagged = countAtOrAbove(scores.probes, threshold);
  const fp32Probes = countAtOrAbove(fp32.probes, threshold);
  const misses: string[] = [];
  if (!(a.cosine >= minCosine)) misses.push(`its held-out scores agree with fp32's at cosine ${a.cosine.toFixed(4)}, below ${minCosine}`);
  if (flagged > allowed) misses.push(`it flags ${flagged} of ${scores.healthy.length} held-out healthy windows at the threshold ${threshold.toPrecision(4)}, the rule allows ${allowed}`);
  if (probesFlagged < Math.ceil(fp32Probes * MIN_PROBE_RECALL)) misses.push(`it flags ${probesFlagged} of the ${scores.probes.length} anomaly probes, fp32 flags ${fp32Probes} (at least ${MIN_PROBE_RECALL * 100} % of them needed)`);
  return { variant, written: misses.length === 0, reason: misses.length ? misses.join('; ') : undefined, cosine: a.cosine, maxAbsError: a.maxAbsError, flagged, allowed, probesFlagged, sizeBytes };
}
