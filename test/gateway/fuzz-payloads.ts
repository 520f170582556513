// Seeded payload generators for the gateway fuzz run, one per decoder: random bytes, truncations,
// bit flips and byte splices of valid payloads, and payloads built wrong on purpose (float32
// header fields, JSON of the wrong types, NaN text, huge arrays, deep nesting, prototype keys,
// Sparkplug metrics of every datatype with odd values and timestamps). Each generator yields the
// topic and the payload; the same seed gives the same sequence.
import * as protobuf from 'protobufjs';
import { Random } from '../../devices/random';
import { mutate } from '../helpers/mutate';
import { encodeFloat32Block } from '../../runtime/stream/decoders';
import { encodePayload, rawData, type RawDataMetric } from '../stream/decoders/sparkplug-helpers';

export interface FuzzMessage {
  topic: string;
  payload: Buffer;
}

const T0 = 1_700_000_000_000;
const Long = protobuf.util.Long as typeof import('long');

const pick = <T>(r: Random, xs: readonly T[]): T => xs[r.int(xs.length)];


const randomBytes = (r: Random, max: number): Buffer => Buffer.from(Array.from({ length: r.int(max) }, () => r.int(256)));
const truncate = (r: Random, b: Uint8Array): Buffer => Buffer.from(b.subarray(0, r.int(b.length)));

/** Doubles a header timestamp or a sample might hold that a decoder must weigh. */
const ODD_DOUBLES = [Number.NaN, Infinity, -Infinity, 1e16, -1e16, 1.7e18, 1.7e15, 8.64e15, 8.64e15 + 1, 1e15, -1e15, 0, -0, 5e-324, 1.7976931348623157e308, 3.5e38, -3.5e38];

/** float32 blocks with the edge-infer header, 3 channels, for plant/<device>/vibration. */
export function* float32Messages(seed: number, count: number): Generator<FuzzMessage> {
  const r = new Random(seed, 'gateway-fuzz', 'float32');
  const channels = ['vib_x', 'vib_y', 'vib_z'];
  const seqs = [0, 0, 0, 0];
  const valid = (device: number): Buffer => {
    const n = 16;
    const seq = seqs[device]++;
    const ch = (k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin((seq * n + i) * 0.3 + k) * 0.2);
    return encodeFloat32Block({ vib_x: ch(0), vib_y: ch(1), vib_z: ch(2) }, { channels, header: { seq, timestampMs: T0 + ((seq * n) / 5120) * 1000 } });
  };
  for (let i = 0; i < count; i++) {
    const device = r.int(4);
    const topic = `plant/p-${device}/vibration`;
    const kind = r.int(20);
    let payload: Buffer;
    if (kind < 2) payload = randomBytes(r, 400);
    else if (kind < 5) payload = truncate(r, valid(device));
    else if (kind < 11) payload = mutate(r, valid(device));
    else if (kind < 15) {
      // One header field or sample set to a value at an edge.
      payload = valid(device);
      const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
      const what = r.int(4);
      if (what === 0) dv.setFloat64(8, pick(r, ODD_DOUBLES), true);
      else if (what === 1) dv.setUint32(4, r.nextUint32(), true);
      else if (what === 2) dv.setUint32(0, r.nextUint32(), true);
      else dv.setFloat32(16 + 4 * r.int((payload.length - 16) / 4), pick(r, ODD_DOUBLES), true);
    } else payload = valid(device);
    yield { topic, payload };
  }
}

const KEYS = ['speed', 'ts', 'data', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'x', ''];
const NUMBERS = ['0', '-0', '1', '-1.5', '2.5', '1e400', '-1e400', '1e39', '3.4e38', '5e-324', '1700000000000', '1.7e18', '1e16', '-1e16', '9007199254740993', '1.', '.5', '01', '0x10', 'NaN', 'Infinity', '-Infinity'];
const STRINGS = ['"abc"', '"speed"', '"NaN"', '"Infinity"', '"\\u0000"', '"2024-05-01T00:00:00Z"', '"+275760-09-13T00:00:00.000Z"', '"é"', '"\\ud800"', '""', '"1.5"'];

function jsonish(r: Random, depth: number): string {
  const roll = r.int(10);
  if (depth <= 0 || roll < 4) return roll < 3 ? pick(r, NUMBERS) : pick(r, [...STRINGS, 'true', 'false', 'null']);
  const n = r.int(6);
  if (roll < 7) return `[${Array.from({ length: n }, () => jsonish(r, depth - 1)).join(',')}]`;
  return `{${Array.from({ length: n }, () => `"${pick(r, KEYS)}":${jsonish(r, depth - 1)}`).join(',')}}`;
}

/** JSON for machine/<device>/speed, read with channels ['speed'] and timestampField 'ts'. */
export function* jsonMessages(seed: number, count: number): Generator<FuzzMessage> {
  const r = new Random(seed, 'gateway-fuzz', 'json');
  let t = T0;
  const speeds = (n: number) => Array.from({ length: n }, () => Math.round(r.uniform(0, 3) * 100) / 100);
  const valid = (): string => {
    t += 1000;
    const n = 1 + r.int(8);
    switch (r.int(4)) {
      case 0:
        return JSON.stringify({ ts: t, speed: speeds(n) });
      case 1:
        return JSON.stringify({ ts: new Date(t).toISOString(), speed: speeds(1)[0] });
      case 2:
        return JSON.stringify({ speed: speeds(n), ts: t, other: 'x' });
      default:
        return JSON.stringify({ ts: t, speed: speeds(n).map((v) => v) });
    }
  };
  for (let i = 0; i < count; i++) {
    const topic = `machine/m-${r.int(4)}/speed`;
    const kind = r.int(1000);
    let text: string | Buffer;
    if (kind < 100) text = randomBytes(r, 200);
    else if (kind < 300) text = jsonish(r, 4);
    else if (kind < 350) text = `{"ts": ${t}, ${pick(r, ['"__proto__"', '"constructor"', '"prototype"'])}: ${jsonish(r, 2)}, "speed": ${jsonish(r, 2)}}`;
    else if (kind < 400) text = `{"ts": ${pick(r, [...NUMBERS, ...STRINGS, 'null', '[]', '{}'])}, "speed": [1, 2]}`;
    else if (kind < 450) text = `{"ts": ${t}, "speed": [1, ${pick(r, [...NUMBERS, ...STRINGS, 'null', 'true', '[1]', '{}'])}, 2]}`;
    else if (kind < 550) text = truncate(r, Buffer.from(valid()));
    else if (kind < 800) text = mutate(r, Buffer.from(valid()));
    else if (kind < 802) text = `{"ts": ${t}, "speed": [${'1,'.repeat(2000 + r.int(6000))}1]}`;
    else if (kind < 804) {
      const depth = 1000 + r.int(100_000);
      text = `{"ts": ${t}, "speed": ${'['.repeat(depth)}1${']'.repeat(depth)}}`;
    } else if (kind < 805) text = `{"ts": ${t}, "speed": [${'1,'.repeat(600_000)}1]}`; // past maxBytes
    else text = valid();
    yield { topic, payload: Buffer.isBuffer(text) ? text : Buffer.from(text) };
  }
}

const SPARK = 'spBv1.0/plant';
export const SPARKPLUG_DATA_TOPIC = `${SPARK}/DDATA/edge-1/pump-1`;
/** Other message types and nodes; the ones that void the node's births are drawn far less often. */
const OTHER_TOPICS = [`${SPARK}/NDATA/edge-1`, `${SPARK}/DDEATH/edge-1/pump-9`, `${SPARK}/NDEATH/edge-1`, `${SPARK}/DDATA/edge-1/pump-9`, `${SPARK}/DDATA/edge-2/pump-1`, `${SPARK}/STATE/host`, `${SPARK}/NCMD/edge-1`, 'spBv1.0/STATE/host', `${SPARK}/BOGUS/edge-1`, `${SPARK}/DDATA/edge-1`, `${SPARK}/DDATA/edge-1/pump-1/extra`];
const BIRTH_TOPICS = [`${SPARK}/NBIRTH/edge-1`, `${SPARK}/DBIRTH/edge-1/pump-1`, `${SPARK}/DDEATH/edge-1/pump-1`];

/** The births a node sends, with the metrics the fuzz DATA refers to. */
export function sparkplugBirths(): FuzzMessage[] {
  return [
    { topic: `${SPARK}/NBIRTH/edge-1`, payload: Buffer.from(encodePayload({ timestamp: T0, seq: 0, metrics: [{ name: 'bdSeq', type: 'UInt64', value: 0 }, { name: 'Load', alias: 3, type: 'Int32', value: 0 }] })) },
    {
      topic: `${SPARK}/DBIRTH/edge-1/pump-1`,
      payload: Buffer.from(
        encodePayload({
          timestamp: T0,
          seq: 1,
          metrics: [
            { name: 'Speed', alias: 7, type: 'Float', value: 0 },
            { name: 'Count', alias: 8, type: 'UInt64', value: 0 },
            { name: 'Mode', alias: 9, type: 'String', value: 'run' },
            { name: 'Temp', alias: 10, type: 'Int8', value: 0 },
          ],
        }),
      ),
    },
  ];
}

/** uint64 timestamps at the edges: 0, past the bound, nanoseconds, microseconds, absent, a −1 written as uint64. */
const TIMESTAMPS: ReadonlyArray<number | undefined> = [T0, T0 + 1000, 0, 1e16, 1.7e18, 1.7e15, undefined, Long.fromString('18446744073709551615', true) as unknown as number];

/** A DATA metric built wrong in one of many ways, or right. */
function metric(r: Random, t: number): RawDataMetric {
  const m: RawDataMetric = {};
  const who = r.int(10);
  if (who < 6) m.alias = 7;
  else if (who < 7) m.alias = pick(r, [8, 9, 10, 3, 99]);
  else if (who < 9) m.name = pick(r, ['Speed', 'Count', 'Mode', 'Temp', 'Unknown', '']);
  if (r.int(8) === 0) m.datatype = r.int(22);
  const value = r.int(12);
  if (value < 6) m.floatValue = r.int(10) === 0 ? pick(r, ODD_DOUBLES) : Math.round(r.uniform(0, 3) * 100) / 100;
  else if (value === 6) m.doubleValue = pick(r, ODD_DOUBLES);
  else if (value === 7) m.intValue = r.nextUint32() | 0;
  else if (value === 8) m.longValue = Long.fromBits(r.nextUint32(), r.nextUint32(), true) as unknown as number;
  else if (value === 9) m.stringValue = pick(r, ['1.5', 'NaN', '']);
  else if (value === 10) m.booleanValue = true;
  if (r.int(6) === 0) m.timestamp = pick(r, TIMESTAMPS);
  else if (r.int(3) === 0) m.timestamp = t;
  if (r.int(20) === 0) m.isNull = true;
  if (r.int(20) === 0) m.isHistorical = true;
  return m;
}

/**
 * Sparkplug B on one edge node: its births, then DATA numbered on from them (so that most get
 * past the seq check to their metrics), mutated, truncated or sent on other message types now and
 * then; the births again every 200 messages, as a node answering a rebirth request would.
 */
export function* sparkplugMessages(seed: number, count: number): Generator<FuzzMessage> {
  const r = new Random(seed, 'gateway-fuzz', 'sparkplug');
  let seq = 0;
  let t = T0;
  let sinceBirth = Infinity;
  for (let i = 0; i < count; i++) {
    if (sinceBirth >= 200) {
      // Births count among the messages: every one yielded is one published.
      const births = sparkplugBirths();
      if (i + births.length > count) break;
      for (const b of births) yield b;
      i += births.length - 1;
      seq = 2;
      sinceBirth = 0;
      continue;
    }
    sinceBirth++;
    t += 1000;
    const kind = r.int(20);
    const payloadTime = r.int(10) === 0 ? pick(r, TIMESTAMPS) : t;
    const data = () => rawData(seq++ % 256, Array.from({ length: 1 + r.int(4) }, () => metric(r, t)), payloadTime);
    let payload: Buffer;
    let topic = SPARKPLUG_DATA_TOPIC;
    if (kind < 2) payload = randomBytes(r, 200);
    else if (kind < 4) payload = truncate(r, data());
    else if (kind < 8) payload = mutate(r, data());
    else if (kind < 9) {
      topic = r.int(40) === 0 ? pick(r, BIRTH_TOPICS) : pick(r, OTHER_TOPICS);
      payload = r.int(2) === 0 ? Buffer.from(data()) : mutate(r, data());
    } else if (kind < 10) payload = Buffer.from(rawData(r.int(2) === 0 ? undefined : r.int(300), [metric(r, t)], payloadTime));
    else payload = Buffer.from(data());
    yield { topic, payload };
  }
}
