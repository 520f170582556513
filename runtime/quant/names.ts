// Short names for the tensors that flow between a quantized model's nodes. Exporters name each
// one after its node's path ("/layers.0/self_attn/MatMul_output_0") and the file repeats the name
// at every use: 6 kB of an 89 kB FP8 transformer, more than its per-channel scales and position
// embedding together. Node names, graph inputs and outputs and initializers keep theirs, and so
// do the outputs of nodes that read only initializers (a weight's DequantizeLinear, an fp16
// constant's Cast, which the quantizer gives the weight's own name): onnxruntime's messages and
// profiles name nodes, feeds and cards name inputs and outputs, and a weight's name says which
// layer it is.
import type { ModelProto } from '../onnx';
import { subgraphsOf } from './graph';

/**
 * Renames every tensor that is neither a graph input, output, initializer nor computed from
 * initializers alone to a short name no
 * other tensor or node uses, in place; returns how many it renamed. A graph with If, Loop or Scan
 * bodies is left as it is: a body may read an outer tensor by its name.
 */
export function shortenValueNames(model: ModelProto): number {
  const graph = model.graph;
  if (!graph) return 0;
  const nodes = graph.node ?? [];
  if (nodes.some((n) => subgraphsOf(n).length > 0)) return 0;
  const keep = new Set<string>();
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.initializer ?? [])]) if (v.name) keep.add(v.name);
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const taken = new Set<string>(keep);
  for (const n of nodes) {
    if (n.name) taken.add(n.name);
    for (const o of n.output ?? []) taken.add(o);
    if ((n.input ?? []).every((i) => i === '' || initializers.has(i))) for (const o of n.output ?? []) keep.add(o);
  }
  const renamed = new Map<string, string>();
  let counter = 0;
  const short = (): string => {
    let name: string;
    do name = `t${(counter++).toString(36)}`;
    while (taken.has(name));
    return name;
  };
  for (const n of nodes) {
    for (const o of n.output ?? []) {
      // '' is an optional output left out, not a name.
      if (o === '' || keep.has(o) || renamed.has(o)) continue;
      const name = short();
      if (name.length < o.length) renamed.set(o, name);
    }
  }
  if (renamed.size === 0) return 0;
  const to = (x: string): string => renamed.get(x) ?? x;
  for (const n of nodes) {
    if (n.input) n.input = n.input.map(to);
    if (n.output) n.output = n.output.map(to);
  }
  for (const v of graph.value_info ?? []) if (v.name) v.name = to(v.name);
  return renamed.size;
}
