// What `edge-infer inspect` shows of a model: its operators, parameters and size.
import type { GraphProto, ModelProto, TensorProto } from './schema';
import { AttributeType, toNumber } from './schema';
import { elementBytes, tensorSize } from './tensor';

export interface GraphStats {
  /** Operator type (with domain prefix when not the default) → count, subgraphs included. */
  operators: Record<string, number>;
  /** Elements in initializers and Constant tensors: the model's parameters. */
  parameters: number;
  /** Bytes of initializer data (elements × their width, whichever field holds them), subgraphs included. */
  weightBytes: number;
  nodes: number;
}

/**
 * The bytes a tensor's values take at their element width, wherever the file keeps them: raw_data,
 * or the typed fields (float_data, int32_data, ...) that older exporters write. Types without a
 * fixed width (strings, 4-bit) count as stored.
 */
function tensorBytes(t: TensorProto): number {
  const width = elementBytes(t.data_type ?? 0);
  if (width > 0) return tensorSize(t) * width;
  if (t.raw_data?.length) return t.raw_data.length;
  return (t.string_data ?? []).reduce((n, s) => n + s.length, 0);
}

function walk(graph: GraphProto, stats: GraphStats): void {
  for (const t of graph.initializer ?? []) {
    stats.parameters += tensorSize(t);
    stats.weightBytes += tensorBytes(t);
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
