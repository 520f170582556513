// JSON decoder specifics: the accepted shapes, metadata fields, and errors that name the path.
import { describe, expect, it } from 'vitest';
import { createDecoder, type DecodedSamples, type JsonDecoderConfig } from '../../../runtime/stream/decoders';
import { refusal } from './contract';

const topic = 'plant/pump-1/vibration';
const ctx = { topic, device: 'pump-1' };

function decode(config: Omit<JsonDecoderConfig, 'kind'>, text: string | Uint8Array): DecodedSamples[] {
  return createDecoder({ kind: 'json', ...config }).decode(typeof text === 'string' ? Buffer.from(text) : text, ctx);
}

const plain = (g: DecodedSamples[]) => g.map((s) => ({ ...s, channels: Object.fromEntries(Object.entries(s.channels).map(([k, v]) => [k, Array.from(v)])) }));

describe('JSON decoder', () => {
  describe('shapes', () => {
    it('should read a single number as one sample of the one configured channel', () => {
      expect(plain(decode({ field: 'v', channels: ['temperature'] }, '{"v": 41.5}'))).toEqual([{ device: 'pump-1', channels: { temperature: [41.5] } }]);
    });

    it('should read an object of named numbers as one sample per channel', () => {
      expect(plain(decode({}, '{"vib_x": 0.5, "vib_y": -1}'))[0].channels).toEqual({ vib_x: [0.5], vib_y: [-1] });
    });

    it('should read an object of named arrays as a block', () => {
      expect(plain(decode({ field: 'data' }, '{"data": {"a": [1, 2, 3], "b": [4, 5, 6]}}'))[0].channels).toEqual({ a: [1, 2, 3], b: [4, 5, 6] });
    });

    it('should read an array of numbers as a block of the one configured channel', () => {
      expect(plain(decode({ channels: ['current'] }, '[1, 2, 3]'))[0].channels).toEqual({ current: [1, 2, 3] });
    });

    it('should read an array of rows as a block, one row per sample, columns named by channels', () => {
      expect(plain(decode({ channels: ['x', 'y'] }, '[[1, 2], [3, 4], [5, 6]]'))[0].channels).toEqual({ x: [1, 3, 5], y: [2, 4, 6] });
    });

    it('should read an array of records as a block, one record per sample', () => {
      expect(plain(decode({}, '[{"x": 1, "y": 2}, {"y": 4, "x": 3}]'))[0].channels).toEqual({ x: [1, 3], y: [2, 4] });
    });

    it('should take only the configured channels from named data, in the configured order', () => {
      const g = decode({ channels: ['y', 'x'] }, '{"x": [1], "y": [2], "rpm": [1500], "unit": "g"}');
      expect(Object.keys(g[0].channels)).toEqual(['y', 'x']);
      expect(plain(decode({ channels: ['x'] }, '[{"x": 1, "t": 5}, {"x": 2, "t": 6}]'))[0].channels).toEqual({ x: [1, 2] });
    });

    it('should keep metadata fields that sit beside the channels out of the channels', () => {
      const g = decode({ timestampField: 'ts', seqField: 'n', sampleRateField: 'meta.fs' }, '{"ts": 1700000000000, "n": 4, "meta": {"fs": 5120}, "x": [1, 2], "y": [3, 4]}');
      expect(plain(g)).toEqual([{ device: 'pump-1', channels: { x: [1, 2], y: [3, 4] }, timestampMs: 1700000000000, seq: 4, sampleRate: 5120 }]);
    });

    it('should follow numeric steps of a field path into arrays', () => {
      expect(plain(decode({ field: 'batches.1', channels: ['x'] }, '{"batches": [[9], [1, 2]]}'))[0].channels).toEqual({ x: [1, 2] });
    });

    it("should keep a channel called '__proto__' as a channel", () => {
      const g = decode({}, '{"__proto__": [1], "x": [2]}');
      expect(Object.keys(g[0].channels)).toEqual(['__proto__', 'x']);
      expect(Object.getPrototypeOf(g[0].channels)).toBe(Object.prototype);
    });

    it('should accept a UTF-8 byte order mark and non-ASCII channel names', () => {
      const g = decode({}, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"température": [21.5]}')]));
      expect(plain(g)[0].channels).toEqual({ température: [21.5] });
    });
  });

  describe('metadata', () => {
    it('should read an ISO 8601 timestamp as ms since the epoch', () => {
      expect(decode({ timestampField: 'ts', channels: ['x'], field: 'v' }, '{"ts": "2024-05-01T12:00:00.250Z", "v": 1}')[0].timestampMs).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 250));
    });

    it('should refuse a payload without its configured timestamp, naming the field', () => {
      refusal(() => decode({ field: 'data', timestampField: 'meta.ts' }, '{"data": {"x": [1]}}'), { topic, code: 'E_INPUT_VALUE', mentions: ["field 'meta.ts' (timestampField) is missing"] });
    });

    it('should refuse a timestamp that is not a time, naming the field', () => {
      refusal(() => decode({ field: 'data', timestampField: 'ts' }, '{"data": {"x": [1]}, "ts": "yesterday"}'), { topic, mentions: ["field 'ts' (timestampField) is \"yesterday\""] });
    });

    it('should refuse a seq that is not a whole number and a sample rate that is not positive', () => {
      refusal(() => decode({ field: 'd', seqField: 'seq' }, '{"d": {"x": 1}, "seq": 1.5}'), { topic, mentions: ["field 'seq' (seqField) is 1.5, expected a whole number"] });
      refusal(() => decode({ field: 'd', sampleRateField: 'fs' }, '{"d": {"x": 1}, "fs": 0}'), { topic, mentions: ["field 'fs' (sampleRateField) is 0"] });
    });
  });

  describe('bad values', () => {
    it('should refuse a string sample, naming its path', () => {
      const err = refusal(() => decode({ field: 'data' }, `{"data": {"vib_x": [${'0,'.repeat(19)}0], "vib_y": [${'1,'.repeat(17)}"abc",1,1]}}`), { topic, code: 'E_INPUT_VALUE' });
      expect(err.message).toBe(`plant/pump-1/vibration: field 'data.vib_y[17]' is "abc", expected a number`);
    });

    it.each([
      ['null', 'null'],
      ['true', 'true'],
      ['[1]', 'an array of 1'],
      ['{}', 'an object'],
    ])('should refuse a %s sample, naming its path', (value, shown) => {
      refusal(() => decode({}, `{"x": [1, ${value}]}`), { topic, code: 'E_INPUT_VALUE', mentions: [`field 'x[1]' is ${shown}, expected a number`] });
    });

    it('should refuse a number that overflows to Infinity, and one beyond the float32 range', () => {
      refusal(() => decode({}, '{"x": [1e400]}'), { topic, code: 'E_INPUT_VALUE', mentions: ["field 'x[0]' is Infinity"] });
      refusal(() => decode({}, '{"x": [1e39]}'), { topic, code: 'E_INPUT_VALUE', mentions: ['beyond the float32 range'] });
    });

    it('should name the channel of a bad value in a row', () => {
      refusal(() => decode({ channels: ['x', 'y'] }, '[[1, 2], [3, null]]'), { topic, mentions: ["field '[1][1]' (channel 'y') is null"] });
    });

    it('should say that NaN is not JSON when a Python publisher sends it', () => {
      refusal(() => decode({}, '{"x": [1.0, NaN]}'), { topic, code: 'E_INPUT_VALUE', mentions: ['payload is not valid JSON: ', 'NaN and Infinity are not JSON'] });
    });

    it('should report a syntax error with the JSON.parse message', () => {
      let parseMessage = '';
      try {
        JSON.parse('{"x": [1, 2');
      } catch (err) {
        parseMessage = (err as Error).message;
      }
      refusal(() => decode({}, '{"x": [1, 2'), { topic, mentions: [`payload is not valid JSON: ${parseMessage}`] });
    });

    it('should refuse bytes that are not UTF-8, naming the byte offset', () => {
      refusal(() => decode({}, Buffer.from([0x7b, 0x22, 0x78, 0xc3, 0x28])), { topic, code: 'E_INPUT_VALUE', mentions: ['invalid byte 0xc3 at byte offset 3'] });
    });
  });

  describe('bad shapes', () => {
    it('should refuse rows of different lengths, naming the row', () => {
      refusal(() => decode({ channels: ['x', 'y', 'z'] }, '[[1, 2, 3], [4, 5]]'), { topic, code: 'E_INPUT_SHAPE', mentions: ["field '[1]' has 2 values, expected 3 (one per channel: x, y, z)"] });
    });

    it('should refuse records with different channels', () => {
      refusal(() => decode({}, '[{"x": 1, "y": 2}, {"x": 3}]'), { topic, code: 'E_INPUT_SHAPE', mentions: ["field '[1]' has no channel 'y'"] });
      refusal(() => decode({}, '[{"x": 1}, {"x": 3, "q": 1}]'), { topic, code: 'E_INPUT_SHAPE', mentions: ["field '[1]' has channel 'q'"] });
    });

    it('should refuse channel arrays of different lengths', () => {
      refusal(() => decode({ field: 'd' }, '{"d": {"x": [1, 2, 3], "y": [1, 2]}}'), { topic, code: 'E_INPUT_SHAPE', mentions: ["field 'd.x' has 3 samples, field 'd.y' has 2"] });
    });

    it('should refuse an object that mixes single values and arrays', () => {
      refusal(() => decode({}, '{"x": 1, "y": [2]}'), { topic, code: 'E_INPUT_SHAPE', mentions: ['mixes single values and arrays'] });
    });

    it('should refuse unnamed data when the channels do not name it', () => {
      refusal(() => decode({}, '[1, 2, 3]'), { topic, code: 'E_INPUT_SHAPE', mentions: ["needs exactly one name in the decoder's channels, but none is configured"] });
      refusal(() => decode({ channels: ['x', 'y'] }, '5'), { topic, mentions: ['but it names 2 (x, y)'] });
      refusal(() => decode({}, '[[1, 2]]'), { topic, mentions: ['set the decoder\'s channels'] });
    });

    it('should refuse empty data and a missing field', () => {
      refusal(() => decode({ channels: ['x'] }, '[]'), { topic, code: 'E_INPUT_SHAPE', mentions: ['holds no samples'] });
      refusal(() => decode({}, '{"x": []}'), { topic, mentions: ["field 'x' holds no samples"] });
      refusal(() => decode({}, '{}'), { topic, mentions: ['holds no channels'] });
      refusal(() => decode({ field: 'payload.samples' }, '{"payload": {}}'), { topic, mentions: ["the JSON has no field 'payload.samples'"] });
      refusal(() => decode({ field: 'constructor' }, '{}'), { topic, mentions: ["no field 'constructor'"] });
      refusal(() => decode({ channels: ['x'] }, '{"y": 1}'), { topic, mentions: ["the payload has no channel 'x'"] });
    });

    it('should refuse text, booleans and null as data', () => {
      refusal(() => decode({}, '"hello"'), { topic, code: 'E_INPUT_SHAPE', mentions: ['the payload is "hello", expected samples'] });
      refusal(() => decode({ field: 'd' }, '{"d": null}'), { topic, mentions: ["field 'd' is null"] });
    });
  });

  describe('limits', () => {
    it('should refuse a 10 MB payload at once, without parsing it', () => {
      const huge = Buffer.alloc(10 * 1024 * 1024, 0x20);
      const started = performance.now();
      refusal(() => decode({}, huge), { topic, code: 'E_INPUT_SHAPE', mentions: ['payload is 10485760 bytes, over the JSON decoder\'s limit of 1048576 bytes (maxBytes)'] });
      expect(performance.now() - started).toBeLessThan(20);
    });

    it('should apply a configured maxBytes', () => {
      const text = '{"x": [1, 2, 3]}';
      expect(decode({ maxBytes: text.length }, text)).toHaveLength(1);
      refusal(() => decode({ maxBytes: text.length - 1 }, text), { topic, mentions: [`over the JSON decoder's limit of ${text.length - 1} bytes`] });
    });

    it('should decode a block just under the default limit', () => {
      const n = 40_000;
      const text = JSON.stringify({ x: Array.from({ length: n }, (_, i) => i * 0.25), y: Array.from({ length: n }, (_, i) => -i) });
      expect(text.length).toBeLessThan(1024 * 1024);
      const g = decode({}, text);
      expect(g[0].channels.x.length).toBe(n);
      expect(g[0].channels.y[n - 1]).toBe(-(n - 1));
    });

    it('should refuse deeply nested JSON without overflowing the stack', () => {
      refusal(() => decode({}, '['.repeat(400_000) + ']'.repeat(400_000)), { topic });
    });
  });
});
