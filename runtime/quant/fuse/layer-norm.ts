// LayerNormalization over the last axis, spelled out in elementwise operators:
//   d = x − mean(x);  y = d · 1/√(mean(d·d) + ε) · γ + β
// onnxruntime's LayerNormalization kernel runs each row in scalar code on WASM (about 390 µs for
// a [32, 16, 128] tensor), while its ReduceMean, Sub and Mul kernels are vectorized: the same
// normalization takes about 150 µs as ten small operators (BENCHMARKS.md, "Transformer int8").
// onnxruntime's own LayerNormFusion looks for Pow and Div, so it does not put the kernel back.
// Where only MatMuls by constant weights read the result, γ and β go into their weights and
// biases (W' = diag(γ)·W, b' = b + β·W) and the two last operators go too.
import { DataType, type NodeProto, type TensorProto, floatTensor, floatValues, int64Tensor, tensorDims } from '../../onnx';
import { type GraphEditor, attr, intAttr } from '../graph';
import { defaultOpset } from '../opset';
import { type FusionOutcome, isOp, soleReader } from './common';
import { tensorRanks } from './ranks';

/** A float constant of shape [n] as values, or undefined. */
function vector(editor: GraphEditor, name: string | undefined, n: number): Float32Array | undefined {
  const t = name ? editor.constant(name) : undefined;
  const dims = t ? tensorDims(t) : [];
  return t && t.data_type === DataType.FLOAT && dims.length === 1 && dims[0] === n ? floatValues(t) : undefined;
}

interface Fold {
  matmul: NodeProto;
  weight: TensorProto;
  /** The bias Add after the MatMul and its bias's values, when there is one. */
  bias?: { add: NodeProto; name: string; values: Float32Array };
}

/**
 * The MatMuls that γ and β can go into: every reader of `y` is a MatMul by a constant float
 * [H, N] weight that nothing else reads, followed (if β is not all zero) by an Add of a [N] bias
 * that nothing else reads. Undefined when any reader is something else.
 */
function foldTargets(editor: GraphEditor, y: string, h: number, betaZero: boolean): Fold[] | undefined {
  if (editor.isGraphOutput(y)) return undefined;
  const readers = editor.consumers(y);
  const folds: Fold[] = [];
  for (const matmul of readers) {
    if (!isOp(matmul, 'MatMul') || matmul.input![0] !== y || matmul.input![1] === y) return undefined;
    const wName = matmul.input![1];
    const weight = editor.initializers.get(wName);
    const dims = weight ? tensorDims(weight) : [];
    if (!weight || weight.data_type !== DataType.FLOAT || dims.length !== 2 || dims[0] !== h || editor.consumers(wName).length !== 1) return undefined;
    const add = soleReader(editor, matmul.output![0]);
    const bName = isOp(add, 'Add') ? add.input!.find((i) => i !== matmul.output![0]) : undefined;
    const values = bName && editor.initializers.has(bName) && editor.consumers(bName).length === 1 ? vector(editor, bName, dims[1]) : undefined;
    if (values) folds.push({ matmul, weight, bias: { add: add!, name: bName!, values } });
    else if (betaZero) folds.push({ matmul, weight });
    else return undefined;
  }
  return folds.length ? folds : undefined;
}

/** W' = diag(γ)·W and b' = b + β·W, in place of the old constants (same names). */
function fold(editor: GraphEditor, f: Fold, gamma: Float32Array, beta: Float32Array | undefined): void {
  const [h, n] = tensorDims(f.weight);
  const w = floatValues(f.weight);
  const scaled = new Float32Array(w.length);
  for (let k = 0; k < h; k++) for (let j = 0; j < n; j++) scaled[k * n + j] = gamma[k] * w[k * n + j];
  editor.setInitializer(floatTensor(f.weight.name!, [h, n], scaled) as TensorProto & { name: string });
  if (!f.bias || !beta) return;
  // In float64, then once to float32: the shift of every output column.
  const b = Float64Array.from(f.bias.values);
  for (let k = 0; k < h; k++) for (let j = 0; j < n; j++) b[j] += beta[k] * w[k * n + j];
  editor.setInitializer(floatTensor(f.bias.name, [n], b) as TensorProto & { name: string });
}

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
    // γ and β into the MatMuls that read y, when they all can take them.
    const gammaDims = editor.constant(gamma) ? tensorDims(editor.constant(gamma)!) : [];
    const g = gammaDims.length === 1 ? vector(editor, gamma, gammaDims[0]) : undefined;
    const b = beta ? vector(editor, beta, gammaDims[0]) : undefined;
    const targets = g && (!beta || b) ? foldTargets(editor, y, gammaDims[0], !b || b.every((v) => v === 0)) : undefined;
    const nodes: NodeProto[] = [
      reduce(x, mean),
      { op_type: 'Sub', input: [x, mean], output: [centered] },
      { op_type: 'Mul', input: [centered, centered], output: [squared] },
      reduce(squared, variance),
      { op_type: 'Add', input: [variance, eps], output: [shifted] },
      { op_type: 'Sqrt', input: [shifted], output: [deviation] },
      { op_type: 'Reciprocal', input: [deviation], output: [inverse] },
      ...(targets
        ? [{ op_type: 'Mul', input: [centered, inverse], output: [y] }]
        : [
            { op_type: 'Mul', input: [centered, inverse], output: [normalized] },
            { op_type: 'Mul', input: [normalized, gamma], output: [beta ? scaled : y] },
            ...(beta ? [{ op_type: 'Add', input: [scaled, beta], output: [y] }] : []),
          ]),
    ];
    for (const n of nodes) editor.insertBefore(ln, { ...n, name: n.name ?? editor.fresh(`${base}.${n.op_type}`) });
    editor.removeNode(ln);
    if (targets) {
      for (const t of targets) fold(editor, t, g!, b);
      editor.dropInitializerIfUnused(gamma);
      if (beta) editor.dropInitializerIfUnused(beta);
    }
    fused++;
  }
  return { fused, notices };
}
