// Dynamic int8: weights int8 per output channel, activations quantized at run time. Written in
// the form onnxruntime fuses into its integer matrix kernels (DynamicQuantizeMatMul):
//   DynamicQuantizeLinear(A) → MatMulInteger(A_q, W_q, A_zp, W_zp) → Cast → Mul(A_scale · W_scale)
// and, for convolutions, as onnxruntime's own dynamic quantizer writes them:
//   DynamicQuantizeLinear(X) → ConvInteger(X_q, W_q, X_zp, 0) → Cast → Mul(X_scale · W_scale[M, 1…]) → Add(bias[M, 1…])
import { DataType, type ModelProto, type NodeProto, floatTensor, floatValues, makeTensor, tensorDims } from '../onnx';
import { EdgeInferError } from '../errors';
import { GraphEditor, cloneModel, intAttr } from './graph';
import { upgradeOpset } from './opset';
import { defaultReduceRange } from './reduce-range';
import { findWeights } from './targets';
import type { QuantizeOutcome } from './weight-only';
import { compactFloatConstants } from './fp16';
import { addQuantized, quantizeAddConstants, quantizedWeight } from './qdq';
import type { WeightUse } from './targets';
import { shortenValueNames } from './names';

/** A [N, K] matrix as [K, N]. */
function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c];
  return out;
}

function floatAttr(node: NodeProto, name: string, fallback: number): number {
  const a = node.attribute?.find((x) => x.name === name);
  return a?.f ?? fallback;
}

/**
 * Gemm(A, B, C) → MatMul(A, B') + C, with B' = Bᵀ when transB: the integer matrix kernels take
 * [K, N] weights, and PyTorch exports Linear layers as Gemm with transB. Only plain Gemms
 * (alpha = beta = 1, no transA) are rewritten; the others are left and reported.
 */
function gemmToMatMul(editor: GraphEditor, node: NodeProto, notices: string[], transposed: Map<string, string>): boolean {
  const [a, b, c] = node.input ?? [];
  const weight = editor.initializers.get(b);
  if (!weight || intAttr(node, 'transA', 0) || floatAttr(node, 'alpha', 1) !== 1 || floatAttr(node, 'beta', 1) !== 1) {
    notices.push(`Gemm '${node.name ?? ''}' stays fp32: only Gemm with a constant weight, alpha = beta = 1 and no transA is quantized dynamically`);
    return false;
  }
  const dims = tensorDims(weight);
  let name = b;
  if (intAttr(node, 'transB', 0)) {
    // Once per weight: Gemms that share a weight (tied layers) share its transposed copy.
    name = transposed.get(b) ?? editor.addInitializer(floatTensor(`${b}_transposed`, [dims[1], dims[0]], transpose(floatValues(weight), dims[0], dims[1])));
    transposed.set(b, name);
  }
  const out = node.output![0];
  const product = c ? editor.fresh(`${out}_matmul`) : out;
  const matmul: NodeProto = { op_type: 'MatMul', name: editor.fresh(`${node.name ?? 'gemm'}_MatMul`), input: [a, name], output: [product] };
  editor.insertBefore(node, matmul);
  if (c) editor.insertBefore(node, { op_type: 'Add', name: editor.fresh(`${node.name ?? 'gemm'}_bias`), input: [product, c], output: [out] });
  editor.removeNode(node);
  editor.dropInitializerIfUnused(b);
  return true;
}

/**
 * The uint8 form of a node's first input, from one DynamicQuantizeLinear shared by every node
 * that reads it (Q, K and V projections read the same normalized tokens). Names made here are
 * short (`dq_3.q`): a transformer gets dozens, and each appears several times in the file.
 */
function quantizedInput(editor: GraphEditor, node: NodeProto, done: Map<string, [string, string, string]>): [string, string, string] {
  const a = node.input![0];
  let qa = done.get(a);
  if (!qa) {
    const base = editor.fresh('dq');
    qa = [editor.fresh(`${base}.q`), editor.fresh(`${base}.s`), editor.fresh(`${base}.z`)];
    editor.insertBefore(node, { op_type: 'DynamicQuantizeLinear', name: editor.fresh(`${base}.DQL`), input: [a], output: [...qa] });
    done.set(a, qa);
  }
  return qa;
}

export interface DynamicOptions {
  /** Weights within ±64 instead of ±127, for x86 kernels without VNNI (default: defaultReduceRange()). */
  reduceRange?: boolean;
}

/** Rewrites every MatMul with a constant 2-D weight into the dynamically quantized form. */
export function quantizeDynamic(source: ModelProto, options: DynamicOptions = {}): QuantizeOutcome {
  const reduceRange = options.reduceRange ?? defaultReduceRange();
  const editor = new GraphEditor(cloneModel(source));
  // DynamicQuantizeLinear exists from opset 11; older models are refused there, naming their opset.
  upgradeOpset(editor, 11);
  const notices: string[] = [];
  editor.constantsToInitializers();
  const gemmsLeft = new Set<NodeProto>();
  const transposed = new Map<string, string>();
  for (const node of [...editor.nodes]) if (node.op_type === 'Gemm' && !node.domain && !gemmToMatMul(editor, node, notices, transposed)) gemmsLeft.add(node);
  const { uses, notices: skipped } = findWeights(editor);
  // Gemms that could not become MatMul are already reported.
  notices.push(...skipped.filter((n) => !n.startsWith('Gemm')));
  const quantizedInputs = new Map<string, [string, string, string]>();
  const weights = new Map<string, { q: string; scale: string; zp: string }>();
  /** Outputs of the integer MatMuls. */
  const products: string[] = [];
  let count = 0;
  // Symmetric int8 weights: one scalar zero point that every ConvInteger and MatMulInteger shares.
  let zero: string | undefined;
  const weightZero = (): string => (zero ??= editor.addInitializer(makeTensor('w.z', DataType.INT8, [], Int8Array.of(0))));
  for (const use of uses) {
    const node = use.node;
    if (gemmsLeft.has(node)) continue;
    if (node.op_type === 'Conv') {
      const qa = quantizedInput(editor, node, quantizedInputs);
      convInteger(editor, node, use, qa, weightZero(), weights, reduceRange);
      count++;
      continue;
    }
    if (node.op_type !== 'MatMul') {
      notices.push(`${node.op_type} '${node.name ?? ''}' stays fp32 in dynamic mode`);
      continue;
    }
    if (use.dims.length !== 2) {
      notices.push(`MatMul '${node.name ?? ''}' stays fp32: its weight has ${use.dims.length} dimensions, the integer kernel takes 2`);
      continue;
    }
    const qa = quantizedInput(editor, node, quantizedInputs);
    let w = weights.get(use.name);
    if (!w) {
      // (Per column, as it was, cost a byte per output column and a name per weight; onnxruntime fuses either way.)
      const q = quantizedWeight(floatValues(use.tensor), use.dims, 'int8', 1, undefined, reduceRange);
      const added = addQuantized(editor, use.name, q);
      w = { q: added.codes, scale: added.scale, zp: weightZero() };
      weights.set(use.name, w);
    }
    const base = editor.fresh('mm');
    const integer = editor.fresh(`${base}.i32`);
    const asFloat = editor.fresh(`${base}.f32`);
    const scales = editor.fresh(`${base}.scales`);
    editor.insertBefore(node, { op_type: 'MatMulInteger', name: editor.fresh(`${base}.MMI`), input: [qa[0], w.q, qa[2], w.zp], output: [integer] });
    editor.insertBefore(node, { op_type: 'Cast', name: editor.fresh(`${base}.Cast`), input: [integer], output: [asFloat], attribute: [{ name: 'to', type: 2, i: DataType.FLOAT }] });
    editor.insertBefore(node, { op_type: 'Mul', name: editor.fresh(`${base}.ScalesMul`), input: [qa[1], w.scale], output: [scales] });
    editor.insertBefore(node, { op_type: 'Mul', name: editor.fresh(`${base}.Rescale`), input: [asFloat, scales], output: [node.output![0]] });
    editor.removeNode(node);
    products.push(node.output![0]);
    count++;
  }
  for (const name of weights.keys()) editor.dropInitializerIfUnused(name);
  if (count === 0) throw new EdgeInferError('E_MODEL_UNSUPPORTED', `the model has no MatMul, Gemm or Conv with a constant float weight to quantize dynamically${notices.length ? `: ${notices.join('; ')}` : ''}`);
  // Biases and position embeddings: int8 storage behind a DequantizeLinear; the smaller biases,
  // norms and embeddings as fp16 where that is exact enough, and the weights' scales, which
  // quantizeWeight chose among the values fp16 holds. The bias of an integer MatMul stays float
  // (fp16 in the file): onnxruntime then takes it into DynamicQuantizeMatMul or
  // MatMulIntegerToFloat, one Add and one DequantizeLinear fewer per MatMul (3 % faster on WASM,
  // 5 % natively, for a 0.2 % larger transformer; BENCHMARKS.md, "Transformer int8").
  quantizeAddConstants(editor, 'int8', undefined, integerMatMulBiases(editor, products));
  compactFloatConstants(editor);
  shortenValueNames(editor.model);
  return { model: editor.model, notices, weights: weights.size };
}

/** Constant 1-D biases that an Add alone puts on the output of an integer MatMul. */
function integerMatMulBiases(editor: GraphEditor, products: readonly string[]): Set<string> {
  const biases = new Set<string>();
  for (const product of products) {
    const readers = editor.consumers(product);
    const add = readers.length === 1 && readers[0].op_type === 'Add' && !readers[0].domain ? readers[0] : undefined;
    const bias = add?.input?.find((i) => i !== product);
    const t = bias ? editor.initializers.get(bias) : undefined;
    if (t && t.data_type === DataType.FLOAT && tensorDims(t).length === 1) biases.add(bias!);
  }
  return biases;
}

/**
 * Conv → ConvInteger on the dynamically quantized input. ConvInteger takes one weight zero point
 * (onnxruntime refuses per-channel ones), but the scales are applied after it, so they can
 * still be one per output channel: a Mul by [M, 1, …] on the int32 sums cast to float.
 */
function convInteger(editor: GraphEditor, node: NodeProto, use: WeightUse, qa: [string, string, string], zeroPoint: string, weights: Map<string, { q: string; scale: string; zp: string }>, reduceRange: boolean): void {
  const channels = use.dims[0];
  // [M, 1, …]: the scales and the bias broadcast over the output's [N, M, spatial…].
  const perChannel = [channels, ...use.dims.slice(2).map(() => 1)];
  let w = weights.get(use.name);
  if (!w) {
    const q = quantizedWeight(floatValues(use.tensor), use.dims, 'int8', 0, undefined, reduceRange);
    const added = addQuantized(editor, use.name, { ...q, scaleDims: perChannel });
    w = { q: added.codes, scale: added.scale, zp: zeroPoint };
    weights.set(use.name, w);
  }
  const base = editor.fresh('ci');
  const out = node.output![0];
  const integer = editor.fresh(`${base}.i32`);
  const asFloat = editor.fresh(`${base}.f32`);
  const scales = editor.fresh(`${base}.scales`);
  const bias = node.input?.[2];
  const scaled = bias ? editor.fresh(`${base}.scaled`) : out;
  // Every attribute of Conv (pads, strides, dilations, group, auto_pad, kernel_shape) means the same on ConvInteger.
  editor.insertBefore(node, { op_type: 'ConvInteger', name: editor.fresh(`${base}.CI`), input: [qa[0], w.q, qa[2], w.zp], output: [integer], attribute: node.attribute ?? [] });
  editor.insertBefore(node, { op_type: 'Cast', name: editor.fresh(`${base}.Cast`), input: [integer], output: [asFloat], attribute: [{ name: 'to', type: 2, i: DataType.FLOAT }] });
  editor.insertBefore(node, { op_type: 'Mul', name: editor.fresh(`${base}.ScalesMul`), input: [qa[1], w.scale], output: [scales] });
  editor.insertBefore(node, { op_type: 'Mul', name: editor.fresh(`${base}.Rescale`), input: [asFloat, scales], output: [scaled] });
  if (bias) {
    const b = editor.constant(bias);
    let biasInput = bias;
    // A constant bias [M] is stored as [M, 1, …] so that Add broadcasts it over the channel axis;
    // a computed one is reshaped at run time.
    if (b && b.data_type === DataType.FLOAT) {
      biasInput = editor.addInitializer(floatTensor(`${bias}.c`, perChannel, floatValues(b)));
    } else {
      const shape = editor.addInitializer(makeTensor(editor.fresh(`${base}.bias_shape`), DataType.INT64, [perChannel.length], BigInt64Array.from(perChannel.map((d, i) => BigInt(i === 0 ? -1 : d)))));
      biasInput = editor.fresh(`${bias}.c`);
      editor.insertBefore(node, { op_type: 'Reshape', name: editor.fresh(`${base}.BiasReshape`), input: [bias, shape], output: [biasInput] });
    }
    editor.insertBefore(node, { op_type: 'Add', name: editor.fresh(`${base}.Bias`), input: [scaled, biasInput], output: [out] });
  }
  editor.removeNode(node);
  if (bias) editor.dropInitializerIfUnused(bias);
}
