// A variant of the fine-tuned model is written only once it has shown, on the held-out healthy
// windows, that it loads in a real session, that its scores agree with the fine-tuned fp32's,
// and that it flags no more of those healthy windows than the threshold rule lets through.
import { ModelSession } from '../engine';
import { outputAgreement, predictWindows } from '../eval';
import type { ModelCard } from '../model';
import { loadOptionsFor } from '../quant';

export interface VariantCheck {
  variant: string;
  /** Whether it passed and was written. */
  written: boolean;
  /** Why it was not written. */
  reason?: string;
  /** Cosine of its held-out scores with the fine-tuned fp32's (1 for fp32 itself). */
  cosine: number | null;
  maxAbsError: number | null;
  /** Held-out healthy windows at or above the threshold, and the most the rule allows. */
  flagged: number | null;
  allowed: number;
  sizeBytes: number;
  /** Where it was written, in the output folder. */
  file?: string;
}

/** Scores of held-out windows from a real session of the model's bytes. */
export async function scoresOf(bytes: Uint8Array, card: ModelCard, windows: readonly Float32Array[], name: string): Promise<Float64Array> {
  const session = await ModelSession.load(bytes, { backend: 'wasm', threads: 1, name, ...loadOptionsFor(card.precision, 'fast') });
  try {
    const out = await predictWindows(session, card, windows);
    return Float64Array.from(out, (o) => o[0]);
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

/** Checks a variant's held-out scores against fp32's and the threshold. */
export function judgeVariant(variant: string, scores: Float64Array, fp32: Float64Array, threshold: number, allowed: number, minCosine: number, sizeBytes: number): VariantCheck {
  const a = outputAgreement(fp32, scores);
  let flagged = 0;
  for (const s of scores) if (!(s < threshold)) flagged++;
  const misses: string[] = [];
  if (!(a.cosine >= minCosine)) misses.push(`its held-out scores agree with fp32's at cosine ${a.cosine.toFixed(4)}, below ${minCosine}`);
  if (flagged > allowed) misses.push(`it flags ${flagged} of ${scores.length} held-out healthy windows at the threshold ${threshold.toPrecision(4)}, the rule allows ${allowed}`);
  return { variant, written: misses.length === 0, reason: misses.length ? misses.join('; ') : undefined, cosine: a.cosine, maxAbsError: a.maxAbsError, flagged, allowed, sizeBytes };
}
