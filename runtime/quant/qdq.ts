// The building blocks every method uses: quantized constants stored next to their scales and read
// through a DequantizeLinear, and Quantize/Dequantize pairs on activations. Names are short
// (`w.q`, `w.s`, `w.z`): a transformer gets hundreds of them, and they are part of the file.
import { DataType, type NodeProto, type TensorValues, floatTensor, floatValues, makeTensor, tensorDims, tensorSize } from '../onnx';
import { type GraphEditor, intAttr } from './graph';
import { type WeightFormat, quantizeWeight } from './weights';

export interface QuantizedConstant {
  dataType: DataType;
  dims: readonly number[];
  data: TensorValues;
  scale: Float32Array;
  scaleDims: readonly number[];
  /** Zero points (int8 / uint8 / int32), when not all zero or when the kernel needs them. */
  zeroPoint?: TensorValues;
  zeroPointType?: DataType;
  axis?: number;
  blockSize?: number;
}

/** Adds the codes, scales (and zero points) of a quantized constant and returns their names. */
export function addQuantized(editor: GraphEditor, base: string, q: QuantizedConstant): { codes: string; scale: string; zeroPoint?: string } {
  // addInitializer makes each name unique.
  const codes = editor.addInitializer(makeTensor(`${base}.q`, q.dataType, q.dims, q.data));
  const scale = editor.addInitializer(floatTensor(`${base}.s`, q.scaleDims, q.scale));
  const zeroPoint = q.zeroPoint ? editor.addInitializer(makeTensor(`${base}.z`, q.zeroPointType ?? q.dataType, q.scaleDims, q.zeroPoint)) : undefined;
  return { codes, scale, zeroPoint };
}

/**
 * Puts a DequantizeLinear of a quantized constant at the start of the graph. With `replace`,
 * the constant of that name goes and the DequantizeLinear output takes its name, so readers are
 * untouched; otherwise the output gets a new name, returned.
 */
export function dequantizedConstant(editor: GraphEditor, name: string, q: QuantizedConstant, replace: boolean): string {
  const { codes, scale, zeroPoint } = addQuantized(editor, name, q);
  let output = name;
  if (replace) {
    editor.removeInitializer(name);
  } else {
    output = editor.fresh(`${name}.dq`);
  }
  const attribute = [
    ...(q.axis !== undefined ? [{ name: 'axis', type: 2, i: q.axis }] : []),
    ...(q.blockSize ? [{ name: 'block_size', type: 2, i: q.blockSize }] : []),
  ];
  // The node's name is the only one nothing reads: short, the output keeps the constant's own.
  editor.insertBefore(undefined, { op_type: 'DequantizeLinear', name: editor.fresh('DQ'), input: zeroPoint ? [codes, scale, zeroPoint] : [codes, scale], output: [output], attribute });
  return output;
}

/** A weight quantized symmetrically per output channel (or per block), as a QuantizedConstant. */
export function quantizedWeight(values: Float32Array, dims: readonly number[], format: WeightFormat, channelAxis: number, blocked?: { axis: number; size: number }, reduceRange = false): QuantizedConstant {
  const q = quantizeWeight(values, dims, format, channelAxis, blocked, reduceRange);
  return { dataType: q.dataType, dims, data: q.data, scale: q.scale, scaleDims: q.scaleDims, axis: q.axis, blockSize: q.blockSize };
}

/** uint8 asymmetric parameters for a range (which must include 0, so zero is exact). */
export function activationParams(r: { min: number; max: number }): { scale: number; zeroPoint: number } {
  const lo = Math.min(0, r.min);
  const hi = Math.max(0, r.max);
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  return { scale, zeroPoint: Math.max(0, Math.min(255, Math.round(-lo / scale))) };
}

/** A float constant as uint8 with one scale and zero point, like an activation. */
export function uint8Constant(values: Float32Array, dims: readonly number[]): QuantizedConstant {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const { scale, zeroPoint } = activationParams({ min, max });
  const data = Uint8Array.from(values, (v) => Math.max(0, Math.min(255, Math.round(v / scale) + zeroPoint)));
  return { dataType: DataType.UINT8, dims, data, scale: Float32Array.of(scale), scaleDims: [], zeroPoint: Uint8Array.of(zeroPoint) };
}

/** T → QuantizeLinear → DequantizeLinear → every reader of T (uint8, calibrated range). */
export function insertQdq(editor: GraphEditor, tensor: string, range: { min: number; max: number }): void {
  const { scale, zeroPoint } = activationParams(range);
  // Short names (`qa_7.s`), not the tensor's: an exporter's names run to 40 characters, and each
  // appears a dozen times around one activation's Q/DQ pair, which made a static int8
  // transformer's graph four times the size of its fp32 graph.
  const base = editor.fresh('qa');
  const s = editor.addInitializer(floatTensor(`${base}.s`, [], [scale]));
  const zp = editor.addInitializer(makeTensor(`${base}.z`, DataType.UINT8, [], Uint8Array.of(zeroPoint)));
  const quantized = editor.fresh(`${base}.q`);
  const dequantized = editor.fresh(`${base}.d`);
  const q: NodeProto = { op_type: 'QuantizeLinear', name: editor.fresh(`${base}.Q`), input: [tensor, s, zp], output: [quantized] };
  const dq: NodeProto = { op_type: 'DequantizeLinear', name: editor.fresh(`${base}.DQ`), input: [quantized, s, zp], output: [dequantized] };
  editor.rewire(tensor, dequantized);
  editor.insertAfterProducerOf(tensor, dq);
  editor.insertAfterProducerOf(tensor, q);
}

/**
 * Float constants that Add reads beside an activation (biases after a MatMul, position
 * embeddings), at least `minElements` long: weights too, stored low-bit with one scale each.
 * In int8, embedding tables that Gather looks rows up in as well, with one scale per row (a row
 * is what one position or token adds; onnxruntime's own dynamic quantizer stores them in 8 bits).
 * Normalization constants (read by Sub, Div, LayerNormalization) keep their precision.
 */
export function quantizeAddConstants(editor: GraphEditor, format: WeightFormat, minElements = 64): number {
  let n = 0;
  for (const [name, t] of [...editor.initializers]) {
    // Cheap checks first: decoding every float initializer of a large model costs a copy of it.
    if (t.data_type !== DataType.FLOAT || tensorSize(t) < minElements) continue;
    const users = editor.consumers(name);
    if (users.length === 0) continue;
    const dims = tensorDims(t);
    if (users.every((u) => u.op_type === 'Add' && !u.domain)) {
      const values = floatValues(t);
      // One scale for the whole tensor: a bias or an embedding has no output channels to split.
      const q = quantizeWeight(values, [values.length], format, 0, { axis: 0, size: values.length });
      dequantizedConstant(editor, name, { dataType: q.dataType, dims, data: q.data, scale: q.scale, scaleDims: [] }, true);
      n++;
    } else if (format === 'int8' && dims.length === 2 && users.every((u) => isRowLookup(u, name))) {
      dequantizedConstant(editor, name, quantizedWeight(floatValues(t), dims, format, 0), true);
      n++;
    }
  }
  return n;
}

/** A Gather that looks rows (axis 0) up in `table` and reads it nowhere else. */
function isRowLookup(node: NodeProto, table: string): boolean {
  return node.op_type === 'Gather' && !node.domain && intAttr(node, 'axis', 0) === 0 && node.input?.[0] === table && node.input.indexOf(table, 1) === -1;
}
