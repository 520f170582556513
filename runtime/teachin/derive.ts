// A device's own threshold from the scores of windows the operator declared healthy: a high
// quantile of them, plus a margin measured in their own spread, never below the highest of them.
// With the alert's K (K anomalous windows in a row raise it), the scores are those the alert rule
// acts on: the lowest of each run of K consecutive windows, so a lone spike no longer sets it.
import { EdgeInferError } from '../errors';
import { type ModelCard, normalLabel } from '../model';

export interface ThresholdRule {
  /** The quantile of the healthy scores the threshold starts from, in (0, 1] (default 0.999). */
  quantile: number;
  /** Added above that quantile, as a multiple of (quantile − median): unit-free, so one default fits every model's score scale (default 1). */
  margin: number;
  /**
   * K of the alert rule that judges the device (K anomalous windows in a row raise an alert): the
   * threshold is derived from the lowest score of each run of K consecutive windows. 1 (default):
   * from the single windows, today's rule exactly.
   */
  consecutive?: number;
}

/** How a baseline's threshold was derived: from single windows (K = 1), or from the lowest score of each run of K windows. */
export type ThresholdRuleName = 'windows' | 'runs';

export interface DerivedThreshold {
  threshold: number;
  /** The healthy scores' quantile the rule asked for. */
  quantileScore: number;
  median: number;
  /** The highest single score taught. */
  maxScore: number;
  windows: number;
  /** K: windows per run. */
  consecutive: number;
  rule: ThresholdRuleName;
  /** The highest of the runs' lowest scores (K = 1: maxScore): the threshold is always above it. */
  maxRunScore: number;
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
  if (rule.consecutive !== undefined) checkConsecutive(rule.consecutive, where);
}

/** Checks K, the alert's windows in a row, naming it; `where` says whose it is. */
export function checkConsecutive(k: unknown, where: string): number {
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1) throw new EdgeInferError('E_ARGUMENT', `${where}: consecutive (the alert's windows in a row) must be a whole number ≥ 1, got ${String(k)}`);
  return k;
}

/**
 * The lowest score of each run of k consecutive scores, in order (n − k + 1 of them): the score a
 * threshold must stay under for k windows in a row to be flagged. Linear time (a deque of the
 * candidates for the minimum), so a 100,000-window teach-in with any k costs the same.
 */
export function runMinima(scores: ArrayLike<number>, k: number): Float64Array {
  const n = scores.length;
  if (k === 1) return Float64Array.from(scores);
  const out = new Float64Array(Math.max(0, n - k + 1));
  const deque = new Int32Array(n);
  let head = 0;
  let tail = 0;
  for (let i = 0; i < n; i++) {
    while (tail > head && scores[deque[tail - 1]] >= scores[i]) tail--;
    deque[tail++] = i;
    if (deque[head] <= i - k) head++;
    if (i >= k - 1) out[i - k + 1] = scores[deque[head]];
  }
  return out;
}

/**
 * threshold = Q + margin · (Q − median), Q the rule's quantile and median those of the healthy
 * scores (K = 1) or of each K-run's lowest score (K > 1, `rule.consecutive`); raised to just above
 * the highest of those when it falls below it: no window (K = 1), no K windows in a row (K > 1)
 * the operator declared healthy would have been flagged (the model's flag is score ≥ threshold).
 * The scores must come in window order: runs are of consecutive windows. A NaN or infinite score
 * is refused, naming the first one: it would make every quantile meaningless. Fewer scores than
 * K is refused: there is no run to learn from.
 */
export function deriveThreshold(scores: ArrayLike<number>, rule: ThresholdRule): DerivedThreshold {
  checkRule(rule, 'teach-in');
  const k = rule.consecutive ?? 1;
  if (scores.length === 0) throw new EdgeInferError('E_ARGUMENT', 'teach-in: no healthy scores to derive a threshold from');
  if (k > scores.length) throw new EdgeInferError('E_ARGUMENT', `teach-in: consecutive (${k} windows in a row) is more than the ${scores.length} windows taught`);
  let maxScore = -Infinity;
  for (let i = 0; i < scores.length; i++) {
    if (typeof scores[i] !== 'number' || !Number.isFinite(scores[i])) throw new EdgeInferError('E_ARGUMENT', `teach-in: score ${i} is ${String(scores[i])}, expected a finite number`);
    if (scores[i] > maxScore) maxScore = scores[i];
  }
  const sorted = runMinima(scores, k).sort();
  const q = quantileOf(sorted, rule.quantile);
  const median = quantileOf(sorted, 0.5);
  const maxRunScore = sorted[sorted.length - 1];
  let threshold = q + rule.margin * (q - median);
  // The next number above the highest: equal would flag that very window (that very run).
  if (!(threshold > maxRunScore)) threshold = maxRunScore + Math.max(Math.abs(maxRunScore), 1) * 4 * Number.EPSILON;
  return { threshold, quantileScore: q, median, maxScore, windows: scores.length, consecutive: k, rule: k === 1 ? 'windows' : 'runs', maxRunScore };
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
