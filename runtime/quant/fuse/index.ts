// Graph rewrites for onnxruntime's WASM build, for the int8 transformer: where its own optimizer
// leaves many small fp32 kernels or a slow one (BENCHMARKS.md, "Transformer int8"), its contrib
// operators (com.microsoft) or faster standard ones. Every rewrite matches a whole pattern or
// leaves the graph as it was.
import { DataType, type ModelProto, floatValues, tensorDims, tensorSize } from '../../onnx';
import { GraphEditor, cloneModel } from '../graph';
import { dequantizedConstant } from '../qdq';
import { quantizeWeight } from '../weights';
import { MS_DOMAIN } from './common';
import { fuseAttention } from './attention';
import { fuseFastGelu } from './gelu';
import { expandLayerNorm } from './layer-norm';

export { fuseAttention } from './attention';
export { fuseFastGelu } from './gelu';
export { expandLayerNorm } from './layer-norm';
export { tensorRanks } from './ranks';
export { MS_DOMAIN } from './common';
export type { FusionOutcome } from './common';

export interface TransformerFusions {
  /** A new model; the caller's is untouched. */
  model: ModelProto;
  /** Patterns rewritten, by kind. */
  fused: { attention: number; fastGelu: number; layerNorm: number };
  /** Patterns that began to match and were left alone, and why. */
  notices: string[];
}

/**
 * Rewrites a float model's attention cores into MultiHeadAttention (with the query, key and
 * value biases), its exact GELUs (with their bias) into FastGelu, and its LayerNormalizations
 * into elementwise operators. A model without these patterns comes back unchanged.
 */
export function fuseTransformer(source: ModelProto): TransformerFusions {
  const editor = new GraphEditor(cloneModel(source));
  // The norms first: their γ and β go into the query, key and value biases, which the
  // attention rewrite then takes into MultiHeadAttention.
  const norms = expandLayerNorm(editor);
  const attention = fuseAttention(editor);
  const gelu = fuseFastGelu(editor);
  return {
    model: editor.model,
    fused: { attention: attention.fused, fastGelu: gelu.fused, layerNorm: norms.fused },
    notices: [...attention.notices, ...gelu.notices, ...norms.notices],
  };
}

/** The fusions in words, for a model card's method; '' when there were none. */
export function describeFusions(f: TransformerFusions['fused']): string {
  const parts = [
    f.attention ? `${f.attention} attention core${f.attention > 1 ? 's' : ''} as MultiHeadAttention` : '',
    f.fastGelu ? `${f.fastGelu} exact GELU as FastGelu (tanh approximation)` : '',
    f.layerNorm ? `${f.layerNorm} LayerNormalization as vectorized elementwise operators (γ, β folded into the MatMuls after them where possible)` : '',
  ].filter(Boolean);
  return parts.length ? `; rewritten for onnxruntime (runtime/quant/fuse): ${parts.join(', ')}` : '';
}

/**
 * The float biases the fused kernels read (FastGelu's, MultiHeadAttention's), stored int8
 * with one scale behind a DequantizeLinear, as the dynamic quantizer stores the biases Add reads:
 * the fusions take them out of the Adds, and the int8 file would otherwise grow by their fp32
 * bytes. Changes the model in place; returns how many it stored.
 */
export function compactFusedBiases(model: ModelProto, minElements = 64): number {
  const editor = new GraphEditor(model);
  const biasSlot = (n: { op_type?: string | null; domain?: string | null }): number => (n.domain !== MS_DOMAIN ? -1 : n.op_type === 'FastGelu' ? 1 : n.op_type === 'MultiHeadAttention' ? 3 : -1);
  let n = 0;
  for (const [name, t] of [...editor.initializers]) {
    if (t.data_type !== DataType.FLOAT || tensorSize(t) < minElements || tensorDims(t).length !== 1) continue;
    const users = editor.consumers(name);
    if (users.length === 0 || !users.every((u) => biasSlot(u) >= 0 && u.input!.indexOf(name) === biasSlot(u))) continue;
    const values = floatValues(t);
    const q = quantizeWeight(values, [values.length], 'int8', 0, { axis: 0, size: values.length });
    dequantizedConstant(editor, name, { dataType: q.dataType, dims: tensorDims(t), data: q.data, scale: q.scale, scaleDims: [] }, true);
    n++;
  }
  return n;
}
