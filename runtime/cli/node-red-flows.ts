// The example flows (flows/*.json) as one flows file for the Node-RED that `edge-infer run` starts
// beside the gateway. Each example carries its own copy of the shared config nodes (the plant's
// broker, the edge-infer runtime) so that it imports on its own; merged, one copy of each stays.
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { EdgeInferError } from '../errors';
import { packageRoot } from '../paths';

export interface FlowNode {
  id: string;
  type: string;
  [key: string]: unknown;
}

/** A flows file by name (the name is for errors). */
export interface NamedFlow {
  name: string;
  nodes: FlowNode[];
}

/**
 * Environment variables the merged flows' broker node reads (Node-RED replaces a property that is
 * exactly `${NAME}` by the variable's value): the flows file is written once and kept, while the
 * embedded broker's port may differ between runs.
 */
export const BROKER_HOST_ENV = 'EDGE_INFER_BROKER_HOST';
export const BROKER_PORT_ENV = 'EDGE_INFER_BROKER_PORT';

/**
 * One flows file from several: nodes that appear in more than one (the shared config nodes) are
 * kept once when their copies are the same; two different nodes under one id are an error naming
 * the id and both files, since Node-RED would keep one of them silently.
 */
export function mergeFlows(flows: readonly NamedFlow[]): FlowNode[] {
  const seen = new Map<string, { from: string; json: string }>();
  const merged: FlowNode[] = [];
  for (const flow of flows) {
    if (!Array.isArray(flow.nodes)) throw new EdgeInferError('E_ARGUMENT', `${flow.name}: expected a flows file (a JSON array of nodes)`);
    for (const node of flow.nodes) {
      if (typeof node?.id !== 'string' || typeof node.type !== 'string') throw new EdgeInferError('E_ARGUMENT', `${flow.name}: every node needs a string id and type, got ${JSON.stringify(node).slice(0, 80)}`);
      const json = JSON.stringify(node);
      const earlier = seen.get(node.id);
      if (earlier) {
        if (earlier.json !== json) throw new EdgeInferError('E_ARGUMENT', `node id '${node.id}' is used by different nodes in ${earlier.from} and ${flow.name}`);
        continue;
      }
      seen.set(node.id, { from: flow.name, json });
      merged.push(node);
    }
  }
  return merged;
}

/** Every `mqtt-broker` config node pointed at the broker named by BROKER_HOST_ENV and BROKER_PORT_ENV. */
export function onEnvBroker(nodes: readonly FlowNode[]): FlowNode[] {
  return nodes.map((n) => (n.type === 'mqtt-broker' ? { ...n, broker: `\${${BROKER_HOST_ENV}}`, port: `\${${BROKER_PORT_ENV}}` } : n));
}

/** The folder of the example flows. */
export function exampleFlowsDir(): string {
  return path.join(packageRoot(), 'flows');
}

/** The example flows of `dir`, merged and on the broker of the environment, in file-name order. */
export function exampleFlows(dir = exampleFlowsDir()): FlowNode[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  if (files.length === 0) throw new EdgeInferError('E_ARGUMENT', `${dir}: no example flows (*.json) here`);
  const flows = files.map((f): NamedFlow => {
    const file = path.join(dir, f);
    try {
      return { name: file, nodes: JSON.parse(readFileSync(file, 'utf8')) as FlowNode[] };
    } catch (err) {
      throw new EdgeInferError('E_ARGUMENT', `${file}: not JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  return onEnvBroker(mergeFlows(flows));
}
