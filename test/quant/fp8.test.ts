// FP8 codec against ONNX Cast semantics (FLOAT8E4M3FN, FLOAT8E5M2, opset 19+). Expected values are
// built here from the bit fields with Math.pow, never from the codec's own table.
import { describe, expect, it } from 'vitest';
import { Random } from '../../devices/random';
import { isEdgeInferError } from '../../runtime/errors';
import {
  type Fp8Format,
  float32ArrayToFp8,
  float32ToFp8,
  fp8ArrayToFloat32,
  fp8Max,
  fp8Table,
  fp8ToFloat32,
} from '../../runtime/quant/fp8';

interface Layout {
  format: Fp8Format;
  mantissaBits: number;
  bias: number;
  /** Code of the largest finite value. */
  maxCode: number;
  /** What an out-of-range value becomes without saturation, for a positive value. */
  overflowCode: number;
  max: number;
}

const LAYOUTS: Layout[] = [
  { format: 'e4m3fn', mantissaBits: 3, bias: 7, maxCode: 0x7e, overflowCode: 0x7f, max: 448 },
  { format: 'e5m2', mantissaBits: 2, bias: 15, maxCode: 0x7b, overflowCode: 0x7c, max: 57344 },
];

/** The value a code stands for, from its sign, exponent and mantissa fields. */
function expectedValue(code: number, l: Layout): number {
  const sign = code & 0x80 ? -1 : 1;
  const exponentBits = 7 - l.mantissaBits;
  const exponent = (code >> l.mantissaBits) & ((1 << exponentBits) - 1);
  const mantissa = code & ((1 << l.mantissaBits) - 1);
  const allOnes = (1 << exponentBits) - 1;
  if (l.format === 'e4m3fn' && exponent === allOnes && mantissa === (1 << l.mantissaBits) - 1) return NaN;
  if (l.format === 'e5m2' && exponent === allOnes) return mantissa === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * mantissa * Math.pow(2, 1 - l.bias - l.mantissaBits);
  return sign * (1 + mantissa / Math.pow(2, l.mantissaBits)) * Math.pow(2, exponent - l.bias);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The next float32 above a positive float32. */
function nextUp(x: number): number {
  f32[0] = x;
  u32[0] += 1;
  return f32[0];
}

/** The next float32 below a positive float32. */
function nextDown(x: number): number {
  f32[0] = x;
  u32[0] -= 1;
  return f32[0];
}

/** Non-negative finite codes in increasing order of value, with their values. */
function finiteLadder(l: Layout): Array<{ code: number; value: number }> {
  const ladder = [];
  for (let code = 0; code <= l.maxCode; code++) ladder.push({ code, value: expectedValue(code, l) });
  return ladder;
}

function isNaNCode(code: number, l: Layout): boolean {
  return Number.isNaN(expectedValue(code, l));
}

/** Seeded uniform values in (0, 1). */
function seeded(seed: number): () => number {
  const random = new Random(seed, 'fp8-codes');
  return () => random.uniform();
}

/** Float32 values over many binades (2^-30 .. 2^30), both signs, with specials sprinkled in. */
function randomFloats(n: number, seed: number): Float32Array {
  const next = seeded(seed);
  const specials = [0, -0, NaN, Infinity, -Infinity, 448, 464, 480, 57344, 61440, 2 ** -10, 2 ** -17];
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (next() < 0.01) {
      values[i] = specials[Math.floor(next() * specials.length)];
    } else {
      const magnitude = (1 + next()) * Math.pow(2, Math.floor(next() * 61) - 30);
      values[i] = next() < 0.5 ? -magnitude : magnitude;
    }
  }
  return values;
}

function expectArgumentError(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(isEdgeInferError(caught, 'E_ARGUMENT'), `expected E_ARGUMENT, got ${String(caught)}`).toBe(true);
  expect((caught as Error).message).toMatch(message);
}

describe.each(LAYOUTS)('fp8 $format', (l) => {
  describe('decoding', () => {
    it('should decode all 256 codes to the value of their bit fields', () => {
      for (let code = 0; code < 256; code++) {
        const expected = expectedValue(code, l);
        if (Number.isNaN(expected)) expect(fp8ToFloat32(code, l.format), `code ${code}`).toBeNaN();
        else expect(fp8ToFloat32(code, l.format), `code ${code}`).toBe(expected);
      }
    });

    it('should decode 0x00 to +0 and 0x80 to -0', () => {
      expect(Object.is(fp8ToFloat32(0x00, l.format), 0)).toBe(true);
      expect(Object.is(fp8ToFloat32(0x80, l.format), -0)).toBe(true);
    });

    it('should give a 256-entry Float32Array table equal to the scalar decoder', () => {
      const table = fp8Table(l.format);
      expect(table).toBeInstanceOf(Float32Array);
      expect(table.length).toBe(256);
      for (let code = 0; code < 256; code++) expect(Object.is(table[code], fp8ToFloat32(code, l.format))).toBe(true);
    });

    it('should hand out a copy of the table, so mutating it does not change decoding', () => {
      const table = fp8Table(l.format);
      table[1] = 12345;
      expect(fp8ToFloat32(1, l.format)).toBe(expectedValue(1, l));
      expect(fp8Table(l.format)[1]).toBe(expectedValue(1, l));
    });

    it('should report the largest finite value as fp8Max, the value of the max code', () => {
      expect(fp8Max(l.format)).toBe(l.max);
      expect(fp8ToFloat32(l.maxCode, l.format)).toBe(l.max);
    });
  });

  describe('round trip', () => {
    it('should encode every finite code back to itself, with and without saturation', () => {
      for (let code = 0; code < 256; code++) {
        const value = expectedValue(code, l);
        if (!Number.isFinite(value)) continue;
        expect(float32ToFp8(value, l.format, true), `code ${code}`).toBe(code);
        expect(float32ToFp8(value, l.format, false), `code ${code}`).toBe(code);
      }
    });

    it('should encode ±0 to 0x00 and 0x80', () => {
      expect(float32ToFp8(0, l.format)).toBe(0x00);
      expect(float32ToFp8(-0, l.format)).toBe(0x80);
      expect(float32ToFp8(-0, l.format, false)).toBe(0x80);
    });

    it('should decode every NaN code to NaN and encode NaN to 0x7F', () => {
      for (let code = 0; code < 256; code++) if (isNaNCode(code, l)) expect(fp8ToFloat32(code, l.format)).toBeNaN();
      expect(float32ToFp8(NaN, l.format, true)).toBe(0x7f);
      expect(float32ToFp8(NaN, l.format, false)).toBe(0x7f);
      expect(float32ToFp8(-NaN, l.format)).toBe(0x7f);
      expect(isNaNCode(0x7f, l)).toBe(true);
    });
  });

  describe('rounding', () => {
    it('should round every midpoint between adjacent values to the even code, both signs', () => {
      const ladder = finiteLadder(l);
      for (let i = 0; i + 1 < ladder.length; i++) {
        const lo = ladder[i];
        const hi = ladder[i + 1];
        const mid = (lo.value + hi.value) / 2;
        expect(Math.fround(mid)).toBe(mid); // exactly representable in float32
        const even = lo.code % 2 === 0 ? lo.code : hi.code;
        for (const saturate of [true, false]) {
          expect(float32ToFp8(mid, l.format, saturate), `mid ${mid}`).toBe(even);
          expect(float32ToFp8(-mid, l.format, saturate), `mid -${mid}`).toBe(0x80 | even);
        }
      }
    });

    it('should round the float32 just above a midpoint up and just below it down, both signs', () => {
      const ladder = finiteLadder(l);
      for (let i = 0; i + 1 < ladder.length; i++) {
        const lo = ladder[i];
        const hi = ladder[i + 1];
        const mid = (lo.value + hi.value) / 2;
        expect(float32ToFp8(nextUp(mid), l.format), `above ${mid}`).toBe(hi.code);
        expect(float32ToFp8(nextDown(mid), l.format), `below ${mid}`).toBe(lo.code);
        expect(float32ToFp8(-nextUp(mid), l.format), `above -${mid}`).toBe(0x80 | hi.code);
        expect(float32ToFp8(-nextDown(mid), l.format), `below -${mid}`).toBe(0x80 | lo.code);
      }
    });

    it('should round values between a code and the next midpoint to that code', () => {
      const ladder = finiteLadder(l);
      for (let i = 0; i + 1 < ladder.length; i++) {
        const { code, value } = ladder[i];
        const quarter = Math.fround(value + (ladder[i + 1].value - value) / 4);
        expect(float32ToFp8(quarter, l.format), `${quarter}`).toBe(code);
        expect(float32ToFp8(nextUp(value === 0 ? Number.MIN_VALUE : value), l.format)).toBe(code);
      }
    });

    it('should round the input to float32 first, as a float32 tensor would hold it', () => {
      // 1 + 2^-4 is a tie between 1 and 1.125 (E4M3FN) and between 1 and 1.25 for 1 + 2^-3 (E5M2);
      // a double slightly above the tie that rounds to it in float32 is encoded as the tie.
      const tie = l.format === 'e4m3fn' ? 1 + 2 ** -4 : 1 + 2 ** -3;
      const justAbove = tie + 2 ** -40;
      expect(Math.fround(justAbove)).toBe(tie);
      expect(float32ToFp8(justAbove, l.format)).toBe(float32ToFp8(1, l.format));
    });
  });

  describe('subnormals', () => {
    const smallest = Math.pow(2, 1 - l.bias - l.mantissaBits);

    it('should encode every subnormal exactly', () => {
      for (let m = 1; m < 1 << l.mantissaBits; m++) {
        expect(float32ToFp8(m * smallest, l.format)).toBe(m);
        expect(fp8ToFloat32(m, l.format)).toBe(m * smallest);
        expect(float32ToFp8(-m * smallest, l.format)).toBe(0x80 | m);
      }
    });

    it('should encode the smallest subnormal to code 1', () => {
      expect(float32ToFp8(smallest, l.format)).toBe(0x01);
      expect(float32ToFp8(-smallest, l.format)).toBe(0x81);
    });

    it('should round exactly half the smallest subnormal to zero (even), keeping the sign', () => {
      expect(float32ToFp8(smallest / 2, l.format)).toBe(0x00);
      expect(float32ToFp8(-smallest / 2, l.format)).toBe(0x80);
    });

    it('should round just above half the smallest subnormal up to it', () => {
      expect(float32ToFp8(nextUp(smallest / 2), l.format)).toBe(0x01);
      expect(float32ToFp8(-nextUp(smallest / 2), l.format)).toBe(0x81);
    });

    it('should round values below half the smallest subnormal to signed zero', () => {
      for (const x of [nextDown(smallest / 2), smallest / 4, 1e-30, 1e-45]) {
        expect(float32ToFp8(x, l.format), `${x}`).toBe(0x00);
        expect(float32ToFp8(-x, l.format), `-${x}`).toBe(0x80);
      }
    });

    it('should round 1.5 × smallest subnormal to 2 × (even) and the top subnormal tie up to the first normal', () => {
      expect(float32ToFp8(1.5 * smallest, l.format)).toBe(0x02);
      const top = (1 << l.mantissaBits) - 1; // largest subnormal code, odd
      expect(float32ToFp8((top + 0.5) * smallest, l.format)).toBe(1 << l.mantissaBits);
      expect(fp8ToFloat32(1 << l.mantissaBits, l.format)).toBe(Math.pow(2, 1 - l.bias));
    });
  });

  describe('saturation', () => {
    // The float32 halfway between max and the next value the format would have with one more
    // exponent (480 = 1.875 × 2^8 for E4M3FN, 65536 = 2^16 for E5M2).
    const beyond = l.format === 'e4m3fn' ? 480 : 65536;
    const tie = (l.max + beyond) / 2; // 464 / 61440
    // E4M3FN's tie goes down to 448 (mantissa 110 is even); E5M2's goes up, out of range (11 is odd).
    const tieGoesDown = l.format === 'e4m3fn';

    const cases: Array<[string, number, number, number]> = [
      // [what, x, code with saturate, code without]
      ['max', l.max, l.maxCode, l.maxCode],
      ['just above max', nextUp(l.max), l.maxCode, l.maxCode],
      ['just below the tie above max', nextDown(tie), l.maxCode, l.maxCode],
      ['the tie above max', tie, l.maxCode, tieGoesDown ? l.maxCode : l.overflowCode],
      ['just above the tie above max', nextUp(tie), l.maxCode, l.overflowCode],
      ['the next binade value', beyond, l.maxCode, l.overflowCode],
      ['1e9', 1e9, l.maxCode, l.overflowCode],
      ['float32 max', 3.4028234663852886e38, l.maxCode, l.overflowCode],
      ['a double beyond float32', 1e300, l.maxCode, l.overflowCode],
      ['Infinity', Infinity, l.maxCode, l.overflowCode],
    ];

    it.each(cases)('should encode %s (%d) to max with saturation and as ONNX without', (_what, x, sat, noSat) => {
      expect(float32ToFp8(x, l.format, true)).toBe(sat);
      expect(float32ToFp8(x, l.format, false)).toBe(noSat);
      expect(float32ToFp8(-x, l.format, true)).toBe(0x80 | sat);
      expect(float32ToFp8(-x, l.format, false)).toBe(0x80 | noSat);
    });

    it('should saturate by default', () => {
      expect(float32ToFp8(1e9, l.format)).toBe(l.maxCode);
      expect(float32ToFp8(-Infinity, l.format)).toBe(0x80 | l.maxCode);
    });

    it('should keep NaN as NaN with and without saturation', () => {
      for (const saturate of [true, false]) {
        expect(fp8ToFloat32(float32ToFp8(NaN, l.format, saturate), l.format)).toBeNaN();
      }
    });

    it('should decode the out-of-range code without saturation to NaN (E4M3FN) or ±Infinity (E5M2)', () => {
      const up = fp8ToFloat32(float32ToFp8(1e9, l.format, false), l.format);
      const down = fp8ToFloat32(float32ToFp8(-1e9, l.format, false), l.format);
      if (l.format === 'e4m3fn') {
        expect(up).toBeNaN();
        expect(down).toBeNaN();
      } else {
        expect(up).toBe(Infinity);
        expect(down).toBe(-Infinity);
      }
    });

    if (l.format === 'e5m2') {
      it('should encode ±Infinity to the infinity codes 0x7C / 0xFC without saturation', () => {
        expect(float32ToFp8(Infinity, 'e5m2', false)).toBe(0x7c);
        expect(float32ToFp8(-Infinity, 'e5m2', false)).toBe(0xfc);
      });
    } else {
      it('should encode ±Infinity and overflow to NaN with the sign (0x7F / 0xFF) without saturation', () => {
        expect(float32ToFp8(Infinity, 'e4m3fn', false)).toBe(0x7f);
        expect(float32ToFp8(-Infinity, 'e4m3fn', false)).toBe(0xff);
        expect(float32ToFp8(-1e9, 'e4m3fn', false)).toBe(0xff);
      });
    }
  });

  describe('arrays', () => {
    const values = randomFloats(100_000, l.format === 'e4m3fn' ? 17 : 29);

    it('should agree with the scalar encoder on 100k random floats, typed array or plain array', () => {
      const plain = Array.from(values);
      for (const saturate of [true, false]) {
        const fromTyped = float32ArrayToFp8(values, l.format, saturate);
        const fromPlain = float32ArrayToFp8(plain, l.format, saturate);
        expect(fromTyped).toBeInstanceOf(Uint8Array);
        expect(fromTyped.length).toBe(values.length);
        let mismatches = 0;
        for (let i = 0; i < values.length; i++) {
          const expected = float32ToFp8(values[i], l.format, saturate);
          if (fromTyped[i] !== expected || fromPlain[i] !== expected) mismatches++;
        }
        expect(mismatches).toBe(0);
      }
    });

    it('should divide by scale in float32 before encoding', () => {
      const scale = 0.0123;
      const scaled = float32ArrayToFp8(values, l.format, true, undefined, scale);
      const scaledPlain = float32ArrayToFp8(Array.from(values), l.format, true, undefined, scale);
      const s = Math.fround(scale);
      let mismatches = 0;
      for (let i = 0; i < values.length; i++) {
        const expected = float32ToFp8(Math.fround(values[i] / s), l.format);
        if (scaled[i] !== expected || scaledPlain[i] !== expected) mismatches++;
      }
      expect(mismatches).toBe(0);
    });

    it('should round plain-array doubles to float32 before dividing by scale', () => {
      const x = 1 + 2 ** -30; // float32 rounds it to 1
      expect(float32ArrayToFp8([x], l.format, true, undefined, 1 / 3)[0]).toBe(float32ToFp8(Math.fround(1 / Math.fround(1 / 3)), l.format));
    });

    it('should agree with the scalar decoder on every code and on random codes', () => {
      const next = seeded(5);
      const codes = new Uint8Array(100_000);
      for (let i = 0; i < codes.length; i++) codes[i] = Math.floor(next() * 256);
      const decoded = fp8ArrayToFloat32(codes, l.format);
      const fromPlain = fp8ArrayToFloat32(Array.from(codes), l.format);
      expect(decoded).toBeInstanceOf(Float32Array);
      let mismatches = 0;
      for (let i = 0; i < codes.length; i++) {
        const expected = fp8ToFloat32(codes[i], l.format);
        if (!Object.is(decoded[i], expected) || !Object.is(fromPlain[i], expected)) mismatches++;
      }
      expect(mismatches).toBe(0);
    });

    it('should write into the out buffers when given', () => {
      const input = values.subarray(0, 1000);
      const codes = new Uint8Array(1000);
      expect(float32ArrayToFp8(input, l.format, true, codes)).toBe(codes);
      expect(codes).toEqual(float32ArrayToFp8(input, l.format));
      const decoded = new Float32Array(1000);
      expect(fp8ArrayToFloat32(codes, l.format, decoded)).toBe(decoded);
      expect(decoded).toEqual(fp8ArrayToFloat32(codes, l.format));
    });

    it('should return a view of exactly the input length when out is longer', () => {
      const codes = new Uint8Array(8).fill(0xaa);
      const result = float32ArrayToFp8([1, 2, 3], l.format, true, codes);
      expect(result.length).toBe(3);
      expect(result.buffer).toBe(codes.buffer);
      expect(Array.from(codes.subarray(3))).toEqual([0xaa, 0xaa, 0xaa, 0xaa, 0xaa]);
      const decoded = fp8ArrayToFloat32(result, l.format, new Float32Array(10));
      expect(Array.from(decoded)).toEqual([1, 2, 3]);
    });

    it('should encode a Float32Array that is a view at an offset into a larger buffer', () => {
      const view = values.subarray(7, 107);
      expect(Array.from(float32ArrayToFp8(view, l.format))).toEqual(Array.from(view, (x) => float32ToFp8(x, l.format)));
    });
  });
});

describe('fp8 argument errors', () => {
  it('should reject an unknown format, naming the argument and the formats', () => {
    const bad = 'e4m3' as Fp8Format;
    for (const fn of [
      () => float32ToFp8(1, bad),
      () => fp8ToFloat32(1, bad),
      () => float32ArrayToFp8([1], bad),
      () => fp8ArrayToFloat32([1], bad),
      () => fp8Table(bad),
      () => fp8Max(bad),
    ]) {
      expectArgumentError(fn, /format: expected 'e4m3fn' or 'e5m2', got 'e4m3'/);
    }
    expectArgumentError(() => fp8Max(undefined as unknown as Fp8Format), /format: .*got undefined/);
  });

  it.each([256, -1, 1.5, NaN, Infinity])('should reject code %d', (code) => {
    expectArgumentError(() => fp8ToFloat32(code, 'e4m3fn'), /code: expected an FP8 code, an integer from 0 to 255/);
    expectArgumentError(() => fp8ToFloat32(code, 'e5m2'), /code: expected .* 0 to 255/);
  });

  it('should reject a bad code in an array, naming its index', () => {
    expectArgumentError(() => fp8ArrayToFloat32([0, 1, 256], 'e5m2'), /codes\[2\]: expected .* 0 to 255, got 256/);
    expectArgumentError(() => fp8ArrayToFloat32([1.5], 'e4m3fn'), /codes\[0\]: .*got 1\.5/);
  });

  it('should reject out buffers of the wrong type or too short', () => {
    expectArgumentError(() => float32ArrayToFp8([1, 2], 'e4m3fn', true, new Uint8Array(1)), /out: expected a Uint8Array of at least 2 elements, got 1/);
    expectArgumentError(
      () => fp8ArrayToFloat32(new Uint8Array(2), 'e4m3fn', new Float64Array(2) as unknown as Float32Array),
      /out: expected a Float32Array/,
    );
  });

  it('should reject a scale that is not a positive finite number', () => {
    for (const scale of [0, -1, NaN, Infinity, 1e-50]) {
      expectArgumentError(() => float32ArrayToFp8([1], 'e4m3fn', true, undefined, scale), /scale: expected a positive finite number/);
    }
  });

  it('should reject a non-boolean saturate and a non-array input', () => {
    expectArgumentError(() => float32ToFp8(1, 'e5m2', 1 as unknown as boolean), /saturate: expected true or false/);
    expectArgumentError(() => float32ArrayToFp8(null as unknown as number[], 'e5m2'), /values: expected an array/);
  });
});
