// The building blocks every method uses: quantized constants stored next to their scales and read
// through a DequantizeLinear, and Quantize/Dequantize pairs on activations. Names are short: a
// transformer gets hundreds of them, and every use repeats one in the file. A constant's codes
// keep its name (`layers.0.linear1.weight.q` says which layer); its scale and zero point, read
// only by its DequantizeLinear, are `s_12` and `z_13`. The Quantize/Dequantize and Cast nodes
// added here go unnamed (ONNX makes a node's name optional): a name of ours said nothing their
// operator and tensors do not, and a transformer's hundred of them weighed a kilobyte.
// onnxruntime's messages still give the operator.
import { DataType, type NodeProto, type TensorValues, floatTensor, floatValues, makeTensor, tensorDims, tensorSize, tensorValues } from '../onnx';
import { narrowerPays, storeNarrower } from './fp16';
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
  const scale = editor.addSharedInitializer(floatTensor('s', q.scaleDims, q.scale));
  const zeroPoint = q.zeroPoint ? editor.addSharedInitializer(makeTensor('z', q.zeroPointType ?? q.dataType, q.scaleDims, q.zeroPoint)) : undefined;
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
    output = editor.fresh('dq');
  }
  const attribute = [
    ...(q.axis !== undefined ? [{ name: 'axis', type: 2, i: q.axis }] : []),
    ...(q.blockSize ? [{ name: 'block_size', type: 2, i: q.blockSize }] : []),
  ];
  editor.insertBefore(undefined, { op_type: 'DequantizeLinear', name: '', input: zeroPoint ? [codes, scale, zeroPoint] : [codes, scale], output: [output], attribute });
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
  // Short names (`qa_7.q`, `s_8`), not the tensor's: an exporter's names run to 40 characters,
  // and each appears a dozen times around one activation's Q/DQ pair, which made a static int8
  // transformer's graph four times the size of its fp32 graph. Equal scales and zero points are
  // one initializer.
  const base = editor.fresh('qa');
  const s = editor.addSharedInitializer(floatTensor('s', [], [scale]));
  const zp = editor.addSharedInitializer(makeTensor('z', DataType.UINT8, [], Uint8Array.of(zeroPoint)));
  const quantized = editor.fresh(`${base}.q`);
  const dequantized = editor.fresh(`${base}.d`);
  const q: NodeProto = { op_type: 'QuantizeLinear', name: '', input: [tensor, s, zp], output: [quantized] };
  const dq: NodeProto = { op_type: 'DequantizeLinear', name: '', input: [quantized, s, zp], output: [dequantized] };
  editor.rewire(tensor, dequantized);
  editor.insertAfterProducerOf(tensor, dq);
  editor.insertAfterProducerOf(tensor, q);
}

/**
 * Float constants that Add reads beside an activation (biases after a MatMul, position
 * embeddings), at least `minElements` long: weights too, stored low-bit with one scale each.
 * In int8, embedding tables that Gather looks rows up in as well, with one scale per row (a row
 * is what one position or token adds; onnxruntime's own dynamic quantizer stores them in 8 bits).
 * Normalization constants (read by Sub, Div, LayerNormalization) keep their precision, and so do
 * those named in `keepFloat`.
 */
export function quantizeAddConstants(editor: GraphEditor, format: WeightFormat, minElements = 64, keepFloat: ReadonlySet<string> = new Set()): number {
  let n = 0;
  for (const [name, t] of [...editor.initializers]) {
    // Cheap checks first: decoding every float initializer of a large model costs a copy of it.
    if (t.data_type !== DataType.FLOAT || tensorSize(t) < minElements || keepFloat.has(name)) continue;
    const users = editor.consumers(name);
    if (users.length === 0) continue;
    const dims = tensorDims(t);
    if (users.every((u) => u.op_type === 'Add' && !u.domain)) {
      const values = floatValues(t);
      // One scale for the whole tensor: a bias or an embedding has no output channels to split.
      const q = quantizeWeight(values, [values.length], format, 0, { axis: 0, size: values.length });
      dequantizedConstant(editor, name, { dataType: q.dataType, dims, data: q.data, scale: q.scale, scaleDims: [] }, true);
      n++;
    }
  }
  return format === 'int8' ? n + quantizeLookupTables(editor, minElements) : n;
}

/** A 2-D float constant that only Gathers read, row by row: an embedding table. */
function isLookupTable(editor: GraphEditor, name: string): boolean {
  const t = editor.initializers.get(name);
  const users = editor.consumers(name);
  return !!t && t.data_type === DataType.FLOAT && tensorDims(t).length === 2 && users.length > 0 && users.every((u) => isRowLookup(u, name));
}

/**
 * Embedding tables (2-D constants only Gather reads, by row) as int8 with one scale per row,
 * as quantizeAddConstants stores them in int8 variants. Returns how many.
 */
export function quantizeLookupTables(editor: GraphEditor, minElements = 64): number {
  let n = 0;
  for (const [name, t] of [...editor.initializers]) {
    if (tensorSize(t) < minElements || !isLookupTable(editor, name)) continue;
    dequantizedConstant(editor, name, quantizedWeight(floatValues(t), tensorDims(t), 'int8', 0), true);
    n++;
  }
  return n;
}

/** A Gather that looks rows (axis 0) up in `table` and reads it nowhere else. */
function isRowLookup(node: NodeProto, table: string): boolean {
  return node.op_type === 'Gather' && !node.domain && intAttr(node, 'axis', 0) === 0 && node.input?.[0] === table && node.input.indexOf(table, 1) === -1;
}

/**
 * int32 codes a DequantizeLinear reads (the biases of the integer kernels) stored as int16
 * behind a Cast back to int32, which onnxruntime folds into a constant at load, where every code
 * fits in int16 and the 2 bytes a code saves outweigh the Cast. A bias's codes are its values over
 * input scale × weight scale: hundreds to thousands. Returns how many it stored narrower.
 */
export function narrowInt32Codes(editor: GraphEditor): number {
  let n = 0;
  for (const [name, t] of [...editor.initializers]) {
    if (t.data_type !== DataType.INT32 || !narrowerPays(name, tensorSize(t))) continue;
    const users = editor.consumers(name);
    if (users.length === 0 || !users.every((u) => u.op_type === 'DequantizeLinear' && !u.domain && u.input!.indexOf(name) === 0 && u.input!.indexOf(name, 1) === -1)) continue;
    const codes = tensorValues(t) as Int32Array;
    if (codes.some((c) => c < -32768 || c > 32767)) continue;
    storeNarrower(editor, name, makeTensor(`${name}16`, DataType.INT16, tensorDims(t), Int16Array.from(codes)), DataType.INT32);
    n++;
  }
  return n;
}
