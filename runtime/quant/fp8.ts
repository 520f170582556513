// FP8 codec with the semantics of ONNX Cast / QuantizeLinear to FLOAT8E4M3FN and FLOAT8E5M2
// (opset 19+): round to nearest, ties to even, on the float32 value; `saturate` decides what
// happens beyond the largest finite value.
//
// Overflow is decided after rounding, with the exponent range taken as unbounded: a value that
// rounds down to the largest finite value becomes it (449 → 448), the midpoint above it goes to
// the even neighbour (E4M3FN: 464 → 448, whose mantissa 110 is even; E5M2: 61440 → 65536, i.e.
// out of range, as in IEEE float16), and anything that rounds past it is out of range. This is
// what the ONNX reference does since it casts through ml_dtypes (onnx ≥ 1.18), and it agrees
// with the older hand-written reference and onnxruntime's CPU cast on every input except
// E4M3FN 480 ≤ |x| < 496 with saturate=false, where those give ±448 (a side effect of how they
// clear the NaN code) while ml_dtypes and this codec give NaN.
//
// NaN inputs encode to 0x7F in both formats, whatever the sign bit of the NaN: JavaScript makes
// that bit depend on how the NaN was produced (0/0 gives a negative one on x86), and an encoder
// whose bytes depend on that is not reproducible. 0x7F is S.1111.111 for E4M3FN and S.11111.11
// for E5M2, the code the hand-written ONNX reference and onnxruntime emit. Overflow to NaN/Inf
// without saturation keeps the sign of the value (-1e9 → 0xFF in E4M3FN, 0xFC in E5M2), as ONNX.
import { EdgeInferError } from '../errors';

export type Fp8Format = 'e4m3fn' | 'e5m2';

/** Largest finite value of each format. */
const MAX_VALUE: Record<Fp8Format, number> = { e4m3fn: 448, e5m2: 57344 };

// One float32 slot seen as bits: the scalar path rounds to float32 and reads the pattern without
// allocating.
const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

const tables: Partial<Record<Fp8Format, Float32Array>> = {};

function checkFormat(format: unknown): asserts format is Fp8Format {
  if (format !== 'e4m3fn' && format !== 'e5m2') {
    throw new EdgeInferError('E_ARGUMENT', `format: expected 'e4m3fn' or 'e5m2', got ${describe(format)}`);
  }
}

function checkSaturate(saturate: unknown): asserts saturate is boolean {
  if (typeof saturate !== 'boolean') {
    throw new EdgeInferError('E_ARGUMENT', `saturate: expected true or false, got ${describe(saturate)}`);
  }
}

function describe(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : typeof value === 'number' ? String(value) : typeof value;
}

function badCode(name: string, code: unknown): EdgeInferError {
  return new EdgeInferError('E_ARGUMENT', `${name}: expected an FP8 code, an integer from 0 to 255, got ${describe(code)}`);
}

function checkLength(values: unknown, name: string): number {
  const length = (values as { length?: unknown } | null | undefined)?.length;
  if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) {
    throw new EdgeInferError('E_ARGUMENT', `${name}: expected an array or typed array, got ${describe(values)}`);
  }
  return length;
}

// The two encoders take the float32 bit pattern. Normal results: subtract the exponent bias
// difference so the pattern reads as the FP8 code followed by the bits to drop, then round those
// bits to nearest even; a carry moves into the exponent field by itself. Subnormal results: shift
// the significand (hidden bit included) right by a larger amount with the same rounding, so
// rounding into and within subnormals, and up into the first binade, is exact too.

/** float32 bits → E4M3FN code (bias 7, 3 mantissa bits, no infinities, NaN = S.1111.111). */
function encodeE4M3FN(bits: number, saturate: boolean): number {
  const sign = (bits >>> 24) & 0x80;
  const abs = bits & 0x7fffffff;
  if (abs >= 0x7f800000) {
    if (abs > 0x7f800000) return 0x7f;
    return sign | (saturate ? 0x7e : 0x7f);
  }
  let code: number;
  if (abs >= 0x3c800000) {
    // |x| ≥ 2^-6, a normal E4M3FN value: rebias the exponent from 127 to 7, drop 20 bits.
    const rebased = abs - 0x3c000000;
    code = (rebased + 0x7ffff + ((rebased >>> 20) & 1)) >>> 20;
  } else {
    // Subnormal result: code = round(|x| / 2^-9). Below 2^-10 (shift > 24) it is 0.
    const shift = 141 - (abs >>> 23);
    if (shift > 24) return sign;
    const significand = (abs & 0x7fffff) | 0x800000;
    code = (significand + (1 << (shift - 1)) - 1 + ((significand >>> shift) & 1)) >>> shift;
  }
  if (code > 0x7e) return sign | (saturate ? 0x7e : 0x7f);
  return sign | code;
}

/** float32 bits → E5M2 code (bias 15, 2 mantissa bits, IEEE-like: the top byte of float16). */
function encodeE5M2(bits: number, saturate: boolean): number {
  const sign = (bits >>> 24) & 0x80;
  const abs = bits & 0x7fffffff;
  if (abs >= 0x7f800000) {
    if (abs > 0x7f800000) return 0x7f;
    return sign | (saturate ? 0x7b : 0x7c);
  }
  let code: number;
  if (abs >= 0x38800000) {
    // |x| ≥ 2^-14, a normal E5M2 value: rebias the exponent from 127 to 15, drop 21 bits.
    const rebased = abs - 0x38000000;
    code = (rebased + 0xfffff + ((rebased >>> 21) & 1)) >>> 21;
  } else {
    // Subnormal result: code = round(|x| / 2^-16). Below 2^-17 (shift > 24) it is 0.
    const shift = 134 - (abs >>> 23);
    if (shift > 24) return sign;
    const significand = (abs & 0x7fffff) | 0x800000;
    code = (significand + (1 << (shift - 1)) - 1 + ((significand >>> shift) & 1)) >>> shift;
  }
  if (code > 0x7b) return sign | (saturate ? 0x7b : 0x7c);
  return sign | code;
}

/**
 * float32 → FP8 code (0..255). `x` is first rounded to float32, as a float32 tensor holds it;
 * then round to nearest, ties to even. With `saturate` (the default, as in ONNX) values beyond
 * the largest finite value and ±Inf become ±max; without it they become NaN (E4M3FN, 0x7F/0xFF)
 * or ±Inf (E5M2, 0x7C/0xFC). NaN → 0x7F; -0 → 0x80.
 */
export function float32ToFp8(x: number, format: Fp8Format, saturate = true): number {
  checkFormat(format);
  checkSaturate(saturate);
  if (typeof x !== 'number') throw new EdgeInferError('E_ARGUMENT', `x: expected a number, got ${describe(x)}`);
  scratchFloat[0] = x;
  const bits = scratchBits[0];
  return format === 'e4m3fn' ? encodeE4M3FN(bits, saturate) : encodeE5M2(bits, saturate);
}

/** FP8 code (0..255) → float32 value (NaN codes give NaN, E5M2 0x7C/0xFC give ±Infinity). */
export function fp8ToFloat32(code: number, format: Fp8Format): number {
  checkFormat(format);
  if ((code & 0xff) !== code) throw badCode('code', code);
  return tableOf(format)[code];
}

/**
 * Encodes a whole tensor: element i of the result is `float32ToFp8(x[i] / scale)`, the quotient
 * taken in float32 as ONNX QuantizeLinear does (x and scale each rounded to float32 first).
 * `scale` must be a positive finite number; per-channel scales are the caller's business.
 * Writes into `out` when given (it must hold at least values.length codes) and returns a view of
 * it of exactly values.length; otherwise allocates.
 */
export function float32ArrayToFp8(
  values: ArrayLike<number>,
  format: Fp8Format,
  saturate = true,
  out?: Uint8Array,
  scale = 1,
): Uint8Array {
  checkFormat(format);
  checkSaturate(saturate);
  const n = checkLength(values, 'values');
  const codes = outputFor(out, n, Uint8Array, 'out');
  const divisor = Math.fround(scale);
  if (typeof scale !== 'number' || !(divisor > 0) || divisor === Infinity) {
    throw new EdgeInferError('E_ARGUMENT', `scale: expected a positive finite number (as float32), got ${describe(scale)}`);
  }
  const encode = format === 'e4m3fn' ? encodeE4M3FN : encodeE5M2;
  if (values instanceof Float32Array && divisor === 1) {
    // The tensor already holds float32 bit patterns: read them in place.
    const bits = new Uint32Array(values.buffer, values.byteOffset, n);
    for (let i = 0; i < n; i++) codes[i] = encode(bits[i], saturate);
  } else if (values instanceof Float32Array) {
    for (let i = 0; i < n; i++) {
      scratchFloat[0] = values[i] / divisor;
      codes[i] = encode(scratchBits[0], saturate);
    }
  } else if (divisor === 1) {
    for (let i = 0; i < n; i++) {
      scratchFloat[0] = values[i];
      codes[i] = encode(scratchBits[0], saturate);
    }
  } else {
    for (let i = 0; i < n; i++) {
      // Two stores: the value is a float32 before the float32 division, as in a float32 tensor.
      scratchFloat[0] = values[i];
      scratchFloat[0] = scratchFloat[0] / divisor;
      codes[i] = encode(scratchBits[0], saturate);
    }
  }
  return codes;
}

/**
 * Decodes a whole tensor of FP8 codes by table. Codes that are not integers in 0..255 throw,
 * naming the index. Writes into `out` when given (at least codes.length long) and returns a view
 * of it of exactly codes.length; otherwise allocates.
 */
export function fp8ArrayToFloat32(codes: ArrayLike<number>, format: Fp8Format, out?: Float32Array): Float32Array {
  checkFormat(format);
  const n = checkLength(codes, 'codes');
  const values = outputFor(out, n, Float32Array, 'out');
  const table = tableOf(format);
  if (codes instanceof Uint8Array) {
    for (let i = 0; i < n; i++) values[i] = table[codes[i]];
  } else {
    for (let i = 0; i < n; i++) {
      const code = codes[i];
      if ((code & 0xff) !== code) throw badCode(`codes[${i}]`, code);
      values[i] = table[code];
    }
  }
  return values;
}

/**
 * The 256-entry decode table of a format, indexed by code. A fresh copy on every call (typed
 * arrays cannot be frozen): keep it rather than calling this per tensor.
 */
export function fp8Table(format: Fp8Format): Float32Array {
  checkFormat(format);
  return tableOf(format).slice();
}

/** Largest finite value: 448 for e4m3fn, 57344 for e5m2. */
export function fp8Max(format: Fp8Format): number {
  checkFormat(format);
  return MAX_VALUE[format];
}

function outputFor<T extends Uint8Array | Float32Array>(
  out: T | undefined,
  n: number,
  ctor: new (n: number) => T,
  name: string,
): T {
  if (out === undefined) return new ctor(n);
  if (!(out instanceof ctor)) {
    throw new EdgeInferError('E_ARGUMENT', `${name}: expected a ${ctor.name} of at least ${n} elements, got ${describe(out)}`);
  }
  if (out.length < n) {
    throw new EdgeInferError('E_ARGUMENT', `${name}: expected a ${ctor.name} of at least ${n} elements, got ${out.length}`);
  }
  return out.length === n ? out : (out.subarray(0, n) as T);
}

function tableOf(format: Fp8Format): Float32Array {
  return (tables[format] ??= buildTable(format));
}

// Built from the bit fields by composing the float32 pattern; the tests check it against values
// computed with Math.pow instead.
function buildTable(format: Fp8Format): Float32Array {
  const mantissaBits = format === 'e4m3fn' ? 3 : 2;
  const bias = format === 'e4m3fn' ? 7 : 15;
  const exponentMax = format === 'e4m3fn' ? 15 : 31;
  const table = new Float32Array(256);
  const bits = new Uint32Array(table.buffer);
  for (let code = 0; code < 256; code++) {
    const sign = (code & 0x80) << 24;
    const exponent = (code & 0x7f) >>> mantissaBits;
    const mantissa = code & ((1 << mantissaBits) - 1);
    if (format === 'e4m3fn' && (code & 0x7f) === 0x7f) {
      bits[code] = 0x7fc00000;
    } else if (format === 'e5m2' && exponent === exponentMax) {
      bits[code] = mantissa === 0 ? (sign | 0x7f800000) >>> 0 : 0x7fc00000;
    } else if (exponent === 0) {
      // Subnormal: mantissa × 2^(1 - bias - mantissaBits), exact in float32.
      const magnitude = mantissa * 2 ** (1 - bias - mantissaBits);
      table[code] = sign ? -magnitude : magnitude;
    } else {
      bits[code] = (sign | ((exponent - bias + 127) << 23) | (mantissa << (23 - mantissaBits))) >>> 0;
    }
  }
  return table;
}
