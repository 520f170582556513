// Decoder errors: every message starts with the topic and stands alone, because the pipeline
// stores it as a dead letter's reason and nobody will have the payload at hand when reading it.
import { EdgeInferError, type ErrorCode } from '../../errors';
import type { DecodeContext, DecoderKind } from './types';

/** An EdgeInferError whose message reads `<topic>: <what is wrong, and where>`. */
export function decodeError(topic: string, code: ErrorCode, message: string, cause?: unknown): EdgeInferError {
  return new EdgeInferError(code, `${topic}: ${message}`, cause === undefined ? undefined : { cause });
}

/**
 * Runs one decode so that nothing but EdgeInferError escapes: a decoder bug or a library error
 * on a hostile payload becomes a dead letter, never a crashed gateway.
 */
export function guardDecode<T>(kind: DecoderKind, payload: unknown, ctx: DecodeContext, body: (payload: Uint8Array, topic: string) => T): T {
  const topic = typeof ctx?.topic === 'string' ? ctx.topic : '(no topic)';
  if (!(payload instanceof Uint8Array)) {
    throw decodeError(topic, 'E_ARGUMENT', `the ${kind} decoder takes the payload as bytes (Buffer or Uint8Array), got ${describeValue(payload)}`);
  }
  try {
    return body(payload, topic);
  } catch (err) {
    if (err instanceof EdgeInferError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw decodeError(topic, 'E_INPUT_VALUE', `${kind} payload of ${payload.byteLength} bytes could not be decoded: ${reason}`, err);
  }
}

/** A value as an error message shows it: strings quoted and cut short, containers by kind. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** Float32 range check: a finite double can still overflow to Infinity once stored as float32. */
export function float32Problem(v: number): string | undefined {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return `${v}`;
  if (!Number.isFinite(Math.fround(v))) return `${v}, beyond the float32 range (±3.4e38)`;
  return undefined;
}
