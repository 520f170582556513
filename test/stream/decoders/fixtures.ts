// One fixture per decoder configuration that the contract suite and the fuzz test run against.
import { createDecoder, encodeFloat32Block, encodeJsonSamples } from '../../../runtime/stream/decoders';
import { CHANNELS, type DecoderFixture } from './contract';
import { BIRTH_TIME, DEVICE, DEVICE_METRICS, NODE, dbirth, encodePayload, nbirth, rawData, topicOf } from './sparkplug-helpers';

const TOPIC = 'plant/pump-1/vibration';
const channels = [...CHANNELS];
const T0 = 1_700_000_123_000;

/** Sparkplug channel names: the device's metric names mapped onto the contract's channels. */
const SPARKPLUG_CHANNELS = Object.fromEntries(DEVICE_METRICS.map((m, c) => [m.name, CHANNELS[c]]));

/** Cuts a float32 block's length check can see: inside the header, or not at a whole sample. */
const float32Cuts = (header: number) => (length: number) => length <= header || (length - header) % (4 * CHANNELS.length) !== 0;

export const FIXTURES: DecoderFixture[] = [
  {
    name: 'json (object of channel arrays at a field, with timestamp and seq)',
    create: () => createDecoder({ kind: 'json', field: 'data', timestampField: 'ts', seqField: 'seq' }),
    topic: TOPIC,
    device: 'pump-1',
    encode: (s, k = 0) => encodeJsonSamples(s, { channels, field: 'data', meta: { ts: T0 + k, seq: k } }),
  },
  {
    name: 'json (array of rows, columns named by channels)',
    create: () => createDecoder({ kind: 'json', field: 'payload.samples', channels }),
    topic: TOPIC,
    device: 'pump-1',
    encode: (s) => encodeJsonSamples(s, { channels, field: 'payload.samples', shape: 'rows' }),
  },
  {
    name: 'json (array of records at the top level)',
    create: () => createDecoder({ kind: 'json' }),
    topic: TOPIC,
    device: 'pump-1',
    encode: (s) => encodeJsonSamples(s, { channels, shape: 'records' }),
  },
  {
    name: 'float32 (interleaved, no header)',
    create: () => createDecoder({ kind: 'float32', channels }),
    topic: TOPIC,
    device: 'pump-1',
    encode: (s) => encodeFloat32Block(s, { channels }),
    detectsCutAt: float32Cuts(0),
  },
  {
    name: 'float32 (planar, edge-infer header)',
    create: () => createDecoder({ kind: 'float32', channels, layout: 'planar', header: 'edge-infer' }),
    topic: TOPIC,
    device: 'pump-1',
    encode: (s, k = 0) => encodeFloat32Block(s, { channels, layout: 'planar', header: { seq: k, timestampMs: T0 + k } }),
    detectsCutAt: float32Cuts(16),
  },
  {
    name: 'sparkplug (DDATA by alias without datatypes, metrics mapped to channels)',
    create: () => createDecoder({ kind: 'sparkplug', channels: SPARKPLUG_CHANNELS }),
    topic: topicOf('DDATA', DEVICE),
    device: DEVICE,
    prelude: () => [
      { topic: topicOf('NBIRTH'), payload: nbirth() },
      { topic: topicOf('DBIRTH', DEVICE), payload: dbirth(1) },
    ],
    // One metric per sample and channel, one timestamp per sample; seq 2 follows the births.
    encode: (s, k = 0) =>
      rawData(
        (2 + k) % 256,
        s.vib_x.flatMap((_, i) => DEVICE_METRICS.map((m, c) => ({ alias: m.alias, timestamp: BIRTH_TIME + k * 1000 + i, floatValue: s[CHANNELS[c]][i] }))),
      ),
  },
  {
    name: "sparkplug (NDATA by name, as sparkplug-payload's encodePayload writes it)",
    create: () => createDecoder({ kind: 'sparkplug' }),
    topic: topicOf('NDATA'),
    device: NODE,
    prelude: () => [
      {
        topic: topicOf('NBIRTH'),
        payload: nbirth({ metrics: CHANNELS.map((name, c) => ({ name, alias: 100 + c, type: 'Double', value: 0 })) }),
      },
    ],
    encode: (s, k = 0) =>
      encodePayload({
        timestamp: BIRTH_TIME + k * 1000,
        seq: (1 + k) % 256,
        metrics: s.vib_x.flatMap((_, i) => CHANNELS.map((name) => ({ name, type: 'Double' as const, value: s[name][i], timestamp: BIRTH_TIME + k * 1000 + i }))),
      }),
  },
];
