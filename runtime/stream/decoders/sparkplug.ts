// Sparkplug B payloads. Stateful per edge node (group/edge node): births declare metrics,
// DATA refers to them (by alias, mostly) and carries a seq that must run on by one, mod 256.
//
// Choices (see README.md): the device is <device> for D* messages and <edge node> for N*
// messages; BIRTHs return no samples (they restate current values on every rebirth, which would
// put repeated samples into windows); each DATA metric is one sample, grouped by timestamp.
import type { ResolvedSparkplugDecoderConfig } from './config';
import { decodeError, float32Problem, guardDecode } from './fail';
import { dataTypeName, decodeSparkplugProtobuf, has, isNumericType, numericValue, uint64Key, uint64ToNumber, type RawPayload, type UInt64 } from './sparkplug-proto';
import { advanceSeq, MetricBook, type EdgeNodeSession } from './sparkplug-session';
import { parseSparkplugTopic } from './sparkplug-topic';
import { checkTimestamp, showTimestamp, timestampProblem } from './timestamp';
import type { DecodeContext, DecodedSamples, Decoder } from './types';

const REBIRTH = "a rebirth is needed (NCMD 'Node Control/Rebirth' = true)";

export class SparkplugDecoder implements Decoder {
  readonly kind = 'sparkplug' as const;
  private readonly sessions = new Map<string, EdgeNodeSession>();
  /** Metric name → channel; undefined: every numeric metric under its own name. */
  private readonly channelOf: ReadonlyMap<string, string> | undefined;

  constructor(config: ResolvedSparkplugDecoderConfig) {
    this.channelOf = config.channels ? new Map(Object.entries(config.channels)) : undefined;
  }

  resync(): void {
    for (const session of this.sessions.values()) session.lastSeq = undefined;
  }

  decode(payload: Uint8Array, ctx: DecodeContext): DecodedSamples[] {
    return guardDecode(this.kind, payload, ctx, (bytes, topic) => {
      const t = parseSparkplugTopic(topic);
      // Commands go to the nodes and STATE concerns host applications: no samples either way.
      if (t.type === 'STATE' || t.type === 'NCMD' || t.type === 'DCMD') return [];
      const node = `${t.group}/${t.edgeNode}`;
      // Whatever this NBIRTH holds, the node restarted: what it declared before is void.
      if (t.type === 'NBIRTH') this.sessions.delete(node);
      if (bytes.byteLength === 0 && t.type !== 'NDEATH') throw decodeError(topic, 'E_INPUT_SHAPE', `${t.type} payload is empty, expected a Sparkplug B protobuf`);
      const p = this.parse(bytes, topic);
      if (t.type === 'NDEATH') {
        this.death(p, node);
        return [];
      }
      const seq = readSeq(p, topic, t.type);
      if (t.type === 'NBIRTH') {
        const book = MetricBook.fromBirth(p.metrics ?? [], topic, 'NBIRTH');
        this.sessions.set(node, { bdSeq: bdSeqOf(p), lastSeq: seq, node: book, devices: new Map() });
        return [];
      }
      const session = this.sessions.get(node);
      if (!session) throw decodeError(topic, 'E_INPUT_VALUE', `no NBIRTH seen from edge node '${node}' (the gateway started after it, or it died since): ${REBIRTH}`);
      const expected = advanceSeq(session, seq);
      const seqError = () => decodeError(topic, 'E_INPUT_VALUE', `seq out of order from edge node '${node}': expected ${expected}, received ${seq} (messages lost or reordered; continuing from ${seq})`);
      switch (t.type) {
        case 'DBIRTH': {
          // Recorded even when the seq is off: the definitions are good, and DATA needs them.
          session.devices.delete(t.device as string);
          session.devices.set(t.device as string, MetricBook.fromBirth(p.metrics ?? [], topic, 'DBIRTH'));
          if (expected !== undefined) throw seqError();
          return [];
        }
        case 'DDEATH':
          session.devices.delete(t.device as string);
          if (expected !== undefined) throw seqError();
          return [];
        case 'NDATA':
          if (expected !== undefined) throw seqError();
          return this.samples(p, session.node, { device: t.edgeNode, seq, topic, birth: `the NBIRTH of edge node '${node}'` });
        case 'DDATA': {
          if (expected !== undefined) throw seqError();
          const book = session.devices.get(t.device as string);
          if (!book) throw decodeError(topic, 'E_INPUT_VALUE', `no DBIRTH seen for device '${node}/${t.device}' (or it died since): ${REBIRTH}`);
          return this.samples(p, book, { device: t.device as string, seq, topic, birth: `the DBIRTH of device '${node}/${t.device}'` });
        }
      }
    });
  }

  private parse(bytes: Uint8Array, topic: string): RawPayload {
    try {
      return decodeSparkplugProtobuf(bytes);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw decodeError(topic, 'E_INPUT_VALUE', `payload is not a valid Sparkplug B protobuf (${bytes.byteLength} bytes): ${reason}`, err);
    }
  }

  /** An NDEATH ends the session it belongs to; a late one from an earlier connection (other bdSeq) is ignored. */
  private death(p: RawPayload, node: string): void {
    const session = this.sessions.get(node);
    if (session && session.bdSeq === bdSeqOf(p)) this.sessions.delete(node);
  }

  /** One DecodedSamples per timestamp; every numeric metric value is one sample of its channel. */
  private samples(p: RawPayload, book: MetricBook, at: { device: string; seq: number; topic: string; birth: string }): DecodedSamples[] {
    const { topic } = at;
    // Bounded where used: a payload timestamp that every metric overrides dates nothing.
    let payloadTime: number | undefined;
    const timeOfPayload = (): number | undefined => (payloadTime ??= has(p, 'timestamp') ? timestampOf(p.timestamp as UInt64, topic, 'payload timestamp') : undefined);
    const groups = new Map<number | undefined, Map<string, number>>();
    (p.metrics ?? []).forEach((m, i) => {
      const named = has(m, 'name') && m.name;
      if (!named && !has(m, 'alias')) throw decodeError(topic, 'E_INPUT_VALUE', `metric #${i} has neither a name nor an alias`);
      const def = book.lookup(m);
      if (!def) throw decodeError(topic, 'E_INPUT_VALUE', `${named ? `metric '${m.name}'` : `metric alias ${String(m.alias)}`} is not in ${at.birth}: ${REBIRTH}`);
      const datatype = has(m, 'datatype') ? m.datatype : def.datatype;
      const channel = this.channelOf ? this.channelOf.get(def.name) : def.name;
      // Booleans, strings, datasets... are not samples; historical values are backfill, which
      // would land out of order in live windows; a null value is no sample.
      if (channel === undefined || !isNumericType(datatype) || m.isHistorical || m.isNull) return;
      const v = numericValue(m, datatype);
      if (v === undefined) return;
      const metric = `metric '${def.name}'${has(m, 'alias') ? ` (alias ${String(m.alias)})` : ''}`;
      const label = `${metric}${channel === def.name ? '' : ` (channel '${channel}')`}`;
      if (typeof v === 'object') throw decodeError(topic, 'E_INPUT_VALUE', `${label} is ${dataTypeName(datatype)} but carries a ${v.wrongField.replace('Value', '')} value`);
      const problem = float32Problem(v);
      const time = has(m, 'timestamp') ? timestampOf(m.timestamp as UInt64, topic, `${metric} timestamp`) : timeOfPayload();
      if (problem !== undefined) throw decodeError(topic, 'E_INPUT_VALUE', `${label} is ${problem}${time === undefined ? '' : ` at timestamp ${time}`}, expected a finite number`);
      let group = groups.get(time);
      if (!group) groups.set(time, (group = new Map()));
      if (group.has(channel)) throw decodeError(topic, 'E_INPUT_SHAPE', `channel '${channel}' gets two values at timestamp ${time ?? '(none)'} (${label} repeats)`);
      group.set(channel, v);
    });
    const times = [...groups.keys()].sort((a, b) => (a ?? Infinity) - (b ?? Infinity));
    return times.map((time) => {
      const out: DecodedSamples = {
        device: at.device,
        channels: Object.fromEntries([...(groups.get(time) as Map<string, number>)].map(([c, v]) => [c, Float32Array.of(v)])),
        seq: at.seq,
      };
      if (time !== undefined) out.timestampMs = time;
      return out;
    });
  }
}

/** A uint64 timestamp (a Long, as protobufjs reads it) as ms, bounded; shown exactly when refused. */
function timestampOf(v: UInt64, topic: string, field: string): number {
  const ms = uint64ToNumber(v);
  return timestampProblem(ms) === undefined ? ms : checkTimestamp(ms, topic, field, showTimestamp(ms, uint64Key(v)));
}

function readSeq(p: RawPayload, topic: string, type: string): number {
  if (!has(p, 'seq')) throw decodeError(topic, 'E_INPUT_VALUE', `${type} payload has no seq (every Sparkplug message but NDEATH carries one)`);
  const seq = uint64ToNumber(p.seq as number);
  if (seq > 255) throw decodeError(topic, 'E_INPUT_VALUE', `${type} seq is ${seq}, expected 0..255`);
  return seq;
}

/** The bdSeq metric's value as text (NBIRTH and NDEATH carry it), or undefined. */
function bdSeqOf(p: RawPayload): string | undefined {
  const m = p.metrics?.find((x) => has(x, 'name') && x.name === 'bdSeq');
  if (!m) return undefined;
  const v = numericValue(m, has(m, 'datatype') ? (m.datatype as number) : 8);
  return typeof v === 'number' ? String(v) : undefined;
}
