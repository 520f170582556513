// Weight-only quantization: weights stored as int8 or FP8 with per-channel (or per-block) scales
// and dequantized by a DequantizeLinear node; activations and arithmetic stay fp32. Files shrink
// to about a quarter; a `compact` load keeps the weights at one byte in memory.
import { EdgeInferError } from '../errors';
import { type ModelProto, floatValues } from '../onnx';
import { compactFloatConstants } from './fp16';
import { GraphEditor, cloneModel } from './graph';
import { upgradeOpset } from './opset';
import { findWeights } from './targets';
import { dequantizedConstant, quantizeAddConstants, quantizedWeight } from './qdq';
import type { WeightFormat } from './weights';
import { shortenValueNames } from './names';

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
    dequantizedConstant(editor, use.name, quantizedWeight(floatValues(use.tensor), use.dims, options.format, use.channelAxis, block), true);
  }
  if (done.size > 0) {
    quantizeAddConstants(editor, options.format);
    // Biases, norms and embeddings: fp16 where exact enough, so the file nears a quarter of fp32.
    compactFloatConstants(editor);
  }
  if (done.size === 0) throw new EdgeInferError('E_MODEL_UNSUPPORTED', `the model has no float weights the quantizer can take (MatMul, Gemm or Conv with a constant weight)${notices.length ? `: ${notices.join('; ')}` : ''}`);
  shortenValueNames(editor.model);
  return { model: editor.model, notices, weights: done.size };
}
