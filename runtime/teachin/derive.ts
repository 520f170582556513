// A device's own threshold from the scores of windows the operator declared healthy: a high
// quantile of them, plus a margin measured in their own spread, never below the highest of them.
import { EdgeInferError } from '../errors';
import { type ModelCard, normalLabel } from '../model';

export interface ThresholdRule {
  /** The quantile of the healthy scores the threshold starts from, in (0, 1] (default 0.999). */
  quantile: number;
  /** Added above that quantile, as a multiple of (quantile − median): unit-free, so one default fits every model's score scale (default 1). */
  margin: number;
}

export interface DerivedThreshold {
  threshold: number;
  /** The healthy scores' quantile the rule asked for. */
  quantileScore: number;
  median: number;
  maxScore: number;
  windows: number;
}

/** The q-quantile of sorted values, interpolated between neighbours (R's type 7, numpy's default). */
export function quantileOf(sorted: ArrayLike<number>, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Checks a rule's numbers, naming the field; `where` says whose rule it is. */
export function checkRule(rule: ThresholdRule, where: string): void {
  if (typeof rule.quantile !== 'number' || !(rule.quantile > 0 && rule.quantile <= 1)) throw new EdgeInferError('E_ARGUMENT', `${where}: quantile must be a number in (0, 1], got ${String(rule.quantile)}`);
  if (typeof rule.margin !== 'number' || !Number.isFinite(rule.margin) || rule.margin < 0) throw new EdgeInferError('E_ARGUMENT', `${where}: margin must be a finite number ≥ 0, got ${String(rule.margin)}`);
}

/**
 * threshold = Q + margin · (Q − median), Q the rule's quantile of the healthy scores; raised to
 * just above the highest of them when it falls below it: a window the operator declared healthy
 * would never have been flagged (the model's flag is score ≥ threshold). A NaN or infinite score
 * is refused, naming the first one: it would make every quantile meaningless.
 */
export function deriveThreshold(scores: ArrayLike<number>, rule: ThresholdRule): DerivedThreshold {
  checkRule(rule, 'teach-in');
  if (scores.length === 0) throw new EdgeInferError('E_ARGUMENT', 'teach-in: no healthy scores to derive a threshold from');
  for (let i = 0; i < scores.length; i++) {
    if (typeof scores[i] !== 'number' || !Number.isFinite(scores[i])) throw new EdgeInferError('E_ARGUMENT', `teach-in: score ${i} is ${String(scores[i])}, expected a finite number`);
  }
  const sorted = Float64Array.from(scores).sort();
  const q = quantileOf(sorted, rule.quantile);
  const median = quantileOf(sorted, 0.5);
  const maxScore = sorted[sorted.length - 1];
  let threshold = q + rule.margin * (q - median);
  // The next number above the highest: equal would flag that very window.
  if (!(threshold > maxScore)) threshold = maxScore + Math.max(Math.abs(maxScore), 1) * 4 * Number.EPSILON;
  return { threshold, quantileScore: q, median, maxScore, windows: scores.length };
}

/**
 * The score a window teaches, in the threshold's terms: anomaly and regression models, their
 * score; a classifier, its highest probability of a label that is not the normal one (what its
 * threshold is compared with when that label wins).
 */
export function taughtScore(card: ModelCard, score: number, outputs: ArrayLike<number>): number {
  if (card.task !== 'classification') return score;
  const labels = card.output.labels ?? [];
  const normal = normalLabel(card);
  let best = 0;
  for (let k = 0; k < labels.length && k < outputs.length; k++) if (labels[k] !== normal && outputs[k] > best) best = outputs[k];
  return best;
}
