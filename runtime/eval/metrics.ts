// Task metrics for held-out windows: what a model card records and what the quantizer checks
// a low-bit variant against.
import { EdgeInferError } from '../errors';

export { quantile } from '../stats';

/** Index of the largest value of row `row` in a [rows, width] array. */
export function argmax(values: ArrayLike<number>, width = values.length, row = 0): number {
  let best = 0;
  for (let k = 1; k < width; k++) if (values[row * width + k] > values[row * width + best]) best = k;
  return best;
}

/** Share of predictions equal to the truth. */
export function accuracy(predicted: readonly number[], truth: readonly number[]): number {
  if (predicted.length !== truth.length) throw new EdgeInferError('E_ARGUMENT', `accuracy: ${predicted.length} predictions for ${truth.length} labels`);
  if (predicted.length === 0) throw new EdgeInferError('E_ARGUMENT', 'accuracy: no predictions');
  let ok = 0;
  for (let i = 0; i < truth.length; i++) if (predicted[i] === truth[i]) ok++;
  return ok / truth.length;
}

/** confusion[truth][predicted] counts. */
export function confusionMatrix(predicted: readonly number[], truth: readonly number[], classes: number): number[][] {
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < truth.length; i++) m[truth[i]][predicted[i]]++;
  return m;
}

/**
 * Area under the ROC curve for scores where higher means "positive" (anomalous): the chance that
 * a random positive scores above a random negative, ties counting half (Mann–Whitney U).
 */
export function rocAuc(scores: readonly number[], positive: readonly boolean[]): number {
  if (scores.length !== positive.length) throw new EdgeInferError('E_ARGUMENT', `rocAuc: ${scores.length} scores for ${positive.length} labels`);
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Float64Array(scores.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k][1]] = rank;
    i = j + 1;
  }
  let nPos = 0;
  let rankSum = 0;
  positive.forEach((p, i) => {
    if (p) {
      nPos++;
      rankSum += ranks[i];
    }
  });
  const nNeg = scores.length - nPos;
  if (nPos === 0 || nNeg === 0) throw new EdgeInferError('E_ARGUMENT', 'rocAuc needs both positive and negative examples');
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** How close two output vectors are: cosine similarity, largest and mean absolute difference. */
export function outputAgreement(a: ArrayLike<number>, b: ArrayLike<number>): { cosine: number; maxAbsError: number; meanAbsError: number } {
  if (a.length !== b.length) throw new EdgeInferError('E_ARGUMENT', `outputs differ in length: ${a.length} and ${b.length}`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
    const d = Math.abs(a[i] - b[i]);
    if (d > max) max = d;
    sum += d;
  }
  const cosine = na === 0 && nb === 0 ? 1 : na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
  return { cosine, maxAbsError: max, meanAbsError: a.length ? sum / a.length : 0 };
}
