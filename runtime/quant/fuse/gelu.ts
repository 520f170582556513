// GELU in its exact, Erf-based form (x · ½ · (1 + erf(x / √2)), as PyTorch exports nn.GELU) with
// the bias Add in front, as onnxruntime's com.microsoft FastGelu: the tanh approximation of GELU,
// bias included. onnxruntime fuses the exact form into BiasGelu by itself, but on WASM its Erf
// costs twice FastGelu's tanh (BENCHMARKS.md, "Transformer int8"). The two differ by at most
// about 5e-4 per value: far below int8's own error, which is why only the int8 path uses it.
import { DataType, type NodeProto, tensorDims } from '../../onnx';
import type { GraphEditor } from '../graph';
import { type FusionOutcome, MS_DOMAIN, constantNumbers, isOp, soleReader, useContribOps } from './common';

const near = (a: number | undefined, b: number): boolean => a !== undefined && Math.abs(a - b) <= 1e-4 * Math.abs(b);

/** The one constant operand of a binary node (the other being `value`), or undefined. */
function scalarBeside(editor: GraphEditor, node: NodeProto, value: string): number | undefined {
  const [a, b] = node.input ?? [];
  const other = a === value ? b : b === value ? a : undefined;
  const c = other !== undefined ? constantNumbers(editor, other) : undefined;
  return c?.length === 1 ? c[0] : undefined;
}

interface Match {
  /** GELU's input. */
  x: string;
  nodes: NodeProto[];
  output: string;
}

/** The exact GELU that starts at this Erf, or the reason it is not one. */
function matchGelu(editor: GraphEditor, erf: NodeProto): Match | string {
  const scaled = editor.producer(erf.input![0]);
  if (!scaled || soleReader(editor, scaled.output![0]) !== erf) return 'its input is not x / √2 read only by it';
  const x = scaled.input!.find((i) => !editor.constant(i));
  if (!x || !((isOp(scaled, 'Div') && scaled.input![0] === x && near(scalarBeside(editor, scaled, x), Math.SQRT2)) || (isOp(scaled, 'Mul') && near(scalarBeside(editor, scaled, x), Math.SQRT1_2)))) return 'its input is not x / √2';
  const onePlus = soleReader(editor, erf.output![0]);
  if (!isOp(onePlus, 'Add') || !near(scalarBeside(editor, onePlus, erf.output![0]), 1)) return 'no 1 + erf(…) follows it';
  const nodes = [scaled, erf, onePlus];
  const next = soleReader(editor, onePlus.output![0]);
  if (!isOp(next, 'Mul')) return 'no Mul follows 1 + erf(…)';
  const partner = next.input!.find((i) => i !== onePlus.output![0]);
  // Either (x · (1 + erf)) · ½, or (x · ½) · (1 + erf).
  if (partner === x) {
    const half = soleReader(editor, next.output![0]);
    if (!isOp(half, 'Mul') || !near(scalarBeside(editor, half, next.output![0]), 0.5)) return 'x · (1 + erf(…)) is not halved';
    return { x, nodes: [...nodes, next, half], output: half.output![0] };
  }
  const halved = partner ? editor.producer(partner) : undefined;
  if (isOp(halved, 'Mul') && halved.input!.includes(x) && near(scalarBeside(editor, halved, x), 0.5) && soleReader(editor, partner!) === next) return { x, nodes: [...nodes, halved, next], output: next.output![0] };
  return '1 + erf(…) does not multiply x / 2';
}

/**
 * Rewrites each exact GELU into com.microsoft FastGelu, taking in a bias Add in front of it
 * (a constant of one value per feature) when nothing else reads the sum.
 */
export function fuseFastGelu(editor: GraphEditor): FusionOutcome {
  const notices: string[] = [];
  let fused = 0;
  for (const erf of editor.nodes.filter((n) => isOp(n, 'Erf'))) {
    const m = matchGelu(editor, erf);
    if (typeof m === 'string') {
      notices.push(`Erf '${erf.name || erf.output![0]}' stays: ${m}`);
      continue;
    }
    const inputs = [m.x];
    const nodes = [...m.nodes];
    // x = y + b with b a 1-D constant: FastGelu adds it itself. x is read by two GELU nodes.
    const add = editor.producer(m.x);
    const readers = editor.consumers(m.x);
    if (isOp(add, 'Add') && !editor.isGraphOutput(m.x) && readers.every((r) => nodes.includes(r))) {
      const bias = add.input!.find((i) => editor.constant(i));
      const y = add.input!.find((i) => i !== bias);
      const b = bias ? editor.constant(bias) : undefined;
      // FastGelu's bias must have the last dimension's length: known when y comes from a MatMul by a constant [K, N] weight.
      const producer = y ? editor.producer(y) : undefined;
      const w = isOp(producer, 'MatMul') ? editor.constant(producer.input![1]) : undefined;
      const columns = w && tensorDims(w).length === 2 ? tensorDims(w)[1] : undefined;
      if (bias && y && b && b.data_type === DataType.FLOAT && tensorDims(b).length === 1 && tensorDims(b)[0] === columns) {
        inputs.splice(0, 1, y, bias);
        nodes.unshift(add);
      }
    }
    editor.insertBefore(nodes[0], { op_type: 'FastGelu', domain: MS_DOMAIN, name: editor.fresh(`${erf.name || 'gelu'}.FastGelu`), input: inputs, output: [m.output] });
    for (const n of nodes) {
      editor.removeNode(n);
      for (const i of n.input!) if (editor.initializers.has(i) && !inputs.includes(i)) editor.dropInitializerIfUnused(i);
    }
    fused++;
  }
  if (fused > 0) useContribOps(editor);
  return { fused, notices };
}
