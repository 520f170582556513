// Quantizing and dequantizing weight tensors: symmetric int8 and FP8 (E4M3FN, E5M2) with one
// scale per output channel, or one per block of the reduction axis (ONNX opset 21 block_size).
import { EdgeInferError } from '../errors';
import { DataType } from '../onnx';
import { fp16AtLeast } from './fp16';
import { type Fp8Format, float32ArrayToFp8, fp8ArrayToFloat32, fp8Max } from './fp8';

export type WeightFormat = 'int8' | 'e4m3fn' | 'e5m2';

export interface QuantizedWeight {
  /** Codes: int8 values, or FP8 codes. */
  data: Int8Array | Uint8Array;
  dataType: DataType;
  /** Scales: one per channel (1-D) or one per block (same rank as the weight). */
  scale: Float32Array;
  scaleDims: number[];
  /** DequantizeLinear's axis: the channel axis, or the blocked (reduction) axis. */
  axis: number;
  blockSize?: number;
}

export const DATA_TYPE_OF: Record<WeightFormat, DataType> = {
  int8: DataType.INT8,
  e4m3fn: DataType.FLOAT8E4M3FN,
  e5m2: DataType.FLOAT8E5M2,
};

/** The largest int8 weight code: symmetric, -128 unused. */
export const INT8_WEIGHT_MAX = 127;
/** The largest int8 weight code with the reduced range, for x86 kernels that add products in int16 (see reduce-range.ts). */
export const INT8_WEIGHT_MAX_REDUCED = 64;

/**
 * The largest code magnitude of a format: 127 for int8 (symmetric, -128 unused), or 64 with the
 * reduced range (see reduce-range.ts); FP8's largest finite value.
 */
export function formatMax(format: WeightFormat, reduceRange = false): number {
  if (format === 'int8') return reduceRange ? INT8_WEIGHT_MAX_REDUCED : INT8_WEIGHT_MAX;
  return fp8Max(format as Fp8Format);
}

function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

/**
 * For every element, the index of its scale. Per channel: the coordinate on `axis`. Blocked:
 * the flat index into the scale tensor, whose `axis` is divided into blocks of `blockSize`.
 */
export function scaleIndex(dims: readonly number[], axis: number, blockSize?: number): { index: Int32Array; scaleDims: number[] } {
  const n = dims.reduce((a, b) => a * b, 1);
  const st = strides(dims);
  const index = new Int32Array(n);
  if (!blockSize) {
    for (let i = 0; i < n; i++) index[i] = Math.floor(i / st[axis]) % dims[axis];
    return { index, scaleDims: [dims[axis]] };
  }
  const scaleDims = dims.map((d, k) => (k === axis ? Math.ceil(d / blockSize) : d));
  const sst = strides(scaleDims);
  for (let i = 0; i < n; i++) {
    let rest = i;
    let s = 0;
    for (let k = 0; k < dims.length; k++) {
      const c = Math.floor(rest / st[k]);
      rest -= c * st[k];
      s += (k === axis ? Math.floor(c / blockSize) : c) * sst[k];
    }
    index[i] = s;
  }
  return { index, scaleDims };
}

/**
 * Symmetric quantization of a weight: scale = largest |w| of the channel (or block) over the
 * format's largest code, so the extreme weight lands on the largest code (E5M2: the closest of
 * 16 scales at or below that, see searchScales). An all-zero channel gets scale 1 and codes 0.
 * Every scale in fp16's normal range is one fp16 holds exactly (rounded up, by at most 2⁻¹⁰ of
 * itself): the file then stores the scales in half the bytes and the codes are those of the
 * scale stored.
 * `reduceRange` (int8 only) keeps codes within ±64.
 */
export function quantizeWeight(values: Float32Array, dims: readonly number[], format: WeightFormat, channelAxis: number, blocked?: { axis: number; size: number }, reduceRange = false): QuantizedWeight {
  if (values.length !== dims.reduce((a, b) => a * b, 1)) throw new EdgeInferError('E_ARGUMENT', `weight of ${values.length} values does not fill dims [${dims.join(', ')}]`);
  const axis = blocked ? blocked.axis : channelAxis;
  if (axis < 0 || axis >= dims.length) throw new EdgeInferError('E_ARGUMENT', `axis ${axis} is outside a weight of rank ${dims.length}`);
  if (blocked && (!Number.isInteger(blocked.size) || blocked.size < 1)) throw new EdgeInferError('E_ARGUMENT', `block size must be a whole number ≥ 1, got ${blocked.size}`);
  const { index, scaleDims } = scaleIndex(dims, axis, blocked?.size);
  const scaleCount = scaleDims.reduce((a, b) => a * b, 1);
  const amax = new Float32Array(scaleCount);
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]);
    if (a > amax[index[i]]) amax[index[i]] = a;
  }
  const max = formatMax(format, reduceRange);
  const scale = Float32Array.from(amax, (a) => (a > 0 ? fp16AtLeast(a / max) : 1));
  if (format === 'e5m2') searchScales(values, index, scale);
  const scaled = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) scaled[i] = values[i] / scale[index[i]];
  let data: Int8Array | Uint8Array;
  if (format === 'int8') {
    data = new Int8Array(values.length);
    for (let i = 0; i < values.length; i++) data[i] = Math.max(-max, Math.min(max, Math.round(scaled[i])));
  } else {
    data = float32ArrayToFp8(scaled, format, true);
  }
  return { data, dataType: DATA_TYPE_OF[format], scale, scaleDims, axis, blockSize: blocked?.size };
}

/** Candidate scales per octave for E5M2: 2^(-k/16) below the largest |w| mapped on the largest code. */
const E5M2_SCALE_STEPS = 16;

/**
 * E5M2 keeps 2 mantissa bits, so where a channel's values fall on its grid matters: mapping the
 * largest |w| on the largest code (57344) is not the closest fit. Tries scales 2^(-k/16) of that,
 * k < 16 (an octave, after which the grid repeats), and keeps per channel (or block) the one with
 * the least squared error, the largest winning ties. On the PyTorch 1-D CNN fixture this took the
 * output's cosine with fp32 from 0.987 to 0.996. Changes `scale` in place.
 */
function searchScales(values: Float32Array, index: Int32Array, scale: Float32Array): void {
  const best = new Float64Array(scale.length).fill(Number.POSITIVE_INFINITY);
  const chosen = Float32Array.from(scale);
  const scaled = new Float32Array(values.length);
  for (let k = 0; k < E5M2_SCALE_STEPS; k++) {
    const factor = 2 ** (-k / E5M2_SCALE_STEPS);
    // Candidates are fp16 values too (see quantizeWeight).
    const candidate = Float32Array.from(scale, (s) => fp16AtLeast(s * factor));
    for (let i = 0; i < values.length; i++) scaled[i] = values[i] / candidate[index[i]];
    const back = fp8ArrayToFloat32(float32ArrayToFp8(scaled, 'e5m2', true), 'e5m2');
    const error = new Float64Array(scale.length);
    for (let i = 0; i < values.length; i++) error[index[i]] += (back[i] * candidate[index[i]] - values[i]) ** 2;
    for (let g = 0; g < scale.length; g++) {
      if (error[g] < best[g]) {
        best[g] = error[g];
        chosen[g] = candidate[g];
      }
    }
  }
  scale.set(chosen);
}

/**
 * DequantizeLinear on constant data, as ONNX defines it: per tensor (one scale), per axis (1-D
 * scales along `axis`) or blocked (scales of the weight's rank, `axis` in blocks of blockSize).
 */
export function dequantize(
  codes: Int8Array | Uint8Array | Int32Array,
  dataType: DataType,
  dims: readonly number[],
  scale: Float32Array,
  scaleDims: readonly number[],
  zeroPoint: ArrayLike<number> | undefined,
  axis: number,
  blockSize?: number,
): Float32Array {
  const n = codes.length;
  let values: Float32Array;
  if (dataType === DataType.FLOAT8E4M3FN) values = fp8ArrayToFloat32(codes as Uint8Array, 'e4m3fn');
  else if (dataType === DataType.FLOAT8E5M2) values = fp8ArrayToFloat32(codes as Uint8Array, 'e5m2');
  else values = Float32Array.from(codes as ArrayLike<number>);
  const isFp8 = dataType === DataType.FLOAT8E4M3FN || dataType === DataType.FLOAT8E5M2;
  const perTensor = scale.length === 1;
  const rank = dims.length;
  const ax = axis < 0 ? axis + rank : axis;
  const index = perTensor ? undefined : scaleIndex(dims, ax, blockSize && scaleDims.length === rank ? blockSize : undefined).index;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = index ? index[i] : 0;
    const zp = zeroPoint && !isFp8 ? zeroPoint[zeroPoint.length === 1 ? 0 : s] : 0;
    out[i] = (values[i] - zp) * scale[s];
  }
  return out;
}
