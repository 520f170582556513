// Sparkplug B test payloads. Births go through sparkplug-payload's own encodePayload, as an edge
// node built on Eclipse Tahu would send them; DATA can also be written with the raw protobuf
// classes, to send what the spec recommends and encodePayload cannot: metrics with no datatype.
import * as sparkplug from 'sparkplug-payload';
import * as proto from 'sparkplug-payload/lib/sparkplugPayloadProto';
import type { UMetric, UPayload } from 'sparkplug-payload/lib/sparkplugbpayload';

const spB = sparkplug.get('spBv1.0');
if (!spB) throw new Error('sparkplug-payload has no spBv1.0');
export const { encodePayload, decodePayload } = spB;

const RawPayload = proto.org.eclipse.tahu.protobuf.Payload;

export const GROUP = 'plant';
export const NODE = 'gw-1';
export const DEVICE = 'pump-1';
export const topicOf = (type: string, device?: string): string => `spBv1.0/${GROUP}/${type}/${NODE}${device ? `/${device}` : ''}`;

/** The vibration metrics of the test device: name, alias, Sparkplug datatype. */
export const DEVICE_METRICS = [
  { name: 'Vibration/X', alias: 11, type: 'Float' },
  { name: 'Vibration/Y', alias: 12, type: 'Float' },
  { name: 'Vibration/Z', alias: 13, type: 'Float' },
] as const;

export const BIRTH_TIME = 1_700_000_000_000;

export function nbirth(opts: { bdSeq?: number; seq?: number; metrics?: UMetric[] } = {}): Uint8Array {
  return encodePayload({
    timestamp: BIRTH_TIME,
    seq: opts.seq ?? 0,
    metrics: [
      { name: 'bdSeq', type: 'UInt64', value: opts.bdSeq ?? 0 },
      { name: 'Node Control/Rebirth', type: 'Boolean', value: false },
      { name: 'Temperature', alias: 1, type: 'Double', value: 41.5 },
      { name: 'Running', alias: 2, type: 'Boolean', value: true },
      ...(opts.metrics ?? []),
    ],
  });
}

export function dbirth(seq: number, metrics: readonly { name: string; alias: number; type: string }[] = DEVICE_METRICS): Uint8Array {
  return encodePayload({
    timestamp: BIRTH_TIME,
    seq,
    metrics: metrics.map((m) => ({ name: m.name, alias: m.alias, type: m.type as UMetric['type'], value: 0 })),
  });
}

export function ndeath(bdSeq: number): Uint8Array {
  return encodePayload({ timestamp: BIRTH_TIME, metrics: [{ name: 'bdSeq', type: 'UInt64', value: bdSeq }] } as UPayload);
}

export interface RawDataMetric {
  alias?: number;
  name?: string;
  datatype?: number;
  timestamp?: number;
  floatValue?: number;
  doubleValue?: number;
  intValue?: number;
  longValue?: number;
  stringValue?: string;
  booleanValue?: boolean;
  isNull?: boolean;
  isHistorical?: boolean;
}

/** A DATA payload as the spec recommends it: aliases, no names, no datatypes. */
export function rawData(seq: number | undefined, metrics: RawDataMetric[], timestamp: number | undefined = BIRTH_TIME): Uint8Array {
  const p: Record<string, unknown> = { metrics };
  if (seq !== undefined) p.seq = seq;
  if (timestamp !== undefined) p.timestamp = timestamp;
  return RawPayload.encode(RawPayload.create(p)).finish();
}
