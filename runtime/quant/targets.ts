// Which weights a quantizer can touch: the constant weight inputs of MatMul, Gemm and Conv, with
// their channel and reduction axes. Everything else stays fp32, with a notice that says so.
import { DataType, type NodeProto, type TensorProto, tensorDims } from '../onnx';
import { type GraphEditor, intAttr } from './graph';

export interface WeightUse {
  node: NodeProto;
  /** The weight's input slot on the node. */
  input: number;
  name: string;
  tensor: TensorProto;
  dims: number[];
  /** Output channels: one scale each. */
  channelAxis: number;
  /** The axis summed over (K): where block-wise scales are cut. */
  reductionAxis: number;
}

/** Operators whose weights the quantizer handles. */
export const WEIGHT_OPS = ['MatMul', 'Gemm', 'Conv'] as const;

function isFloat(t: TensorProto): boolean {
  return t.data_type === DataType.FLOAT;
}

/** The weight a node reads, with its axes, or a reason it has none the quantizer can take. */
function weightOf(editor: GraphEditor, node: NodeProto): Omit<WeightUse, 'node'> | string {
  const op = node.op_type ?? '';
  const name = node.input?.[1] ?? '';
  const tensor = name ? editor.constant(name) : undefined;
  if (!tensor) return 'its weight is computed at run time';
  if (!isFloat(tensor)) return 'its weight is not float32';
  const dims = tensorDims(tensor);
  if (op === 'MatMul') {
    if (dims.length < 2) return 'its weight is not a matrix';
    // [..., K, N]: N output channels, summed over K.
    return { input: 1, name, tensor, dims, channelAxis: dims.length - 1, reductionAxis: dims.length - 2 };
  }
  if (op === 'Gemm') {
    if (dims.length !== 2) return 'its weight is not a matrix';
    if (intAttr(node, 'transA', 0) !== 0) return 'it transposes its input (transA)';
    const transB = intAttr(node, 'transB', 0) === 1;
    // transB (PyTorch's Linear export): B is [N, K].
    return { input: 1, name, tensor, dims, channelAxis: transB ? 0 : 1, reductionAxis: transB ? 1 : 0 };
  }
  if (op === 'Conv') {
    if (dims.length < 3) return 'its weight has fewer than 3 dimensions';
    // [M, C/group, k...]: M output channels, summed over C and the kernel.
    return { input: 1, name, tensor, dims, channelAxis: 0, reductionAxis: 1 };
  }
  return `${op} is not one of ${WEIGHT_OPS.join(', ')}`;
}

/** The quantizable weight uses of a graph, and notices for the nodes left in fp32. */
export function findWeights(editor: GraphEditor): { uses: WeightUse[]; notices: string[] } {
  const uses: WeightUse[] = [];
  const notices: string[] = [];
  for (const node of editor.nodes) {
    if (!(WEIGHT_OPS as readonly string[]).includes(node.op_type ?? '') || (node.domain && node.domain !== 'ai.onnx')) continue;
    const w = weightOf(editor, node);
    if (typeof w === 'string') notices.push(`${node.op_type} '${node.name ?? ''}' stays fp32: ${w}`);
    else uses.push({ node, ...w });
  }
  return { uses, notices };
}
