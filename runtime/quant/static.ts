// Static int8 in QDQ form: calibrated QuantizeLinear → DequantizeLinear pairs around the
// activations of quantizable operators, int8 per-channel weights and int32 biases. onnxruntime
// recognises each DQ → op → Q group and runs it as one integer kernel (QLinearMatMul, QGemm,
// QLinearConv, QLinearAdd, ...); operators outside the groups stay fp32 between a DQ and a Q.
import { EdgeInferError } from '../errors';
import { DataType, type ModelProto, type NodeProto, floatValues, makeTensor, tensorDims } from '../onnx';
import { type CalibrationOptions, type CalibrationWindows, type TensorRange, calibrateRanges } from './calibrate';
import { compactFloatConstants } from './fp16';
import { GraphEditor, cloneModel } from './graph';
import { upgradeOpset } from './opset';
import { defaultReduceRange } from './reduce-range';
import { findWeights } from './targets';
import type { QuantizeOutcome } from './weight-only';
import { dequantizedConstant, insertQdq, narrowInt32Codes, quantizeLookupTables, quantizedWeight, uint8Constant } from './qdq';
import { shortenValueNames } from './names';

/**
 * Operators whose activations are quantized: the integer kernels (MatMul, Gemm, Conv, Add, Mul)
 * and the activations and pools onnxruntime has QLinear forms of. Layout operators (Reshape,
 * Transpose, Flatten, Squeeze, Unsqueeze) are not: onnxruntime moves the Q/DQ pairs of their
 * neighbours through them at load (its QDQ propagation), so integer data flows through them all
 * the same, and the file spares a pair, a scale and a zero point each (1.5 kB of a transformer).
 */
export const QDQ_OPS = ['MatMul', 'Gemm', 'Conv', 'Add', 'Mul', 'Relu', 'Sigmoid', 'Softmax', 'MaxPool', 'AveragePool', 'GlobalAveragePool'] as const;

export interface StaticOptions extends CalibrationOptions {
  windows: CalibrationWindows;
  /** Weights within ±64 instead of ±127, for x86 kernels without VNNI (default: defaultReduceRange()). */
  reduceRange?: boolean;
}

function isQuantizable(node: NodeProto): boolean {
  return !node.domain && (QDQ_OPS as readonly string[]).includes(node.op_type ?? '');
}

/** The float activation inputs of a node: not constants, not empty. */
function activationInputs(editor: GraphEditor, node: NodeProto, weightSlots: Set<number>): string[] {
  return (node.input ?? []).filter((name, i) => name && !weightSlots.has(i) && !editor.initializers.has(name) && editor.producer(name)?.op_type !== 'Constant');
}

/**
 * A graph output, or a tensor only renamed into graph outputs by Identity nodes (as exporters
 * name their outputs): the caller gets it in fp32. Quantized there, a final Softmax also became
 * onnxruntime's QLinearSoftmax, whose native kernel gave zeros for some classes of a 10-class head.
 */
function isFinalOutput(editor: GraphEditor, tensor: string): boolean {
  if (editor.isGraphOutput(tensor)) return true;
  const readers = editor.consumers(tensor);
  return readers.length > 0 && readers.every((n) => n.op_type === 'Identity' && !n.domain && (n.output ?? []).every((o) => editor.isGraphOutput(o)));
}

/** Quantizes a model to int8 in QDQ form, calibrated on `options.windows`. */
export async function quantizeStatic(source: ModelProto, options: StaticOptions): Promise<QuantizeOutcome & { ranges: Map<string, TensorRange> }> {
  const editor = new GraphEditor(cloneModel(source));
  upgradeOpset(editor, 13);
  editor.constantsToInitializers();
  const notices: string[] = [];
  const { uses, notices: skipped } = findWeights(editor);
  // A MatMul of two activations (attention scores) is quantized here on both inputs.
  notices.push(...skipped.filter((n) => !/^MatMul .* its weight is computed at run time$/.test(n)));
  // Only float tensors carry activations; shape arithmetic (Shape → Gather → Concat) is int64.
  const types = editor.elementTypes();
  const isFloat = (t: string): boolean => types.get(t) === DataType.FLOAT;
  const weightSlot = new Map<NodeProto, number>(uses.map((u) => [u.node, u.input]));

  // 1. Which activations: inputs and outputs of quantizable nodes, except the graph's outputs
  //    (the caller gets fp32 scores, not their 8-bit rounding).
  const activations = new Set<string>();
  for (const node of editor.nodes) {
    if (!isQuantizable(node)) continue;
    const slots = new Set<number>(weightSlot.has(node) ? [weightSlot.get(node)!] : []);
    if ((node.op_type === 'Gemm' || node.op_type === 'Conv') && node.input?.[2]) slots.add(2);
    for (const a of activationInputs(editor, node, slots)) if (isFloat(a)) activations.add(a);
    for (const o of node.output ?? []) if (!isFinalOutput(editor, o) && isFloat(o)) activations.add(o);
  }
  const skippedOps = new Set(editor.nodes.filter((n) => !isQuantizable(n) && n.op_type !== 'Constant').map((n) => n.op_type ?? '?'));
  if (skippedOps.size) notices.push(`stay fp32 between DequantizeLinear and QuantizeLinear: ${[...skippedOps].sort().join(', ')}`);
  if (activations.size === 0 || uses.length === 0) throw new EdgeInferError('E_MODEL_UNSUPPORTED', 'the model has no MatMul, Gemm or Conv with a constant float weight to quantize');

  // 2. Calibrate on the fp32 model (with its Constant nodes as initializers, as named here).
  const ranges = await calibrateRanges(editor.model, [...activations], options.windows, options);

  // 3. Weights: int8 per output channel behind a DequantizeLinear.
  const reduceRange = options.reduceRange ?? defaultReduceRange();
  const weightScales = new Map<string, Float32Array>();
  for (const use of uses) {
    if (weightScales.has(use.name) || !editor.initializers.has(use.name)) continue;
    const q = quantizedWeight(floatValues(use.tensor), use.dims, 'int8', use.channelAxis, undefined, reduceRange);
    weightScales.set(use.name, q.scale);
    // onnxruntime fuses DQ → Gemm/Conv into QGemm/QLinearConv only with explicit weight zero points.
    dequantizedConstant(editor, use.name, { ...q, zeroPoint: new Int8Array(q.scale.length) }, true);
  }

  // 4. Activations: T → QuantizeLinear → DequantizeLinear → every reader of T.
  for (const tensor of activations) {
    const r = ranges.get(tensor);
    if (r) insertQdq(editor, tensor, r);
  }

  // Constant operands of Add and Mul (a bias after a MatMul): uint8 per tensor, like activations,
  // as QLinearAdd and QLinearMul take both operands in one type. A constant several nodes read
  // is stored once, behind one DequantizeLinear they share.
  const dequantized = new Map<string, string>();
  for (const node of editor.nodes.filter((n) => (n.op_type === 'Add' || n.op_type === 'Mul') && !n.domain)) {
    (node.input ?? []).forEach((name, i) => {
      let dq = dequantized.get(name);
      if (!dq) {
        const init = editor.initializers.get(name);
        if (!init || init.data_type !== DataType.FLOAT) return;
        dq = dequantizedConstant(editor, name, uint8Constant(floatValues(init), tensorDims(init)), false);
        dequantized.set(name, dq);
      }
      node.input![i] = dq;
    });
  }
  for (const name of dequantized.keys()) editor.dropInitializerIfUnused(name);

  // 5. Biases of Gemm and Conv: int32 with scale = input scale × weight scale, zero point 0, as
  //    the integer kernels add them to their int32 accumulators. The scale is not stored: a Mul
  //    of the input's and the weight's scales, which onnxruntime folds into a constant at load.
  for (const use of uses) {
    const node = use.node;
    const bias = node.input?.[2];
    if ((node.op_type !== 'Gemm' && node.op_type !== 'Conv') || !bias || !editor.initializers.has(bias)) continue;
    const inputDq = editor.producer(node.input![0]);
    const weightDq = editor.producer(node.input![1]);
    if (inputDq?.op_type !== 'DequantizeLinear' || weightDq?.op_type !== 'DequantizeLinear') continue;
    const xScale = editor.initializers.get(inputDq.input![1]);
    const wScale = weightScales.get(use.name);
    const values = floatValues(editor.initializers.get(bias)!);
    if (!xScale || !wScale || values.length !== wScale.length) continue;
    // float32 products, as onnxruntime's Mul computes them.
    const x = floatValues(xScale)[0];
    const scale = Float32Array.from(wScale, (w) => Math.fround(w * x));
    const q = Int32Array.from(values, (v, i) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(v / scale[i]))));
    const codes = editor.addInitializer(makeTensor(`${bias}.q`, DataType.INT32, [values.length], q));
    const biasScale = editor.fresh('bs');
    const dq = editor.fresh('dq');
    editor.insertBefore(undefined, { op_type: 'Mul', name: '', input: [weightDq.input![1], inputDq.input![1]], output: [biasScale] });
    editor.insertBefore(undefined, { op_type: 'DequantizeLinear', name: '', input: [codes, biasScale], output: [dq], attribute: [{ name: 'axis', type: 2, i: 0 }] });
    node.input![2] = dq;
    editor.dropInitializerIfUnused(bias);
  }
  // Embedding tables: int8 per row, as in the other int8 variants. What stays fp32 (norms) and
  // the weights' scales: fp16 storage where exact enough; the biases' codes in int16 where they fit.
  quantizeLookupTables(editor);
  compactFloatConstants(editor);
  narrowInt32Codes(editor);
  editor.sortTopologically();
  shortenValueNames(editor.model);
  return { model: editor.model, notices, weights: weightScales.size, ranges };
}
