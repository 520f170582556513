// What `edge-infer inspect` shows of a model: its operators, parameters and size.
import type { GraphProto, ModelProto } from './schema';
import { AttributeType, toNumber } from './schema';
import { tensorSize } from './tensor';

export interface GraphStats {
  /** Operator type (with domain prefix when not the default) → count, subgraphs included. */
  operators: Record<string, number>;
  /** Elements in initializers and Constant tensors: the model's parameters. */
  parameters: number;
  /** Bytes of initializer data. */
  weightBytes: number;
  nodes: number;
}

function walk(graph: GraphProto, stats: GraphStats): void {
  for (const t of graph.initializer ?? []) {
    stats.parameters += tensorSize(t);
    stats.weightBytes += t.raw_data?.length ?? 0;
  }
  for (const node of graph.node ?? []) {
    stats.nodes++;
    const domain = node.domain && node.domain !== 'ai.onnx' ? `${node.domain}.` : '';
    const op = `${domain}${node.op_type ?? '?'}`;
    stats.operators[op] = (stats.operators[op] ?? 0) + 1;
    for (const a of node.attribute ?? []) {
      if (node.op_type === 'Constant' && a.type === AttributeType.TENSOR && a.t) stats.parameters += tensorSize(a.t);
      if (a.g) walk(a.g, stats);
      for (const g of a.graphs ?? []) walk(g, stats);
    }
  }
}

/** Operator histogram, parameter count and weight bytes of a model, subgraphs included. */
export function graphStats(model: ModelProto): GraphStats {
  const stats: GraphStats = { operators: {}, parameters: 0, weightBytes: 0, nodes: 0 };
  if (model.graph) walk(model.graph, stats);
  return stats;
}

/** The opsets a model imports, as "domain:version" with '' shown as ai.onnx. */
export function opsetList(model: ModelProto): Array<{ domain: string; version: number }> {
  return (model.opset_import ?? []).map((o) => ({ domain: o.domain || 'ai.onnx', version: toNumber(o.version) }));
}
