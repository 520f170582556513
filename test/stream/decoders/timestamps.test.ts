// Timestamps the gateway cannot date, in every format that carries one: past what Date holds
// (1e16 ms, −1e16), nanoseconds (1.7e18), microseconds (1.7e15), NaN and Infinity where the
// format can carry them. Each is refused as E_INPUT_VALUE naming the format's own field and the
// value; times up to the bound (±1e15 ms) pass, so the window's end is always a valid Date.
import * as protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { createDecoder } from '../../../runtime/stream/decoders';
import { MAX_TIMESTAMP_MS, timestampProblem } from '../../../runtime/stream/decoders/timestamp';
import { refusal } from './contract';
import { BIRTH_TIME, DEVICE, dbirth, nbirth, rawData, topicOf } from './sparkplug-helpers';

const topic = 'plant/pump-1/vibration';
const ctx = { topic, device: 'pump-1' };

/** A one-sample float32 block with the edge-infer header, written by hand. */
function block(timestampMs: number): Uint8Array {
  const dv = new DataView(new ArrayBuffer(20));
  [0x45, 0x49, 0x46, 0x31].forEach((b, i) => dv.setUint8(i, b));
  dv.setUint32(4, 7, true);
  dv.setFloat64(8, timestampMs, true);
  dv.setFloat32(16, 0.5, true);
  return new Uint8Array(dv.buffer);
}

const float32 = () => createDecoder({ kind: 'float32', channels: ['x'], header: 'edge-infer' });
const json = () => createDecoder({ kind: 'json', field: 'v', channels: ['x'], timestampField: 'ts' });

/** Every value a decoder must refuse, with what its message must say of it. */
const OUT_OF_RANGE = [
  { value: 1e16, shown: '10000000000000000 (1e16)', hint: undefined },
  { value: -1e16, shown: '-10000000000000000 (-1e16)', hint: undefined },
  { value: 1.7e18, shown: '1700000000000000000 (1.7e18)', hint: '1.7e18 looks like nanoseconds (as nanoseconds it is 2023-11-14T22:13:20.000Z)' },
  { value: 1.7e15, shown: '1700000000000000 (1.7e15)', hint: '1.7e15 looks like microseconds (as microseconds it is 2023-11-14T22:13:20.000Z)' },
  // Just past the bound reads as microseconds in 2001: the hint says so.
  { value: MAX_TIMESTAMP_MS + 1, shown: '1000000000000001 (1.000000000000001e15)', hint: '1.000000000000001e15 looks like microseconds (as microseconds it is 2001-09-09T01:46:40.000Z)' },
] as const;

const EXPECTED = 'expected ms since the Unix epoch within ±1e15 (the years −29719 to 33658)';

describe('timestamp bound', () => {
  it('should accept every time up to ±1e15 ms, and leave room for any window after it', () => {
    for (const ms of [0, -1, 1_700_000_000_000, MAX_TIMESTAMP_MS, -MAX_TIMESTAMP_MS]) expect(timestampProblem(ms)).toBeUndefined();
    // The latest accepted start plus 200,000 years of samples is still a Date.
    expect(new Date(MAX_TIMESTAMP_MS + 200_000 * 365.25 * 86_400_000).toISOString()).toMatch(/^\+2/);
  });

  it('should give no unit hint where no unit makes a plausible time', () => {
    expect(timestampProblem(1e16)).toBe(EXPECTED);
    expect(timestampProblem(-1.7e18)).toBe(EXPECTED);
    expect(timestampProblem(Number.NaN)).toBe(EXPECTED);
  });
});

describe('float32 header timestamps', () => {
  it.each(OUT_OF_RANGE)('should refuse a header timestampMs of $value, naming the field and the value', ({ value, shown, hint }) => {
    const err = refusal(() => float32().decode(block(value), ctx), { topic, code: 'E_INPUT_VALUE', mentions: [`header timestampMs (float64 at byte offset 8) is ${shown}, ${EXPECTED}`] });
    if (hint) expect(err.message).toContain(hint);
    else expect(err.message).not.toContain('looks like');
  });

  it.each([Number.NaN, Infinity, -Infinity])('should refuse a header timestampMs of %s', (value) => {
    refusal(() => float32().decode(block(value), ctx), { topic, code: 'E_INPUT_VALUE', mentions: [`header timestampMs (float64 at byte offset 8) is ${value}, ${EXPECTED}`] });
  });

  it('should pass times up to the bound', () => {
    expect(float32().decode(block(MAX_TIMESTAMP_MS), ctx)[0].timestampMs).toBe(MAX_TIMESTAMP_MS);
    expect(float32().decode(block(-MAX_TIMESTAMP_MS), ctx)[0].timestampMs).toBe(-MAX_TIMESTAMP_MS);
  });
});

describe('JSON timestamps', () => {
  const payload = (ts: string) => Buffer.from(`{"ts": ${ts}, "v": 0.5}`);

  it.each(OUT_OF_RANGE)('should refuse a timestampField of $value, naming the field and the value', ({ value, shown, hint }) => {
    const err = refusal(() => json().decode(payload(String(value)), ctx), { topic, code: 'E_INPUT_VALUE', mentions: [`field 'ts' (timestampField) is ${shown}, ${EXPECTED}`] });
    if (hint) expect(err.message).toContain(hint);
  });

  it('should refuse a number JSON reads as Infinity, and text that is no time', () => {
    refusal(() => json().decode(payload('1e999'), ctx), { topic, code: 'E_INPUT_VALUE', mentions: [`field 'ts' (timestampField) is Infinity, ${EXPECTED}`] });
    refusal(() => json().decode(payload('-1e999'), ctx), { topic, mentions: [`field 'ts' (timestampField) is -Infinity`] });
    refusal(() => json().decode(payload('"NaN"'), ctx), { topic, code: 'E_INPUT_VALUE', mentions: [`field 'ts' (timestampField) is "NaN", expected ms since the Unix epoch or an ISO 8601 time`] });
  });

  it('should refuse ISO 8601 text past the bound, quoting the text', () => {
    // Date.parse takes both, and the first is Date's very last millisecond: its window would end past it.
    refusal(() => json().decode(payload('"+275760-09-13T00:00:00.000Z"'), ctx), { topic, code: 'E_INPUT_VALUE', mentions: [`field 'ts' (timestampField) is "+275760-09-13T00:00:00.000Z", ${EXPECTED}`] });
    refusal(() => json().decode(payload('"-100000-01-01T00:00:00Z"'), ctx), { topic, mentions: [`field 'ts' (timestampField) is "-100000-01-01T00:00:00Z", ${EXPECTED}`] });
  });

  it('should pass times up to the bound, as numbers and as text', () => {
    expect(json().decode(payload(String(MAX_TIMESTAMP_MS)), ctx)[0].timestampMs).toBe(MAX_TIMESTAMP_MS);
    expect(json().decode(payload('"+033658-09-27T01:46:40.000Z"'), ctx)[0].timestampMs).toBe(MAX_TIMESTAMP_MS);
  });
});

describe('Sparkplug timestamps', () => {
  const ddata = topicOf('DDATA', DEVICE);
  /** A Sparkplug decoder that has seen the node's and the device's births (seq 0 and 1). */
  function born() {
    const d = createDecoder({ kind: 'sparkplug', channels: { 'Vibration/X': 'x' } });
    d.decode(nbirth(), { topic: topicOf('NBIRTH'), device: 'unused' });
    d.decode(dbirth(1), { topic: topicOf('DBIRTH', DEVICE), device: 'unused' });
    return d;
  }
  /** uint64 as protobufjs writes it from a Long: exact beyond 2^53. */
  const u64 = (text: string) => (protobuf.util.Long as typeof import('long')).fromString(text, true) as unknown as number;

  it.each(OUT_OF_RANGE.filter((c) => c.value > 0))('should refuse a payload timestamp of $value, naming the field and the value', ({ value, shown, hint }) => {
    const err = refusal(() => born().decode(rawData(2, [{ alias: 11, floatValue: 0.5 }], value), { topic: ddata, device: 'unused' }), {
      topic: ddata,
      code: 'E_INPUT_VALUE',
      mentions: [`payload timestamp is ${shown}, ${EXPECTED}`],
    });
    if (hint) expect(err.message).toContain(hint);
  });

  it("should refuse a metric's own timestamp past the bound, naming the metric", () => {
    const metrics = [{ alias: 11, floatValue: 0.5, timestamp: 1.7e18 }];
    refusal(() => born().decode(rawData(2, metrics, BIRTH_TIME), { topic: ddata, device: 'unused' }), {
      topic: ddata,
      code: 'E_INPUT_VALUE',
      mentions: [`metric 'Vibration/X' (alias 11) timestamp is 1700000000000000000 (1.7e18), ${EXPECTED}`, 'looks like nanoseconds'],
    });
  });

  it('should show a uint64 beyond 2^53 exactly, as the wire has it (a −1 written as uint64)', () => {
    refusal(() => born().decode(rawData(2, [{ alias: 11, floatValue: 0.5 }], u64('18446744073709551615')), { topic: ddata, device: 'unused' }), {
      topic: ddata,
      mentions: [`payload timestamp is 18446744073709551615 (1.8446744073709552e19), ${EXPECTED}`],
    });
  });

  it('should pass the payload timestamp a metric overrides, and times up to the bound', () => {
    const [g] = born().decode(rawData(2, [{ alias: 11, floatValue: 0.5, timestamp: MAX_TIMESTAMP_MS }], 1e16), { topic: ddata, device: 'unused' });
    expect(g.timestampMs).toBe(MAX_TIMESTAMP_MS);
  });
});
