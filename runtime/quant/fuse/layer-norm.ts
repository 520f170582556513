// LayerNormalization over the last axis, spelled out in elementwise operators:
//   d = x − mean(x);  y = d · 1/√(mean(d·d) + ε) · γ + β
// onnxruntime's LayerNormalization kernel runs each row in scalar code on WASM (about 390 µs for
// a [32, 16, 128] tensor), while its ReduceMean, Sub and Mul kernels are vectorized: the same
// normalization takes about 150 µs as ten small operators (BENCHMARKS.md, "Transformer int8").
// onnxruntime's own LayerNormFusion looks for Pow and Div, so it does not put the kernel back.
import { DataType, type NodeProto, floatTensor, int64Tensor } from '../../onnx';
import { type GraphEditor, attr, intAttr } from '../graph';
import { defaultOpset } from '../opset';
import { type FusionOutcome, isOp } from './common';
import { tensorRanks } from './ranks';

/** Rewrites every float LayerNormalization over the last axis whose statistics nothing reads. */
export function expandLayerNorm(editor: GraphEditor): FusionOutcome {
  const notices: string[] = [];
  let fused = 0;
  const types = editor.elementTypes();
  const ranks = tensorRanks(editor);
  // ReduceMean takes its axes as an input from opset 18, as an attribute before.
  const axesAsInput = defaultOpset(editor) >= 18;
  let axes: string | undefined;
  for (const ln of editor.nodes.filter((n) => isOp(n, 'LayerNormalization'))) {
    const name = ln.name || ln.output![0];
    const [x, gamma, beta] = ln.input ?? [];
    const axis = intAttr(ln, 'axis', -1);
    const rank = ranks.get(x);
    if (axis !== -1 && !(rank !== undefined && axis === rank - 1)) {
      notices.push(`LayerNormalization '${name}' stays: it normalizes axis ${axis}, not the last`);
      continue;
    }
    if (types.get(x) !== DataType.FLOAT) {
      notices.push(`LayerNormalization '${name}' stays: its input is not known to be float32`);
      continue;
    }
    if ((ln.output ?? []).slice(1).some((o) => o && (editor.consumers(o).length > 0 || editor.isGraphOutput(o)))) {
      notices.push(`LayerNormalization '${name}' stays: its mean or inverse deviation is read`);
      continue;
    }
    if (axesAsInput) axes ??= editor.addInitializer(int64Tensor('layer_norm.axes', [1], [-1]));
    const base = ln.name || 'layer_norm';
    const out = (suffix: string): string => editor.fresh(`${base}.${suffix}`);
    const eps = editor.addInitializer(floatTensor(`${base}.epsilon`, [], [attr(ln, 'epsilon')?.f ?? 1e-5]));
    const reduce = (input: string, output: string): NodeProto => ({
      op_type: 'ReduceMean',
      name: editor.fresh(`${base}.ReduceMean`),
      input: axesAsInput ? [input, axes!] : [input],
      output: [output],
      attribute: [...(axesAsInput ? [] : [{ name: 'axes', type: 7, ints: [-1] }]), { name: 'keepdims', type: 2, i: 1 }],
    });
    const [mean, centered, squared, variance, shifted, deviation, inverse, normalized, scaled] = ['mean', 'centered', 'squared', 'variance', 'shifted', 'deviation', 'inverse', 'normalized', 'scaled'].map(out);
    const y = ln.output![0];
    const nodes: NodeProto[] = [
      reduce(x, mean),
      { op_type: 'Sub', input: [x, mean], output: [centered] },
      { op_type: 'Mul', input: [centered, centered], output: [squared] },
      reduce(squared, variance),
      { op_type: 'Add', input: [variance, eps], output: [shifted] },
      { op_type: 'Sqrt', input: [shifted], output: [deviation] },
      { op_type: 'Reciprocal', input: [deviation], output: [inverse] },
      { op_type: 'Mul', input: [centered, inverse], output: [normalized] },
      { op_type: 'Mul', input: [normalized, gamma], output: [beta ? scaled : y] },
      ...(beta ? [{ op_type: 'Add', input: [scaled, beta], output: [y] }] : []),
    ];
    for (const n of nodes) editor.insertBefore(ln, { ...n, name: n.name ?? editor.fresh(`${base}.${n.op_type}`) });
    editor.removeNode(ln);
    fused++;
  }
  return { fused, notices };
}
