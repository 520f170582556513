// Raising a model's opset, as quantizing needs: FP8 DequantizeLinear exists from opset 19 and
// block-wise scales from 21. Most operators keep their meaning across versions; the ones below
// moved attributes to inputs, and are rewritten so the graph means the same at the new version.
import { EdgeInferError } from '../errors';
import { irVersionFor, int64Tensor, toNumber } from '../onnx';
import { type GraphEditor, attr, intsAttr, setIntAttr } from './graph';

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
  for (const node of editor.nodes) {
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
    // From 18 a Split without sizes must say how many outputs it makes.
    if (op === 'Split' && target >= 18 && from < 18 && (node.input ?? []).filter(Boolean).length < 2 && !attr(node, 'num_outputs')) {
      setIntAttr(node, 'num_outputs', node.output?.length ?? 1);
    }
  }
  const entry = (editor.model.opset_import ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')!;
  entry.version = target;
  editor.model.ir_version = Math.max(toNumber(editor.model.ir_version), irVersionFor(target));
}
