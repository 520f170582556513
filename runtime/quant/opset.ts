// Raising a model's opset, as quantizing needs: FP8 DequantizeLinear exists from opset 19 and
// block-wise scales from 21. Most operators keep their meaning across versions; the ones below
// moved attributes to inputs, and are rewritten so the graph means the same at the new version.
import { EdgeInferError } from '../errors';
import { irVersionFor, int64Tensor, toNumber } from '../onnx';
import { type GraphEditor, attr, intAttr, intsAttr, setIntAttr } from './graph';

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
  const entry = (editor.model.opset_import ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  if (!entry) throw new EdgeInferError('E_MODEL_UNSUPPORTED', 'the model imports no default ONNX opset');
  return toNumber(entry.version);
}

/**
 * Raises the default opset to `target` (no-op when already there), rewriting the operators whose
 * signature changed on the way. Models older than opset 11 are refused: too much changed since.
 */
export function upgradeOpset(editor: GraphEditor, target: number): void {
  const from = defaultOpset(editor);
  if (from >= target) return;
  if (from < 11) throw new EdgeInferError('E_MODEL_UNSUPPORTED', `the model is at opset ${from}; edge-infer upgrades models from opset 11 on (convert it with onnx's version converter first)`);
  // A snapshot: the Softmax rewrite inserts nodes while we go.
  for (const node of [...editor.nodes]) {
    if (node.domain && node.domain !== 'ai.onnx') continue;
    const op = node.op_type ?? '';
    const movedAt = AXES_TO_INPUT[op];
    if (movedAt !== undefined && from < movedAt && target >= movedAt) {
      const axes = intsAttr(node, 'axes');
      node.attribute = (node.attribute ?? []).filter((a) => a.name !== 'axes');
      if (axes) node.input = [node.input![0], editor.addInitializer(int64Tensor(`${node.name ?? op}.axes`, [axes.length], axes))];
    }
    if (op === 'Split' && target >= 13 && from < 13) {
      const split = intsAttr(node, 'split');
      node.attribute = (node.attribute ?? []).filter((a) => a.name !== 'split');
      if (split) node.input = [node.input![0], editor.addInitializer(int64Tensor(`${node.name ?? op}.split`, [split.length], split))];
    }
    // Before 13, Softmax (and LogSoftmax, Hardmax) flattened the input to 2-D at `axis` (default
    // 1) and normalized each row; from 13 it normalizes along `axis` alone. Flatten → op(-1) →
    // Reshape back keeps the old meaning for any rank.
    if ((op === 'Softmax' || op === 'LogSoftmax' || op === 'Hardmax') && from < 13 && target >= 13) {
      const axis = intAttr(node, 'axis', 1);
      const x = node.input![0];
      const out = node.output![0];
      const flat = editor.fresh(`${x}_flat2d`);
      const normalized = editor.fresh(`${out}_2d`);
      const shape = editor.fresh(`${x}_shape`);
      editor.insertBefore(node, { op_type: 'Flatten', name: editor.fresh(`${node.name ?? op}_Flatten`), input: [x], output: [flat], attribute: [{ name: 'axis', type: 2, i: axis }] });
      editor.insertBefore(node, { op_type: 'Shape', name: editor.fresh(`${node.name ?? op}_Shape`), input: [x], output: [shape] });
      node.input = [flat];
      node.output = [normalized];
      setIntAttr(node, 'axis', -1);
      const i = editor.nodes.indexOf(node);
      editor.nodes.splice(i + 1, 0, { op_type: 'Reshape', name: editor.fresh(`${node.name ?? op}_Reshape`), input: [normalized, shape], output: [out] });
    }
    // From 18 a Split without sizes must say how many outputs it makes.
    if (op === 'Split' && target >= 18 && from < 18 && (node.input ?? []).filter(Boolean).length < 2 && !attr(node, 'num_outputs')) {
      setIntAttr(node, 'num_outputs', node.output?.length ?? 1);
    }
  }
  const entry = (editor.model.opset_import ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')!;
  entry.version = target;
  editor.model.ir_version = Math.max(toNumber(editor.model.ir_version), irVersionFor(target));
}
