// Weight-only quantization: weights stored as int8 or FP8 with per-channel (or per-block) scales
// and dequantized by a DequantizeLinear node; activations and arithmetic stay fp32. Files shrink
// to about a quarter; a `compact` load keeps the weights at one byte in memory.
import { EdgeInferError } from '../errors';
import { DataType, type ModelProto, floatTensor, floatValues, makeTensor } from '../onnx';
import { GraphEditor, cloneModel } from './graph';
import { upgradeOpset } from './opset';
import { findWeights } from './targets';
import { type WeightFormat, quantizeWeight } from './weights';

export interface WeightOnlyOptions {
  format: WeightFormat;
  /** Scales per block of this many elements along the reduction axis (opset 21), instead of per channel. */
  blockSize?: number;
}

export interface QuantizeOutcome {
  model: ModelProto;
  /** What stayed fp32, and why. */
  notices: string[];
  /** Weights quantized. */
  weights: number;
}

/**
 * Replaces every MatMul / Gemm / Conv weight with quantized codes, their scales and a
 * DequantizeLinear that restores the original tensor name, so the rest of the graph is untouched.
 */
export function quantizeWeightsOnly(source: ModelProto, options: WeightOnlyOptions): QuantizeOutcome {
  const editor = new GraphEditor(cloneModel(source));
  // int8 per-axis DequantizeLinear: opset 13; FP8: 19; block_size: 21.
  upgradeOpset(editor, options.blockSize ? 21 : options.format === 'int8' ? 13 : 19);
  editor.constantsToInitializers();
  const { uses, notices } = findWeights(editor);
  const done = new Set<string>();
  for (const use of uses) {
    if (done.has(use.name)) continue;
    done.add(use.name);
    const block = options.blockSize && use.dims[use.reductionAxis] > options.blockSize ? { axis: use.reductionAxis, size: options.blockSize } : undefined;
    if (options.blockSize && !block) notices.push(`weight '${use.name}' has ${use.dims[use.reductionAxis]} ≤ ${options.blockSize} along its reduction axis: one scale per channel`);
    const q = quantizeWeight(floatValues(use.tensor), use.dims, options.format, use.channelAxis, block);
    const codes = editor.addInitializer(makeTensor(`${use.name}_quantized`, q.dataType, use.dims, q.data));
    const scale = editor.addInitializer(floatTensor(`${use.name}_scale`, q.scaleDims, q.scale));
    const inputs = [codes, scale];
    if (q.dataType === DataType.INT8) inputs.push(editor.addInitializer(makeTensor(`${use.name}_zero_point`, DataType.INT8, q.scaleDims, new Int8Array(q.scale.length))));
    const attribute = [{ name: 'axis', type: 2, i: q.axis }, ...(q.blockSize ? [{ name: 'block_size', type: 2, i: q.blockSize }] : [])];
    // The original initializer goes; the DequantizeLinear output takes its name.
    editor.graph.initializer = editor.graph.initializer!.filter((t) => t.name !== use.name);
    editor.initializers.delete(use.name);
    editor.graph.input = (editor.graph.input ?? []).filter((i) => i.name !== use.name);
    editor.insertBefore(undefined, { op_type: 'DequantizeLinear', name: editor.fresh(`${use.name}_DequantizeLinear`), input: inputs, output: [use.name], attribute });
  }
  if (done.size === 0) throw new EdgeInferError('E_MODEL_UNSUPPORTED', `the model has no float weights the quantizer can take (MatMul, Gemm or Conv with a constant weight)${notices.length ? `: ${notices.join('; ')}` : ''}`);
  return { model: editor.model, notices, weights: done.size };
}
