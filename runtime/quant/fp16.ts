// An fp16 export of a model: every float weight stored as IEEE half precision and cast back to
// float32 where it is read. It is the size yardstick low-bit files are held against (FP8 must be
// at most about half of it).
import { DataType, type ModelProto, floatValues, makeTensor, tensorDims } from '../onnx';
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
