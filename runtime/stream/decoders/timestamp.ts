// The one bound on payload timestamps, shared by every decoder. A timestamp becomes a window's
// start and end, a result's time and the ISO text published with it; past what Date holds
// (±8.64e15 ms) toISOString() throws, far from the payload that caused it. So a decoder refuses
// it here, naming the field and the value, and the message becomes a dead letter.
import { decodeError } from './fail';

/**
 * Largest |timestamp| accepted, in ms since the Unix epoch: 1e15, the years −29,719 to 33,658.
 * Every real clock is well inside; a millisecond timestamp beyond it is a unit mistake
 * (microseconds or nanoseconds) or garbage. It leaves 7.64e15 ms below Date's limit, so the end
 * of any window that starts at an accepted time (start + samples / rate) stays a valid Date.
 */
export const MAX_TIMESTAMP_MS = 1e15;

/** Time in ms that a misread unit would give, when it lands between 2000 and 2100 (the hint's test). */
const PLAUSIBLE_FROM_MS = Date.UTC(2000, 0, 1);
const PLAUSIBLE_TO_MS = Date.UTC(2100, 0, 1);

const UNITS = [
  { name: 'microseconds', perMs: 1e3 },
  { name: 'nanoseconds', perMs: 1e6 },
] as const;

/**
 * 1700000000000000000 → "1700000000000000000 (1.7e18)"; values up to the bound as they are.
 * `exact` is the value's own text when the number is not exact (a uint64 beyond 2^53).
 */
export function showTimestamp(v: number, exact?: string): string {
  const text = exact ?? String(v);
  if (!Number.isFinite(v) || Math.abs(v) <= MAX_TIMESTAMP_MS) return text;
  return `${text} (${short(v)})`;
}

/** 1.7e18, not 1.7e+18. */
const short = (v: number): string => v.toExponential().replace('e+', 'e');

/** What a refused timestamp is checked against, as messages say it. */
const EXPECTED = 'expected ms since the Unix epoch within ±1e15 (the years −29719 to 33658)';

/**
 * Why `ms` is not a timestamp the gateway can date, or undefined when it is one. The text reads
 * after "<field> is <value>, ": what was expected, and a hint when the value read as µs or ns
 * would be a time between 2000 and 2100 (the usual mistake: a clock in the wrong unit).
 */
export function timestampProblem(ms: number): string | undefined {
  if (Number.isFinite(ms) && Math.abs(ms) <= MAX_TIMESTAMP_MS) return undefined;
  for (const unit of UNITS) {
    const asMs = ms / unit.perMs;
    if (asMs >= PLAUSIBLE_FROM_MS && asMs < PLAUSIBLE_TO_MS) {
      return `${EXPECTED}; ${short(ms)} looks like ${unit.name} (as ${unit.name} it is ${new Date(asMs).toISOString()}): the publisher must send milliseconds`;
    }
  }
  return EXPECTED;
}

/**
 * Returns `ms` when it is a timestamp the gateway can date; otherwise throws E_INPUT_VALUE
 * "<topic>: <field> is <value>, expected ...". `field` names where the value came from in the
 * payload format's own words (the header's `timestampMs`, JSON `field 'ts' (timestampField)`,
 * ...); `shown` is what the payload held when that is not the number itself (an ISO text).
 */
export function checkTimestamp(ms: number, topic: string, field: string, shown?: string): number {
  const problem = timestampProblem(ms);
  if (problem === undefined) return ms;
  throw decodeError(topic, 'E_INPUT_VALUE', `${field} is ${shown ?? showTimestamp(ms)}, ${problem}`);
}
