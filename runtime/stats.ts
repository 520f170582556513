// Small statistics shared by the engine's benchmark and the evaluation metrics.
import { EdgeInferError } from './errors';

/** The q-quantile (0..1) of values, by linear interpolation between order statistics. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new EdgeInferError('E_ARGUMENT', 'quantile of no values');
  if (!(q >= 0 && q <= 1)) throw new EdgeInferError('E_ARGUMENT', `quantile q must be within 0..1, got ${q}`);
  const s = [...values].sort((a, b) => a - b);
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** Arithmetic mean; 0 for no values. */
export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0;
}
