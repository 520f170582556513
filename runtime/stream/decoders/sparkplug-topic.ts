// Sparkplug B topics: spBv1.0/<group>/<message type>/<edge node>[/<device>], and the host
// applications' STATE topic (spBv1.0/STATE/<host> in 3.0, STATE/<host> in 2.2).
import { decodeError } from './fail';

export type SparkplugMessageType = 'NBIRTH' | 'NDEATH' | 'NDATA' | 'NCMD' | 'DBIRTH' | 'DDEATH' | 'DDATA' | 'DCMD' | 'STATE';

export type SparkplugTopic =
  | { type: 'STATE' }
  | { type: Exclude<SparkplugMessageType, 'STATE'>; group: string; edgeNode: string; device?: string };

const NODE_TYPES = new Set(['NBIRTH', 'NDEATH', 'NDATA', 'NCMD']);
const DEVICE_TYPES = new Set(['DBIRTH', 'DDEATH', 'DDATA', 'DCMD']);
const SHAPE = 'expected spBv1.0/<group>/<NBIRTH|NDEATH|NDATA|NCMD>/<edge node> or spBv1.0/<group>/<DBIRTH|DDEATH|DDATA|DCMD>/<edge node>/<device>';

export function parseSparkplugTopic(topic: string): SparkplugTopic {
  const parts = topic.split('/');
  if (parts[0] === 'STATE' || (parts[0] === 'spBv1.0' && parts[1] === 'STATE')) return { type: 'STATE' };
  if (parts[0] !== 'spBv1.0') throw decodeError(topic, 'E_INPUT_VALUE', `not a Sparkplug B topic (${SHAPE})`);
  const [, group, type, edgeNode, device] = parts;
  const isNode = NODE_TYPES.has(type);
  if (!isNode && !DEVICE_TYPES.has(type)) throw decodeError(topic, 'E_INPUT_VALUE', `unknown Sparkplug message type '${type ?? ''}' (${SHAPE})`);
  if (parts.length !== (isNode ? 4 : 5) || parts.some((p) => p === '')) {
    throw decodeError(topic, 'E_INPUT_VALUE', `a Sparkplug ${type} topic has ${isNode ? 4 : 5} non-empty levels, this one has ${parts.length} (${SHAPE})`);
  }
  return isNode ? { type: type as 'NDATA', group, edgeNode } : { type: type as 'DDATA', group, edgeNode, device };
}
