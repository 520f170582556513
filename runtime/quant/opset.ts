// Raising a model's opset, as quantizing needs: FP8 DequantizeLinear exists from opset 19 and
// block-wise scales from 21. Most operators keep their meaning across versions; the ones below
// moved attributes to inputs, and are rewritten so the graph means the same at the new version,
// in If / Loop / Scan bodies as in the main graph. One changed meaning in a way that cannot be
// rewritten without the model's shapes (GroupNormalization at 21), and is refused.
import { EdgeInferError } from '../errors';
import { type GraphProto, type NodeProto, floatTensor, int64Tensor, irVersionFor, opsetOf, setOpset, toNumber } from '../onnx';
import { type GraphEditor, attr, intAttr, intsAttr, setIntAttr, subgraphsOf } from './graph';

/** Reductions whose `axes` became an input: ReduceSum at opset 13, the others at 18. */
const AXES_TO_INPUT: Record<string, number> = {
  ReduceSum: 13,
  ReduceMean: 18,
  ReduceMax: 18,
  ReduceMin: 18,
  ReduceProd: 18,
  ReduceL1: 18,
  ReduceL2: 18,
  ReduceLogSum: 18,
  ReduceLogSumExp: 18,
  ReduceSumSquare: 18,
  Squeeze: 13,
  Unsqueeze: 13,
};

/** The model's default-domain opset. */
export function defaultOpset(editor: GraphEditor): number {
  const version = opsetOf(editor.model);
  if (version === undefined) throw new EdgeInferError('E_MODEL_UNSUPPORTED', 'the model imports no default ONNX opset');
  return version;
}

const isDefaultDomain = (node: NodeProto): boolean => !node.domain || node.domain === 'ai.onnx';

/** Every default-domain node of a graph and of the subgraphs inside it. */
function* allNodes(graph: GraphProto): Generator<NodeProto> {
  for (const node of graph.node ?? []) {
    if (isDefaultDomain(node)) yield node;
    for (const sub of subgraphsOf(node)) yield* allNodes(sub);
  }
}

/** Refuses, before anything is changed, a model whose meaning an upgrade would change. */
function checkUpgradable(editor: GraphEditor, from: number, target: number): void {
  for (const node of allNodes(editor.graph)) {
    // GroupNormalization-18 takes scale and bias per group; GroupNormalization-21 per channel.
    if (node.op_type === 'GroupNormalization' && from < 21 && target >= 21) {
      throw new EdgeInferError(
        'E_MODEL_UNSUPPORTED',
        `GroupNormalization '${node.name ?? ''}' takes scale and bias per group (opset ${from}); from opset 21 it takes them per channel, so the model cannot be raised to opset ${target} as it is (export it at opset 21 or later, or quantize without block-wise scales, which need opset 21)`,
      );
    }
  }
}

/** Rewrites the nodes of one graph (the main graph or a subgraph) for the new opset. */
function upgradeNodes(editor: GraphEditor, nodes: NodeProto[], from: number, target: number): void {
  const crosses = (at: number): boolean => from < at && target >= at;
  // A snapshot: the Softmax rewrite inserts nodes while we go.
  for (const node of [...nodes]) {
    for (const sub of subgraphsOf(node)) upgradeNodes(editor, (sub.node ??= []), from, target);
    if (!isDefaultDomain(node)) continue;
    const op = node.op_type ?? '';
    const base = node.name ?? op;
    const movedAt = AXES_TO_INPUT[op];
    // The constants that replace attributes are initializers of the main graph: a subgraph reads
    // them from the scope around it.
    if (movedAt !== undefined && crosses(movedAt)) {
      const axes = intsAttr(node, 'axes');
      node.attribute = (node.attribute ?? []).filter((a) => a.name !== 'axes');
      if (axes) node.input = [node.input![0], editor.addInitializer(int64Tensor(`${base}.axes`, [axes.length], axes))];
    }
    if (op === 'Split' && crosses(13)) {
      const split = intsAttr(node, 'split');
      node.attribute = (node.attribute ?? []).filter((a) => a.name !== 'split');
      if (split) node.input = [node.input![0], editor.addInitializer(int64Tensor(`${base}.split`, [split.length], split))];
    }
    // Dropout's ratio became an (optional) input at 12; left out, both mean 0.5.
    if (op === 'Dropout' && crosses(12)) {
      const ratio = attr(node, 'ratio');
      node.attribute = (node.attribute ?? []).filter((a) => a.name !== 'ratio');
      if (ratio) node.input = [node.input![0], editor.addInitializer(floatTensor(`${base}.ratio`, [], [ratio.f ?? 0.5]))];
    }
    // Before 13, Softmax (and LogSoftmax, Hardmax) flattened the input to 2-D at `axis` (default
    // 1) and normalized each row; from 13 it normalizes along `axis` alone. Flatten → op(-1) →
    // Reshape back keeps the old meaning for any rank.
    if ((op === 'Softmax' || op === 'LogSoftmax' || op === 'Hardmax') && crosses(13)) {
      const axis = intAttr(node, 'axis', 1);
      const x = node.input![0];
      const out = node.output![0];
      const flat = editor.fresh(`${x}_flat2d`);
      const normalized = editor.fresh(`${out}_2d`);
      const shape = editor.fresh(`${x}_shape`);
      const at = nodes.indexOf(node);
      nodes.splice(
        at,
        0,
        { op_type: 'Flatten', name: editor.fresh(`${base}_Flatten`), input: [x], output: [flat], attribute: [{ name: 'axis', type: 2, i: axis }] },
        { op_type: 'Shape', name: editor.fresh(`${base}_Shape`), input: [x], output: [shape] },
      );
      node.input = [flat];
      node.output = [normalized];
      setIntAttr(node, 'axis', -1);
      nodes.splice(nodes.indexOf(node) + 1, 0, { op_type: 'Reshape', name: editor.fresh(`${base}_Reshape`), input: [normalized, shape], output: [out] });
    }
    // From 18 a Split without sizes must say how many outputs it makes.
    if (op === 'Split' && crosses(18) && (node.input ?? []).filter(Boolean).length < 2 && !attr(node, 'num_outputs')) {
      setIntAttr(node, 'num_outputs', node.output?.length ?? 1);
    }
  }
}

/**
 * Raises the default opset to `target` (no-op when already there), rewriting the operators whose
 * signature changed on the way, subgraphs included. Models older than opset 11 are refused: too
 * much changed since.
 */
export function upgradeOpset(editor: GraphEditor, target: number): void {
  const from = defaultOpset(editor);
  if (from >= target) return;
  if (from < 11) throw new EdgeInferError('E_MODEL_UNSUPPORTED', `the model is at opset ${from}; edge-infer upgrades models from opset 11 on (convert it with onnx's version converter first)`);
  checkUpgradable(editor, from, target);
  upgradeNodes(editor, editor.nodes, from, target);
  setOpset(editor.model, target);
  editor.model.ir_version = Math.max(toNumber(editor.model.ir_version), irVersionFor(target));
}
