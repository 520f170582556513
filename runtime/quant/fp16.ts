// An fp16 export of a model: every float weight stored as IEEE half precision and cast back to
// float32 where it is read. It is the size yardstick low-bit files are held against (FP8 must be
// at most about half of it).
import { DataType, type ModelProto, type NodeProto, type TensorProto, floatValues, makeTensor, tensorDims } from '../onnx';
import { GraphEditor, cloneModel } from './graph';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE 754 binary16 bits, rounding to nearest even. */
export function float32ToFloat16(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf or NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000; // implicit bit, then shift into a subnormal
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

/** The model with its float initializers stored as fp16 behind Cast nodes. */
export function float16Export(source: ModelProto): ModelProto {
  const editor = new GraphEditor(cloneModel(source));
  for (const t of [...editor.initializers.values()]) {
    if (t.data_type !== DataType.FLOAT || !t.name) continue;
    const name = t.name;
    const half = Uint16Array.from(floatValues(t), float32ToFloat16);
    editor.removeInitializer(name);
    const stored = editor.addInitializer(makeTensor(`${name}_fp16`, DataType.FLOAT16, tensorDims(t), half));
    editor.insertBefore(undefined, { op_type: 'Cast', name: editor.fresh(`${name}_Cast`), input: [stored], output: [name], attribute: [{ name: 'to', type: 2, i: DataType.FLOAT }] });
  }
  return editor.model;
}

/**
 * The least value at or above `x` (> 0) that fp16 holds exactly, within 2⁻¹⁰ of `x`; `x` itself
 * outside fp16's normal range (below 2⁻¹⁴ its steps grow to 6 % and more of the value: a weight
 * in a model fed raw sensor units, 1e-7 per pascal, would lose its precision). Weight scales are
 * rounded up to it, so a file can store them in 2 bytes without changing them, and the largest
 * weight still lands within the largest code.
 */
export function fp16AtLeast(x: number): number {
  if (!(x >= FP16_SMALLEST_NORMAL) || x > 65504) return x;
  const h = float32ToFloat16(x);
  const back = float16ToFloat32(h);
  return back >= x ? back : float16ToFloat32(h + 1);
}

/** fp16's smallest normal value, 2⁻¹⁴: below it fp16 keeps fewer bits. */
const FP16_SMALLEST_NORMAL = 2 ** -14;

/** IEEE 754 binary16 bits → float32 value. */
export function float16ToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * Largest error fp16 storage may add to a value, relative to the value or, for values under
 * 1/1024 of the tensor's largest, to that: twice fp16's own rounding (2⁻¹¹) for normal values.
 * A value a thousand times smaller than its neighbours may lose its own precision, as it does in
 * any sum it joins; a tensor that is small as a whole (a factor of 1e-9 in a model fed raw sensor
 * units, a scale) keeps it, and so stays fp32 below fp16's normal range.
 */
export const FP16_MAX_RELATIVE_ERROR = 2 ** -10;

/**
 * The fp16 bits of `values` when every value survives the trip within `maxRelativeError` (see
 * FP16_MAX_RELATIVE_ERROR; 0: exactly), or why not: a value beyond fp16's ±65504, or one that
 * fp16 rounds too far.
 */
export function fp16IfExact(values: Float32Array, maxRelativeError = FP16_MAX_RELATIVE_ERROR): { half: Uint16Array } | { reason: string } {
  let largest = 0;
  for (const x of values) if (Number.isFinite(x) && Math.abs(x) > largest) largest = Math.abs(x);
  const floor = largest * 2 ** -10;
  const half = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    const h = float32ToFloat16(x);
    half[i] = h;
    if (Number.isNaN(x)) continue;
    const back = float16ToFloat32(h);
    if (!Number.isFinite(back) && Number.isFinite(x)) return { reason: `value ${x} at ${i} overflows fp16 (largest 65504)` };
    if (Math.abs(back - x) > maxRelativeError * Math.max(Math.abs(x), floor)) return { reason: `value ${x} at ${i} would be stored as ${back}` };
  }
  return { half };
}

/**
 * Inputs that hold biases, norms and embeddings, by operator: the slots whose float constants
 * may be stored as fp16. Weights (MatMul, Gemm and Conv slot 1) are the quantizer's own business.
 * DequantizeLinear's scales too, but only those fp16 holds exactly (EXACT_SLOTS): a constant's
 * codes were rounded against its scale as it is.
 */
const COMPACT_SLOTS: Record<string, number[] | 'any'> = {
  Add: 'any',
  Sub: 'any',
  Mul: 'any',
  Div: 'any',
  Conv: [2],
  Gemm: [2],
  LayerNormalization: [1, 2],
  BatchNormalization: [1, 2, 3, 4],
  InstanceNormalization: [1, 2],
  GroupNormalization: [1, 2],
  Gather: [0],
  PRelu: [1],
  DequantizeLinear: [1],
};

/** Slots whose constants are stored as fp16 only when fp16 holds every value exactly. */
const EXACT_SLOTS: Record<string, number[]> = { DequantizeLinear: [1] };

function readsWhereExact(node: NodeProto, name: string): boolean {
  const slots = EXACT_SLOTS[node.op_type ?? ''];
  return !!slots && !node.domain && (node.input ?? []).some((input, i) => input === name && slots.includes(i));
}

function readsOnlyCompactable(node: NodeProto, name: string): boolean {
  if (node.domain && node.domain !== 'ai.onnx') return false;
  const slots = COMPACT_SLOTS[node.op_type ?? ''];
  if (!slots) return false;
  return (node.input ?? []).every((input, i) => input !== name || slots === 'any' || slots.includes(i));
}

/**
 * Stores the float32 biases, norm parameters, embeddings and quantization scales of a graph as
 * fp16 behind a Cast back to float (which onnxruntime folds into a float constant at load),
 * where every value survives the trip (fp16IfExact) and the tensor is big enough
 * for the 2 bytes per value saved to outweigh the Cast node's bytes. The rest stays fp32. The
 * graph's arithmetic stays fp32; only the file shrinks. Returns the number of tensors stored as fp16.
 */
export function compactFloatConstants(editor: GraphEditor): number {
  const inputs = new Set((editor.graph.input ?? []).map((i) => i.name));
  let n = 0;
  for (const [name, t] of [...editor.initializers]) {
    // Initializers listed as graph inputs can be overridden at run time: their name must stay a float input.
    if (t.data_type !== DataType.FLOAT || inputs.has(name) || editor.isGraphOutput(name)) continue;
    const dims = tensorDims(t);
    if (!narrowerPays(name, dims.reduce((a, b) => a * b, 1))) continue;
    const users = editor.consumers(name);
    if (users.length === 0 || !users.every((u) => readsOnlyCompactable(u, name))) continue;
    const exact = fp16IfExact(floatValues(t), users.some((u) => readsWhereExact(u, name)) ? 0 : FP16_MAX_RELATIVE_ERROR);
    if (!('half' in exact)) continue;
    storeNarrower(editor, name, makeTensor(`${name}.h`, DataType.FLOAT16, dims, exact.half), DataType.FLOAT);
    n++;
  }
  return n;
}

/**
 * Whether storing `size` values 2 bytes narrower gains: the Cast node and the stored tensor's
 * name cost about two names and a few bytes of framing.
 */
export function narrowerPays(name: string, size: number): boolean {
  return 2 * size > 2 * name.length + 16;
}

/**
 * Puts `stored` (initializer `name`'s values in a narrower type) in its place, behind a Cast back
 * to `to` that keeps the name: readers are untouched, and onnxruntime folds the Cast into a
 * constant at load. The Cast is unnamed, as the quantizer's other storage nodes (see qdq.ts).
 */
export function storeNarrower(editor: GraphEditor, name: string, stored: TensorProto, to: DataType): void {
  editor.removeInitializer(name);
  const input = editor.addInitializer(stored);
  editor.insertBefore(undefined, { op_type: 'Cast', name: '', input: [input], output: [name], attribute: [{ name: 'to', type: 2, i: to }] });
}
