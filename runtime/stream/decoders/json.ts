// JSON payloads: UTF-8 text, size-limited before parsing, samples found at a configured field in
// one of the shapes json-samples.ts accepts; optional timestamp, seq and sample-rate fields.
import type { ResolvedJsonDecoderConfig } from './config';
import { decodeError, describeValue, guardDecode } from './fail';
import { splitPath, valueAtPath, where, type JsonPath } from './json-path';
import { readJsonSamples } from './json-samples';
import { checkTimestamp } from './timestamp';
import type { DecodeContext, DecodedSamples, Decoder } from './types';
import { decodeUtf8, firstInvalidUtf8 } from './utf8';

export class JsonDecoder implements Decoder {
  readonly kind = 'json' as const;
  private readonly field: JsonPath;
  private readonly timestampField: JsonPath | undefined;
  private readonly seqField: JsonPath | undefined;
  private readonly sampleRateField: JsonPath | undefined;
  /** Keys of the data object that hold metadata, not channels (when metadata sits beside the channels). */
  private readonly skipKeys: ReadonlySet<string>;

  constructor(private readonly config: ResolvedJsonDecoderConfig) {
    this.field = splitPath(config.field);
    this.timestampField = config.timestampField === undefined ? undefined : splitPath(config.timestampField);
    this.seqField = config.seqField === undefined ? undefined : splitPath(config.seqField);
    this.sampleRateField = config.sampleRateField === undefined ? undefined : splitPath(config.sampleRateField);
    const skip = new Set<string>();
    for (const p of [this.timestampField, this.seqField, this.sampleRateField]) {
      if (p && p.length > this.field.length && this.field.every((s, i) => p[i] === s)) skip.add(p[this.field.length]);
    }
    this.skipKeys = skip;
  }

  decode(payload: Uint8Array, ctx: DecodeContext): DecodedSamples[] {
    return guardDecode(this.kind, payload, ctx, (bytes, topic) => {
      const root = this.parse(bytes, topic);
      const path = this.config.field ?? '';
      const data = valueAtPath(root, this.field);
      if (data === undefined) throw decodeError(topic, 'E_INPUT_SHAPE', `the JSON has no field '${path}'`);
      const out: DecodedSamples = {
        device: ctx.device,
        channels: readJsonSamples(data, { topic, path, names: this.config.channels, skipKeys: this.skipKeys }),
      };
      if (this.timestampField) out.timestampMs = this.timestamp(root, topic);
      if (this.seqField) out.seq = this.number(root, this.seqField, topic, 'seqField', 'a whole number ≥ 0', (v) => Number.isSafeInteger(v) && v >= 0);
      if (this.sampleRateField) out.sampleRate = this.number(root, this.sampleRateField, topic, 'sampleRateField', 'a sample rate in Hz > 0', (v) => Number.isFinite(v) && v > 0);
      return [out];
    });
  }

  private parse(bytes: Uint8Array, topic: string): unknown {
    if (bytes.byteLength === 0) throw decodeError(topic, 'E_INPUT_SHAPE', 'payload is empty, expected JSON');
    // Refused before decoding: a 10 MB payload costs a comparison, not a parse.
    if (bytes.byteLength > this.config.maxBytes) {
      throw decodeError(topic, 'E_INPUT_SHAPE', `payload is ${bytes.byteLength} bytes, over the JSON decoder's limit of ${this.config.maxBytes} bytes (maxBytes)`);
    }
    const text = decodeUtf8(bytes);
    if (text === undefined) {
      const at = firstInvalidUtf8(bytes);
      throw decodeError(topic, 'E_INPUT_VALUE', `payload is not UTF-8 text (invalid byte 0x${bytes[at]?.toString(16).padStart(2, '0')} at byte offset ${at}), expected JSON`);
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      // Python's json module writes NaN and Infinity by default; say so, since it is the usual cause.
      const hint = /(^|[^"\w])-?(NaN|Infinity)\b/.test(text) ? ' (NaN and Infinity are not JSON: the publisher must send finite numbers)' : '';
      throw decodeError(topic, 'E_INPUT_VALUE', `payload is not valid JSON: ${reason}${hint}`, err);
    }
  }

  private timestamp(root: unknown, topic: string): number {
    const path = this.config.timestampField as string;
    const field = `${where(path)} (timestampField)`;
    const v = valueAtPath(root, this.timestampField as JsonPath);
    // A number is ms as it is; text is ISO 8601, bounded like a number but quoted as it came.
    if (typeof v === 'number') return checkTimestamp(v, topic, field);
    const ms = typeof v === 'string' ? Date.parse(v) : Number.NaN;
    if (Number.isNaN(ms)) {
      const got = v === undefined ? 'missing' : describeValue(v);
      throw decodeError(topic, 'E_INPUT_VALUE', `${field} is ${got}, expected ms since the Unix epoch or an ISO 8601 time`);
    }
    return checkTimestamp(ms, topic, field, describeValue(v));
  }

  private number(root: unknown, field: JsonPath, topic: string, option: string, expected: string, ok: (v: number) => boolean): number {
    const v = valueAtPath(root, field);
    if (typeof v === 'number' && ok(v)) return v;
    throw decodeError(topic, 'E_INPUT_VALUE', `${where(field.join('.'))} (${option}) is ${v === undefined ? 'missing' : describeValue(v)}, expected ${expected}`);
  }
}
