// The contract every payload decoder keeps, written once and run against each (as MQTT.js runs
// abstract_client against tcp, tls and websocket). A fixture supplies the decoder, the topic,
// what a fresh decoder must see first (Sparkplug births), and an encoder for its wire format.
import { describe, expect, it } from 'vitest';
import { EdgeInferError, type ErrorCode } from '../../../runtime/errors';
import type { DecodedSamples, Decoder } from '../../../runtime/stream/decoders';
import { MAX_TIMESTAMP_MS } from '../../../runtime/stream/decoders/timestamp';

/** Every fixture's decoder reads these three channels. */
export const CHANNELS = ['vib_x', 'vib_y', 'vib_z'] as const;

export type Samples = Record<(typeof CHANNELS)[number], number[]>;

export interface ContractMessage {
  topic: string;
  payload: Uint8Array;
}

export interface DecoderFixture {
  /** Shown in test names, e.g. "float32 (planar, edge-infer header)". */
  name: string;
  /** A fresh decoder configured for CHANNELS. */
  create(): Decoder;
  /** The topic data arrives on, and the device the samples must be attributed to. */
  topic: string;
  device: string;
  /** Messages a fresh decoder must decode before data (Sparkplug births); they must return []. */
  prelude?(): ContractMessage[];
  /**
   * One data payload carrying `samples` (one array per channel, equal lengths, N ≥ 1). `k` is
   * the message's place after the prelude (0, 1, 2 ...), for formats that number messages.
   */
  encode(samples: Samples, k?: number): Uint8Array;
  /**
   * Whether the format can tell a payload cut to `length` bytes from a whole one (default: always).
   * A float32 block cut at a whole sample is itself a valid block; nothing can tell.
   */
  detectsCutAt?(length: number, whole: number): boolean;
}

/** A 3-channel block of N samples whose values differ by channel and sample, float32-exact. */
export function makeSamples(n: number, seed = 1): Samples {
  const ch = (k: number) => Array.from({ length: n }, (_, i) => Math.fround(Math.sin(seed * 7.1 + i * 0.37 + k) * (k + 1) * 3.5));
  return { vib_x: ch(0), vib_y: ch(1), vib_z: ch(2) };
}

/** A fresh decoder that has seen the fixture's prelude. */
export function primed(fixture: DecoderFixture): Decoder {
  const decoder = fixture.create();
  for (const m of fixture.prelude?.() ?? []) expect(decoder.decode(m.payload, { topic: m.topic, device: 'unused' })).toEqual([]);
  return decoder;
}

/** Decodes on a primed decoder, as the pipeline would, with the device taken from the topic. */
export function decodeFresh(fixture: DecoderFixture, payload: Uint8Array): DecodedSamples[] {
  return primed(fixture).decode(payload, { topic: fixture.topic, device: fixture.device });
}

/** Every invariant of DecodedSamples: equal-length, non-empty, finite Float32Array channels. */
export function expectWellFormed(groups: unknown): asserts groups is DecodedSamples[] {
  expect(Array.isArray(groups)).toBe(true);
  for (const g of groups as DecodedSamples[]) {
    expect(typeof g.device).toBe('string');
    const arrays = Object.values(g.channels);
    expect(arrays.length).toBeGreaterThan(0);
    for (const a of arrays) {
      expect(a).toBeInstanceOf(Float32Array);
      expect(a.length).toBe(arrays[0].length);
      expect(a.every(Number.isFinite)).toBe(true);
    }
    expect(arrays[0].length).toBeGreaterThan(0);
    for (const k of ['timestampMs', 'sampleRate', 'seq'] as const) if (g[k] !== undefined) expect(Number.isFinite(g[k])).toBe(true);
    if (g.timestampMs !== undefined) expect(Math.abs(g.timestampMs)).toBeLessThanOrEqual(MAX_TIMESTAMP_MS);
  }
}

/** The groups' samples joined per channel, in the order the decoder returned them. */
export function joined(groups: DecodedSamples[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const g of groups) for (const [name, a] of Object.entries(g.channels)) (out[name] ??= []).push(...a);
  return out;
}

/** Runs `fn` and returns the EdgeInferError it throws; fails on success or on any other error. */
export function refusal(fn: () => unknown, expected: { topic: string; code?: ErrorCode; mentions?: readonly string[] }): EdgeInferError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected the decoder to refuse the payload').toBeInstanceOf(EdgeInferError);
  const err = thrown as EdgeInferError;
  expect(err.message.startsWith(`${expected.topic}: `), err.message).toBe(true);
  if (expected.code) expect(err.code, err.message).toBe(expected.code);
  for (const m of expected.mentions ?? []) expect(err.message).toContain(m);
  return err;
}

export function describeDecoderContract(fixture: DecoderFixture): void {
  const { topic, device } = fixture;

  describe(`${fixture.name} decoder contract`, () => {
    it.each([1, 7, 256])('should return exactly the samples of 3 channels × %i samples, as float32, for the device', (n) => {
      const samples = makeSamples(n);
      const groups = decodeFresh(fixture, fixture.encode(samples));
      expectWellFormed(groups);
      expect(groups.length).toBeGreaterThan(0);
      for (const g of groups) expect(g.device).toBe(device);
      expect(joined(groups)).toEqual(samples);
    });

    it('should carry the extremes of float32 exactly', () => {
      const edge = [3.4028234663852886e38, -3.4028234663852886e38, 1.401298464324817e-45, 1.1754943508222875e-38, 0, Math.fround(-1 / 3)];
      const samples: Samples = { vib_x: edge, vib_y: [...edge].reverse(), vib_z: edge.map((v) => v / 2).map(Math.fround) };
      expect(joined(decodeFresh(fixture, fixture.encode(samples)))).toEqual(samples);
    });

    it('should be deterministic: the same messages from the same start give the same samples', () => {
      const payload = fixture.encode(makeSamples(33, 2));
      const a = decodeFresh(fixture, payload);
      const b = decodeFresh(fixture, payload);
      expect(b).toEqual(a);
      expect(b.map((g) => Object.keys(g.channels))).toEqual(a.map((g) => Object.keys(g.channels)));
    });

    it('should not change the payload it decodes', () => {
      const payload = fixture.encode(makeSamples(9, 3));
      const copy = Uint8Array.from(payload);
      decodeFresh(fixture, payload);
      expect(Uint8Array.from(payload)).toEqual(copy);
    });

    it('should decode a payload that starts at an odd offset of its buffer', () => {
      const payload = fixture.encode(makeSamples(10, 4));
      const backing = new Uint8Array(payload.length + 3);
      backing.set(payload, 3);
      const odd = backing.subarray(3);
      expect(joined(decodeFresh(fixture, odd))).toEqual(makeSamples(10, 4));
    });

    it('should refuse an empty payload, naming the topic', () => {
      refusal(() => decodeFresh(fixture, new Uint8Array(0)), { topic });
    });

    it('should refuse every truncated payload, naming the topic', () => {
      const whole = fixture.encode(makeSamples(5, 5));
      const cuts = Array.from({ length: whole.length }, (_, k) => k).filter((k) => fixture.detectsCutAt?.(k, whole.length) ?? true);
      expect(cuts.length).toBeGreaterThan(whole.length / 2);
      for (const k of cuts) refusal(() => decodeFresh(fixture, whole.subarray(0, k)), { topic });
    });

    it.each([
      ['NaN', Number.NaN],
      ['Infinity', Number.POSITIVE_INFINITY],
      ['-Infinity', Number.NEGATIVE_INFINITY],
    ])('should refuse a %s sample with E_INPUT_VALUE, naming the topic and the channel', (_, bad) => {
      const samples = makeSamples(6, 6);
      samples.vib_y[3] = bad;
      refusal(() => decodeFresh(fixture, fixture.encode(samples)), { topic, code: 'E_INPUT_VALUE', mentions: ['vib_y'] });
    });

    it('should refuse a value beyond the float32 range rather than turn it into Infinity', () => {
      const samples = makeSamples(4, 7);
      samples.vib_z[2] = 1e39;
      refusal(() => decodeFresh(fixture, fixture.encode(samples)), { topic, code: 'E_INPUT_VALUE', mentions: ['vib_z'] });
    });

    it('should refuse a payload that is not bytes with E_ARGUMENT, naming the topic', () => {
      refusal(() => primed(fixture).decode('{"vib_x":1}' as unknown as Uint8Array, { topic, device }), { topic, code: 'E_ARGUMENT' });
    });

    it('should throw nothing but EdgeInferError on garbage', () => {
      const garbage = [
        [0xff], [0x00], [0x7b], [0x5b, 0x5d], [0x08, 0x96, 0x01], [0x12, 0xff, 0xff, 0xff, 0xff, 0x0f], [0x0a, 0x80],
        Array.from('{"vib_x":[1,2],"vib_y":[1],"vib_z":null}', (c) => c.charCodeAt(0)),
        Array.from('null', (c) => c.charCodeAt(0)),
        Array.from({ length: 97 }, (_, i) => (i * 37) & 0xff),
      ];
      for (const bytes of garbage) {
        try {
          expectWellFormed(decodeFresh(fixture, Uint8Array.from(bytes)));
        } catch (err) {
          expect(err, String(err)).toBeInstanceOf(EdgeInferError);
          expect((err as Error).message.startsWith(`${topic}: `)).toBe(true);
        }
      }
    });

    it('should decode a run of 300 consecutive messages, in order', () => {
      const decoder = primed(fixture);
      for (let k = 0; k < 300; k++) {
        const samples = makeSamples(2, k);
        expect(joined(decoder.decode(fixture.encode(samples, k), { topic, device }))).toEqual(samples);
      }
    });

    it('should keep decoding the messages after one it refused', () => {
      const decoder = primed(fixture);
      const bad = makeSamples(8, 8);
      bad.vib_x[0] = Number.NaN;
      refusal(() => decoder.decode(fixture.encode(bad, 0), { topic, device }), { topic, code: 'E_INPUT_VALUE' });
      refusal(() => decoder.decode(new Uint8Array([0x7b, 0x0a]), { topic, device }), { topic });
      const good = makeSamples(8, 9);
      expect(joined(decoder.decode(fixture.encode(good, 1), { topic, device }))).toEqual(good);
    });
  });
}
