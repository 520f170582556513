// Short names for the tensors that flow between a quantized model's nodes. Exporters name each
// one after its node's path ("/layers.0/self_attn/MatMul_output_0") and the file repeats the name
// at every use: 6 kB of an 89 kB FP8 transformer, more than its per-channel scales and position
// embedding together. Node names, graph inputs and outputs and large initializers keep theirs:
// onnxruntime's messages and profiles name nodes, feeds and cards name inputs and outputs, and a
// stored weight's name (`layers.0.linear1.weight.q`) says which layer it is. Everything else is
// renamed: what a DequantizeLinear or a Cast makes of a stored constant (its stored name already
// says what it is), and small constants (scales, zero points, shapes, a literal 0.5), whose names
// say nothing a reader needs; a static int8 transformer has a hundred of them.
import { type ModelProto, tensorSize } from '../onnx';
import { subgraphsOf } from './graph';

/** Initializers with fewer values than this are small constants, whose names are shortened. */
export const SMALL_CONSTANT = 64;

/**
 * Renames every tensor that is neither a graph input, output nor initializer of SMALL_CONSTANT
 * values or more to a short name no other tensor or node uses, in place; returns how many it
 * renamed. A graph with If, Loop or Scan bodies is left as it is: a body may read an outer
 * tensor by its name.
 */
export function shortenValueNames(model: ModelProto): number {
  const graph = model.graph;
  if (!graph) return 0;
  const nodes = graph.node ?? [];
  if (nodes.some((n) => subgraphsOf(n).length > 0)) return 0;
  const keep = new Set<string>();
  for (const v of [...(graph.input ?? []), ...(graph.output ?? [])]) if (v.name) keep.add(v.name);
  const small = (graph.initializer ?? []).filter((t) => t.name && !keep.has(t.name) && tensorSize(t) < SMALL_CONSTANT);
  const smallSet = new Set(small);
  for (const t of graph.initializer ?? []) if (t.name && !smallSet.has(t)) keep.add(t.name);
  const taken = new Set<string>(keep);
  for (const n of nodes) {
    if (n.name) taken.add(n.name);
    for (const o of n.output ?? []) taken.add(o);
  }
  const renamed = new Map<string, string>();
  let counter = 0;
  const short = (): string => {
    let name: string;
    do name = `t${(counter++).toString(36)}`;
    while (taken.has(name));
    return name;
  };
  const rename = (o: string): void => {
    // '' is an optional output left out, not a name.
    if (o === '' || keep.has(o) || renamed.has(o)) return;
    const name = short();
    if (name.length < o.length) renamed.set(o, name);
  };
  for (const t of small) rename(t.name!);
  for (const n of nodes) for (const o of n.output ?? []) rename(o);
  if (renamed.size === 0) return 0;
  const to = (x: string): string => renamed.get(x) ?? x;
  for (const n of nodes) {
    if (n.input) n.input = n.input.map(to);
    if (n.output) n.output = n.output.map(to);
  }
  for (const t of small) t.name = to(t.name!);
  for (const v of graph.value_info ?? []) if (v.name) v.name = to(v.name);
  return renamed.size;
}
