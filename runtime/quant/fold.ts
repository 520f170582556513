// Dequantizing constant weights once, at load: a low-bit file loaded `fast` runs at fp32 speed
// (the runtime sees plain float weights) while the file on disk stays small.
import { DataType, type ModelProto, floatTensor, floatValues, tensorDims, tensorValues } from '../onnx';
import { GraphEditor, cloneModel, intAttr } from './graph';
import { dequantize } from './weights';

/**
 * True when a node reads an activation through a DequantizeLinear: it belongs to a QDQ group
 * that onnxruntime runs as an integer kernel, and its weights must stay quantized for that.
 */
function inQdqGroup(editor: GraphEditor, tensor: string): boolean {
  return editor.consumers(tensor).some((n) => (n.input ?? []).some((i) => i !== tensor && !editor.initializers.has(i) && editor.producer(i)?.op_type === 'DequantizeLinear'));
}

/**
 * Replaces every DequantizeLinear of constant weights with the fp32 tensor it would produce,
 * except where the weight feeds an integer (QDQ) group. Returns the new model and how many
 * weights were folded.
 */
export function foldConstantDequantize(source: ModelProto): { model: ModelProto; folded: number } {
  const editor = new GraphEditor(cloneModel(source));
  let folded = 0;
  for (const node of [...editor.nodes]) {
    if (node.op_type !== 'DequantizeLinear' || (node.domain && node.domain !== 'ai.onnx')) continue;
    const [x, s, zp] = node.input ?? [];
    const codes = editor.initializers.get(x);
    const scale = editor.initializers.get(s);
    const zero = zp ? editor.initializers.get(zp) : undefined;
    if (!codes || !scale || (zp && !zero) || inQdqGroup(editor, node.output![0])) continue;
    const dims = tensorDims(codes);
    const values = dequantize(
      tensorValues(codes) as Int8Array | Uint8Array | Int32Array,
      codes.data_type as DataType,
      dims,
      floatValues(scale),
      tensorDims(scale),
      zero ? Array.from(tensorValues(zero) as ArrayLike<number>, Number) : undefined,
      intAttr(node, 'axis', 1),
      intAttr(node, 'block_size', 0) || undefined,
    );
    editor.removeNode(node);
    editor.setInitializer({ ...floatTensor(node.output![0], dims, values), name: node.output![0] });
    for (const name of [x, s, zp]) if (name) editor.dropInitializerIfUnused(name);
    folded++;
  }
  return { model: editor.model, folded };
}
