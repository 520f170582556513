// The core of multi-head attention as onnxruntime's com.microsoft MultiHeadAttention: the head
// split, scores, softmax, context and head merge (three Reshapes, four Transposes, two MatMuls, a
// Mul and a Softmax) become one kernel. On WASM those small ops cost more than the attention's
// arithmetic (BENCHMARKS.md, "Transformer int8"). The projections in front stay ordinary MatMuls,
// for the int8 quantizer. The pattern is the one PyTorch and the project's builder export:
//
//   q ─ Reshape[0,0,N,H] ─ Transpose[0,2,1,3] ─┐
//   k ─ Reshape[0,0,N,H] ─ Transpose[0,2,3,1] ─ MatMul ─ [Mul|Div c] ─ Softmax(-1) ─┐
//   v ─ Reshape[0,0,N,H] ─ Transpose[0,2,1,3] ──────────────────────────────────── MatMul ─ Transpose[0,2,1,3] ─ Reshape[0,0,N·H]
//
// q, k and v are [batch, sequence, N·H]. Anything else (a mask or bias added to the scores, a
// different head layout, an intermediate read elsewhere) is left alone, with a notice that says why.
import { type AttributeProto, DataType, type NodeProto, floatTensor, floatValues, tensorDims } from '../../onnx';
import { type GraphEditor, intAttr, intsAttr } from '../graph';
import { type FusionOutcome, constantNumbers, isOp, samePerm, soleReader, useContribOps } from './common';
import { tensorRanks } from './ranks';

/** q, k or v split into heads: source → Reshape[0,0,N,H] → Transpose(perm). */
interface Heads {
  source: string;
  heads: number;
  headSize: number;
  nodes: NodeProto[];
}

/** Follows a Transpose back to the tensor it split into heads, or says why it is not such a split. */
function headsOf(editor: GraphEditor, transposed: string, perm: readonly number[], ranks: Map<string, number>): Heads | string {
  const transpose = editor.producer(transposed);
  if (!isOp(transpose, 'Transpose') || !samePerm(intsAttr(transpose, 'perm'), perm)) return `it is not a Transpose with perm [${perm.join(', ')}]`;
  const reshape = editor.producer(transpose.input![0]);
  if (!isOp(reshape, 'Reshape')) return 'no Reshape into heads comes before its Transpose';
  const shape = constantNumbers(editor, reshape.input![1]);
  if (!shape || shape.length !== 4 || shape[0] !== 0 || shape[1] !== 0 || !(shape[2] > 0) || !(shape[3] > 0)) return 'its Reshape is not [0, 0, heads, head size]';
  const source = reshape.input![0];
  if (ranks.get(source) !== 3) return `'${source}' is not known to be [batch, sequence, hidden]`;
  // The split must be private to this attention: its values go away with it.
  if (soleReader(editor, reshape.output![0]) !== transpose || editor.isGraphOutput(transposed)) return 'its heads are read elsewhere too';
  return { source, heads: shape[2], headSize: shape[3], nodes: [reshape, transpose] };
}

interface Match {
  q: Heads;
  k: Heads;
  v: Heads;
  scale: number;
  nodes: NodeProto[];
  output: string;
}

function matchAttention(editor: GraphEditor, scores: NodeProto, ranks: Map<string, number>): Match | string {
  const q = headsOf(editor, scores.input![0], [0, 2, 1, 3], ranks);
  if (typeof q === 'string') return `query: ${q}`;
  const k = headsOf(editor, scores.input![1], [0, 2, 3, 1], ranks);
  if (typeof k === 'string') return `key: ${k}`;
  if (soleReader(editor, scores.input![0]) !== scores || soleReader(editor, scores.input![1]) !== scores) return 'its query or key heads are read elsewhere too';
  const nodes: NodeProto[] = [...q.nodes, ...k.nodes, scores];
  let value = scores.output![0];
  let scale = 1;
  let next = soleReader(editor, value);
  if (isOp(next, 'Mul') || isOp(next, 'Div')) {
    const other = next.input!.find((i) => i !== value);
    const c = other !== undefined ? constantNumbers(editor, other) : undefined;
    if (!c || c.length !== 1 || !Number.isFinite(c[0]) || c[0] === 0 || (isOp(next, 'Div') && next.input![0] !== value)) return 'its scores are scaled by something other than one constant';
    scale = isOp(next, 'Mul') ? c[0] : 1 / c[0];
    nodes.push(next);
    value = next.output![0];
    next = soleReader(editor, value);
  }
  if (!isOp(next, 'Softmax')) return 'no Softmax follows its scores alone (a mask or bias is added first?)';
  const axis = intAttr(next, 'axis', -1);
  if (axis !== -1 && axis !== 3) return `its Softmax is over axis ${axis}, not the keys`;
  nodes.push(next);
  const context = soleReader(editor, next.output![0]);
  if (!isOp(context, 'MatMul') || context.input![0] !== next.output![0]) return 'its attention weights do not multiply the values';
  const v = headsOf(editor, context.input![1], [0, 2, 1, 3], ranks);
  if (typeof v === 'string') return `value: ${v}`;
  if (soleReader(editor, context.input![1]) !== context) return 'its value heads are read elsewhere too';
  if (q.heads !== k.heads || q.heads !== v.heads || q.headSize !== k.headSize || q.headSize !== v.headSize) return 'its query, key and value are split into different heads';
  nodes.push(...v.nodes, context);
  const merge = soleReader(editor, context.output![0]);
  if (!isOp(merge, 'Transpose') || !samePerm(intsAttr(merge, 'perm'), [0, 2, 1, 3])) return 'its heads are not transposed back with perm [0, 2, 1, 3]';
  const reshape = soleReader(editor, merge.output![0]);
  const merged = isOp(reshape, 'Reshape') ? constantNumbers(editor, reshape.input![1]) : undefined;
  const hidden = q.heads * q.headSize;
  if (!merged || merged.length !== 3 || merged[0] !== 0 || merged[1] !== 0 || (merged[2] !== hidden && merged[2] !== -1)) return `its heads are not merged back by a Reshape to [0, 0, ${hidden}]`;
  nodes.push(merge, reshape!);
  return { q, k, v, scale, nodes, output: reshape!.output![0] };
}

/**
 * The bias Adds in front of the query, key and value (y + b, b a float constant of one value per
 * feature, the sum read only by the head split), taken into MultiHeadAttention's bias input:
 * their [3·hidden] values, zeros where one has none. `inputs` is changed to read the Adds' inputs.
 */
function takeBiases(editor: GraphEditor, m: Match, inputs: string[], ranks: Map<string, number>): Float32Array | undefined {
  const hidden = m.q.heads * m.q.headSize;
  const found = inputs.map((source, j) => {
    const add = editor.producer(source);
    if (!isOp(add, 'Add') || editor.consumers(source).length !== 1 || editor.isGraphOutput(source) || inputs.indexOf(source) !== j) return undefined;
    const b = add.input!.find((i) => {
      const t = editor.constant(i);
      return t && t.data_type === DataType.FLOAT && tensorDims(t).length === 1 && tensorDims(t)[0] === hidden;
    });
    const y = add.input!.find((i) => i !== b);
    return b && y && ranks.get(y) === 3 ? { add, b, y } : undefined;
  });
  if (!found.some(Boolean)) return undefined;
  const bias = new Float32Array(hidden * 3);
  found.forEach((f, j) => {
    if (!f) return;
    bias.set(floatValues(editor.constant(f.b)!), j * hidden);
    inputs[j] = f.y;
    editor.removeNode(f.add);
    editor.dropInitializerIfUnused(f.b);
  });
  return bias;
}

/**
 * Rewrites each multi-head attention core of a graph into one com.microsoft MultiHeadAttention
 * over the [batch, sequence, hidden] query, key and value. Self- and cross-attention alike.
 */
export function fuseAttention(editor: GraphEditor): FusionOutcome {
  const notices: string[] = [];
  let fused = 0;
  const ranks = tensorRanks(editor);
  // Candidates: a MatMul of two Transposes (Q · Kᵀ).
  const candidates = editor.nodes.filter((n) => isOp(n, 'MatMul') && isOp(editor.producer(n.input![0]), 'Transpose') && isOp(editor.producer(n.input![1]), 'Transpose'));
  for (const scores of candidates) {
    const m = matchAttention(editor, scores, ranks);
    if (typeof m === 'string') {
      notices.push(`attention at '${scores.name || scores.output![0]}' stays unfused: ${m}`);
      continue;
    }
    const attribute: AttributeProto[] = [{ name: 'num_heads', type: 2, i: m.q.heads }];
    // MultiHeadAttention's default scale is 1/√H; anything else is said explicitly.
    if (Math.abs(m.scale * Math.sqrt(m.q.headSize) - 1) > 1e-6) attribute.push({ name: 'scale', type: 1, f: m.scale });
    const inputs = [m.q.source, m.k.source, m.v.source];
    const bias = takeBiases(editor, m, inputs, ranks);
    if (bias) inputs.push(editor.addInitializer(floatTensor(editor.fresh(`${scores.name || 'attention'}.qkv_bias`), [bias.length], bias)));
    editor.insertBefore(m.nodes[0], { op_type: 'MultiHeadAttention', domain: 'com.microsoft', name: editor.fresh(`${scores.name || 'attention'}.MultiHeadAttention`), input: inputs, output: [m.output], attribute });
    for (const n of m.nodes) {
      editor.removeNode(n);
      for (const i of n.input!.slice(1)) editor.dropInitializerIfUnused(i);
    }
    fused++;
  }
  if (fused > 0) {
    useContribOps(editor);
    // The new node sits where the query's split was; the key and value may come later.
    editor.sortTopologically();
  }
  return { fused, notices };
}
