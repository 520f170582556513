// The rank of each tensor of a graph, where it follows from the declared inputs and constant
// shapes. The fusions need it: onnxruntime's MultiHeadAttention takes [batch, sequence, hidden]
// tensors only (a rewrite of a 2-D or 4-D pattern would fail at load), and a LayerNormalization
// over axis 2 of a rank-3 tensor is one over the last axis.
import { type GraphProto, tensorDims, tensorValues } from '../../onnx';
import { type GraphEditor, intAttr, intsAttr } from '../graph';

/** Operators whose output has their first input's rank. */
const SAME_RANK = new Set(['LayerNormalization', 'Softmax', 'Relu', 'Gelu', 'Erf', 'Sqrt', 'Reciprocal', 'Tanh', 'Sigmoid', 'Cast', 'Identity', 'Dropout', 'DequantizeLinear', 'QuantizeLinear', 'Neg', 'Abs', 'Exp', 'Log', 'Clip']);
/** Elementwise operators with broadcasting: the largest rank of their inputs. */
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Where', 'Max', 'Min']);
/** The contrib operators the fusions write: every output they give has the first input's rank. */
const CONTRIB_SAME_RANK = new Set(['MultiHeadAttention', 'FastGelu', 'BiasGelu', 'SkipLayerNormalization']);

function declaredRanks(graph: GraphProto): Map<string, number> {
  const ranks = new Map<string, number>();
  for (const v of [...(graph.input ?? []), ...(graph.value_info ?? []), ...(graph.output ?? [])]) {
    const dims = v.type?.tensor_type?.shape?.dim;
    if (v.name && dims) ranks.set(v.name, dims.length);
  }
  return ranks;
}

/** Ranks forward through the nodes in order; a tensor whose rank cannot be told is absent. */
export function tensorRanks(editor: GraphEditor): Map<string, number> {
  const ranks = declaredRanks(editor.graph);
  for (const [name, t] of editor.initializers) ranks.set(name, tensorDims(t).length);
  for (const node of editor.nodes) {
    const op = node.op_type ?? '';
    const ins = (node.input ?? []).map((i) => (i ? ranks.get(i) : undefined));
    let rank: number | undefined;
    if (node.domain === 'com.microsoft' && CONTRIB_SAME_RANK.has(op)) {
      // SkipLayerNormalization's mean and inverse deviation (outputs 1, 2) are never read by the fusions.
      for (const o of node.output ?? []) if (o && ins[0] !== undefined) ranks.set(o, ins[0]);
      continue;
    }
    if (node.domain && node.domain !== 'ai.onnx') rank = undefined;
    else if (SAME_RANK.has(op)) rank = ins[0];
    else if (BROADCAST.has(op)) rank = ins.every((r) => r !== undefined) ? Math.max(...(ins as number[])) : undefined;
    else if (op === 'Transpose') rank = ins[0];
    else if (op === 'MatMul') rank = ins[0] !== undefined && ins[1] !== undefined ? Math.max(ins[0], ins[1]) : undefined;
    else if (op === 'Gemm') rank = 2;
    else if (op === 'Reshape') {
      const shape = editor.constant(node.input?.[1] ?? '');
      rank = shape ? tensorDims(shape)[0] : undefined;
    } else if (op === 'ReduceMean' || op === 'ReduceSum') {
      const axes = intsAttr(node, 'axes') ?? (node.input?.[1] && editor.constant(node.input[1]) ? Array.from(tensorValues(editor.constant(node.input[1])!) as ArrayLike<number | bigint>, Number) : undefined);
      rank = ins[0] === undefined || !axes ? undefined : intAttr(node, 'keepdims', 1) ? ins[0] : ins[0] - axes.length;
    } else if (op === 'Constant') {
      const t = node.attribute?.find((a) => a.name === 'value')?.t;
      rank = t ? tensorDims(t).length : undefined;
    }
    const out = node.output?.[0];
    if (out && rank !== undefined && !ranks.has(out)) ranks.set(out, rank);
  }
  return ranks;
}
