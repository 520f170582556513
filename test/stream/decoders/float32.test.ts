// Float32 block decoder specifics: the wire layouts checked against hand-written bytes, the
// edge-infer header, length errors, and reading without needless copies.
import { describe, expect, it } from 'vitest';
import { EdgeInferError } from '../../../runtime/errors';
import { createDecoder, encodeFloat32Block, type Float32DecoderConfig } from '../../../runtime/stream/decoders';
import { refusal } from './contract';

const topic = 'plant/pump-1/vibration';
const ctx = { topic, device: 'pump-1' };
const xyz = ['x', 'y', 'z'];

/** Little-endian float32 bytes written by hand, independent of encodeFloat32Block. */
function f32le(values: number[], header?: { seq: number; timestampMs: number }): Uint8Array {
  const h = header ? 16 : 0;
  const dv = new DataView(new ArrayBuffer(h + values.length * 4));
  if (header) {
    [0x45, 0x49, 0x46, 0x31].forEach((b, i) => dv.setUint8(i, b));
    dv.setUint32(4, header.seq, true);
    dv.setFloat64(8, header.timestampMs, true);
  }
  values.forEach((v, i) => dv.setFloat32(h + i * 4, v, true));
  return new Uint8Array(dv.buffer);
}

function decode(config: Omit<Float32DecoderConfig, 'kind'>, payload: Uint8Array) {
  return createDecoder({ kind: 'float32', ...config }).decode(payload, ctx);
}

const arrays = (channels: Record<string, Float32Array>) => Object.fromEntries(Object.entries(channels).map(([k, v]) => [k, Array.from(v)]));

describe('float32 block decoder', () => {
  it('should read interleaved samples x0 y0 z0 x1 ...', () => {
    const [g] = decode({ channels: xyz }, f32le([1, 2, 3, 4, 5, 6]));
    expect(arrays(g.channels)).toEqual({ x: [1, 4], y: [2, 5], z: [3, 6] });
    expect(g).toMatchObject({ device: 'pump-1' });
    expect(g.seq).toBeUndefined();
  });

  it('should read planar samples: all x, then all y, then all z', () => {
    const [g] = decode({ channels: xyz, layout: 'planar' }, f32le([1, 2, 3, 4, 5, 6]));
    expect(arrays(g.channels)).toEqual({ x: [1, 2], y: [3, 4], z: [5, 6] });
  });

  it('should read the edge-infer header: seq and timestamp of the first sample', () => {
    const [g] = decode({ channels: ['a'], header: 'edge-infer' }, f32le([0.5, 0.25], { seq: 4_000_000_000, timestampMs: 1_700_000_000_123.5 }));
    expect(g).toMatchObject({ seq: 4_000_000_000, timestampMs: 1_700_000_000_123.5 });
    expect(Array.from(g.channels.a)).toEqual([0.5, 0.25]);
  });

  it('should write what it reads: encodeFloat32Block matches the hand-written bytes', () => {
    expect(new Uint8Array(encodeFloat32Block({ x: [1, 4], y: [2, 5], z: [3, 6] }, { channels: xyz }))).toEqual(f32le([1, 2, 3, 4, 5, 6]));
    expect(new Uint8Array(encodeFloat32Block({ x: [1, 2], y: [3, 4], z: [5, 6] }, { channels: xyz, layout: 'planar', header: { seq: 9, timestampMs: 12.5 } }))).toEqual(
      f32le([1, 2, 3, 4, 5, 6], { seq: 9, timestampMs: 12.5 }),
    );
  });

  it('should refuse a block whose length is not a multiple of 12 bytes, naming the topic', () => {
    const err = refusal(() => decode({ channels: xyz }, f32le([1, 2, 3, 4]).subarray(0, 15)), { topic, code: 'E_INPUT_SHAPE' });
    expect(err.message).toBe(`${topic}: block of 15 bytes is not a multiple of 12 bytes (3 channels × 4-byte float32): truncated, or the wrong channel count`);
  });

  it('should count the bytes after the header when a headed block has a bad length', () => {
    refusal(() => decode({ channels: xyz, header: 'edge-infer' }, f32le([1, 2, 3, 4], { seq: 1, timestampMs: 0 })), {
      topic,
      mentions: ['block of 16 bytes after the 16-byte header is not a multiple of 12 bytes'],
    });
  });

  it('should refuse a block that does not hold samplesPerMessage samples', () => {
    refusal(() => decode({ channels: xyz, samplesPerMessage: 512 }, f32le(new Array(3 * 511).fill(0))), {
      topic,
      code: 'E_INPUT_SHAPE',
      mentions: ['block holds 511 samples per channel (6132 bytes), expected 512 (samplesPerMessage)'],
    });
    expect(decode({ channels: xyz, samplesPerMessage: 2 }, f32le([1, 2, 3, 4, 5, 6]))).toHaveLength(1);
  });

  it('should refuse a bad header magic, showing the bytes found', () => {
    const payload = f32le([1, 2, 3], { seq: 1, timestampMs: 0 });
    payload.set([0x7b, 0x22, 0x78, 0x22]);
    refusal(() => decode({ channels: xyz, header: 'edge-infer' }, payload), { topic, code: 'E_INPUT_VALUE', mentions: ["bytes 0-3 are 7b 22 78 22, not the edge-infer header magic 'EIF1'"] });
  });

  it('should refuse a payload shorter than the header, and a header with no samples', () => {
    refusal(() => decode({ channels: xyz, header: 'edge-infer' }, new Uint8Array(10)), { topic, code: 'E_INPUT_SHAPE', mentions: ['payload is 10 bytes, shorter than the 16-byte edge-infer header'] });
    refusal(() => decode({ channels: xyz, header: 'edge-infer' }, f32le([], { seq: 1, timestampMs: 0 })), { topic, code: 'E_INPUT_SHAPE', mentions: ['block is empty: no samples after the 16-byte header'] });
    refusal(() => decode({ channels: xyz }, new Uint8Array(0)), { topic, code: 'E_INPUT_SHAPE', mentions: ['block is empty'] });
  });

  it('should refuse a header timestamp that is not finite', () => {
    refusal(() => decode({ channels: ['a'], header: 'edge-infer' }, f32le([1], { seq: 1, timestampMs: Number.NaN })), { topic, code: 'E_INPUT_VALUE', mentions: ['header timestampMs (float64 at byte offset 8) is NaN'] });
  });

  it('should name the channel, sample index and byte offset of a NaN or infinite sample', () => {
    refusal(() => decode({ channels: xyz }, f32le([1, 2, 3, 4, Number.NaN, 6])), { topic, code: 'E_INPUT_VALUE', mentions: ["channel 'y' sample 1 (byte offset 16) is NaN"] });
    refusal(() => decode({ channels: xyz, layout: 'planar', header: 'edge-infer' }, f32le([1, 2, 3, 4, Number.NEGATIVE_INFINITY, 6], { seq: 0, timestampMs: 0 })), {
      topic,
      mentions: ["channel 'z' sample 0 (byte offset 32) is -Infinity"],
    });
  });

  it.each(['interleaved', 'planar'] as const)('should read a %s block at every byte offset of its buffer', (layout) => {
    const values = Array.from({ length: 3 * 50 }, (_, i) => Math.fround(i / 7 - 3));
    const payload = f32le(values, { seq: 1, timestampMs: 2 });
    const expected = arrays(decode({ channels: xyz, layout, header: 'edge-infer' }, payload)[0].channels);
    for (let offset = 1; offset < 8; offset++) {
      const backing = Buffer.alloc(payload.length + offset);
      backing.set(payload, offset);
      expect(arrays(decode({ channels: xyz, layout, header: 'edge-infer' }, backing.subarray(offset))[0].channels)).toEqual(expected);
    }
  });

  it("should return an aligned planar block as views of the payload's memory, without copying", () => {
    const payload = f32le([1, 2, 3, 4, 5, 6]);
    const [g] = decode({ channels: xyz, layout: 'planar' }, payload);
    expect(g.channels.y.buffer).toBe(payload.buffer);
    expect(g.channels.y.byteOffset).toBe(8);
  });

  it('should copy an unaligned planar block once into memory of its own', () => {
    const backing = new Uint8Array(25);
    backing.set(f32le([1, 2, 3, 4, 5, 6]), 1);
    const [g] = decode({ channels: xyz, layout: 'planar' }, backing.subarray(1));
    expect(g.channels.x.buffer).not.toBe(backing.buffer);
    expect(g.channels.x.buffer).toBe(g.channels.z.buffer);
    expect(arrays(g.channels)).toEqual({ x: [1, 2], y: [3, 4], z: [5, 6] });
  });

  it('should decode a 64 kB single-channel block', () => {
    const n = 16_384;
    const [g] = decode({ channels: ['current'] }, encodeFloat32Block({ current: Float32Array.from({ length: n }, (_, i) => i) }, { channels: ['current'] }));
    expect(g.channels.current.length).toBe(n);
    expect(g.channels.current[n - 1]).toBe(n - 1);
  });

  describe('encodeFloat32Block', () => {
    it('should refuse a missing channel, ragged channels, an empty block and a bad header', () => {
      expect(() => encodeFloat32Block({ x: [1] }, { channels: ['x', 'y'] })).toThrow(/channel 'y' has no samples \(got channels x\)/);
      expect(() => encodeFloat32Block({ x: [1, 2], y: [1] }, { channels: ['x', 'y'] })).toThrow(/'x' has 2 samples, 'y' has 1/);
      expect(() => encodeFloat32Block({ x: [] }, { channels: ['x'] })).toThrow(/no samples/);
      expect(() => encodeFloat32Block({ x: [1] }, { channels: ['x'], header: { seq: -1, timestampMs: 0 } })).toThrow(/header.seq must be a uint32, got -1/);
      expect(() => encodeFloat32Block({ x: [1] }, { channels: [] })).toThrow(EdgeInferError);
    });

    it('should write NaN as given, so simulators can inject faulty blocks', () => {
      const block = encodeFloat32Block({ x: [Number.NaN] }, { channels: ['x'] });
      expect(Number.isNaN(new DataView(block.buffer, block.byteOffset).getFloat32(0, true))).toBe(true);
    });
  });
});
