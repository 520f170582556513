// Sparkplug B decoder specifics: births and aliases, seq order, deaths, topics, datatypes.
import { describe, expect, it } from 'vitest';
import { createDecoder, type DecodedSamples, type Decoder, type SparkplugDecoderConfig } from '../../../runtime/stream/decoders';
import { refusal } from './contract';
import { BIRTH_TIME, DEVICE, NODE, dbirth, encodePayload, nbirth, ndeath, rawData, topicOf } from './sparkplug-helpers';

const DDATA = topicOf('DDATA', DEVICE);
const NDATA = topicOf('NDATA');

function decoder(config: Omit<SparkplugDecoderConfig, 'kind'> = {}): Decoder {
  return createDecoder({ kind: 'sparkplug', ...config });
}

function send(d: Decoder, topic: string, payload: Uint8Array): DecodedSamples[] {
  return d.decode(payload, { topic, device: 'from-topic' });
}

/** A decoder that has seen NBIRTH (seq 0) and the pump's DBIRTH (seq 1). */
function born(config: Omit<SparkplugDecoderConfig, 'kind'> = {}): Decoder {
  const d = decoder(config);
  expect(send(d, topicOf('NBIRTH'), nbirth({ bdSeq: 7 }))).toEqual([]);
  expect(send(d, topicOf('DBIRTH', DEVICE), dbirth(1))).toEqual([]);
  return d;
}

const plain = (groups: DecodedSamples[]) => groups.map((g) => ({ ...g, channels: Object.fromEntries(Object.entries(g.channels).map(([k, v]) => [k, Array.from(v)])) }));

describe('Sparkplug B decoder', () => {
  describe('births and data', () => {
    it('should return nothing for births, and decode DATA that names metrics only by alias', () => {
      const d = born();
      const out = send(d, DDATA, rawData(2, [{ alias: 11, floatValue: 0.5 }, { alias: 13, floatValue: -0.25 }]));
      expect(plain(out)).toEqual([{ device: DEVICE, channels: { 'Vibration/X': [0.5], 'Vibration/Z': [-0.25] }, timestampMs: BIRTH_TIME, seq: 2 }]);
    });

    it('should attribute node metrics (NDATA) to the edge node and device metrics (DDATA) to the device', () => {
      const d = born();
      expect(send(d, NDATA, rawData(2, [{ alias: 1, doubleValue: 42 }]))[0].device).toBe(NODE);
      expect(send(d, DDATA, rawData(3, [{ alias: 12, floatValue: 1 }]))[0].device).toBe(DEVICE);
    });

    it('should group metrics by timestamp, in time order, using the payload timestamp for metrics without one', () => {
      const d = born();
      const out = send(d, DDATA, rawData(2, [
        { alias: 11, timestamp: BIRTH_TIME + 20, floatValue: 3 },
        { alias: 11, floatValue: 1 },
        { alias: 12, timestamp: BIRTH_TIME + 10, floatValue: 2 },
        { alias: 12, timestamp: BIRTH_TIME + 20, floatValue: 4 },
      ], BIRTH_TIME + 10));
      expect(plain(out).map((g) => [g.timestampMs, g.channels])).toEqual([
        [BIRTH_TIME + 10, { 'Vibration/X': [1], 'Vibration/Y': [2] }],
        [BIRTH_TIME + 20, { 'Vibration/X': [3], 'Vibration/Y': [4] }],
      ]);
    });

    it('should refuse two values of one channel at the same timestamp', () => {
      refusal(() => send(born(), DDATA, rawData(2, [{ alias: 11, floatValue: 1 }, { alias: 11, floatValue: 2 }])), {
        topic: DDATA,
        code: 'E_INPUT_SHAPE',
        mentions: [`channel 'Vibration/X' gets two values at timestamp ${BIRTH_TIME}`],
      });
    });

    it('should read every numeric datatype, sign-extending signed integers', () => {
      const types = ['Int8', 'Int16', 'Int32', 'Int64', 'UInt8', 'UInt16', 'UInt32', 'UInt64', 'Float', 'Double'] as const;
      const values = [-5, -300, -70000, -5_000_000_000, 200, 65000, 4_000_000_000, 9_000_000_000, 1.5, -2.25];
      const d = decoder();
      send(d, topicOf('NBIRTH'), nbirth({ metrics: types.map((type, i) => ({ name: type, alias: 50 + i, type, value: 0 })) }));
      const out = send(d, NDATA, encodePayload({ timestamp: BIRTH_TIME, seq: 1, metrics: types.map((type, i) => ({ alias: 50 + i, type, value: values[i] })) } as never));
      expect(plain(out)[0].channels).toEqual(Object.fromEntries(types.map((t, i) => [t, [Math.fround(values[i])]])));
    });

    it('should read an Int8 written as one byte (0xFF) or as 32 bits (0xFFFFFFFF) as -1', () => {
      const d = decoder();
      send(d, topicOf('NBIRTH'), nbirth({ metrics: [{ name: 'a', alias: 60, type: 'Int8', value: 0 }, { name: 'b', alias: 61, type: 'Int8', value: 0 }] }));
      const out = send(d, NDATA, rawData(1, [{ alias: 60, intValue: 0xff }, { alias: 61, intValue: 0xffffffff }]));
      expect(plain(out)[0].channels).toEqual({ a: [-1], b: [-1] });
    });

    it('should ignore booleans, strings, null values and historical values', () => {
      const d = decoder();
      send(d, topicOf('NBIRTH'), nbirth({ metrics: [{ name: 'Label', alias: 70, type: 'String', value: 'x' }] }));
      const out = send(d, NDATA, rawData(1, [
        { alias: 2, booleanValue: false },
        { alias: 70, stringValue: 'running' },
        { alias: 1, isNull: true },
        { alias: 1, doubleValue: 99, timestamp: BIRTH_TIME - 5000, isHistorical: true },
      ]));
      expect(out).toEqual([]);
    });

    it('should take only the mapped metrics, under their channel names, when channels are configured', () => {
      const d = born({ channels: { 'Vibration/Y': 'vib_y', Temperature: 'temp' } });
      expect(plain(send(d, DDATA, rawData(2, [{ alias: 11, floatValue: 1 }, { alias: 12, floatValue: 2 }])))[0].channels).toEqual({ vib_y: [2] });
      expect(plain(send(d, NDATA, rawData(3, [{ alias: 1, doubleValue: 40 }])))[0].channels).toEqual({ temp: [40] });
    });

    it('should find a metric by name when DATA sends names rather than aliases', () => {
      expect(plain(send(born(), DDATA, rawData(2, [{ name: 'Vibration/Y', floatValue: 7 }])))[0].channels).toEqual({ 'Vibration/Y': [7] });
    });

    it('should refuse a numeric metric that carries a value of another kind', () => {
      refusal(() => send(born(), DDATA, rawData(2, [{ alias: 11, stringValue: 'abc' }])), { topic: DDATA, code: 'E_INPUT_VALUE', mentions: ["metric 'Vibration/X' (alias 11) is Float but carries a string value"] });
    });

    it('should refuse NaN naming the metric, its alias and the timestamp', () => {
      refusal(() => send(born(), DDATA, rawData(2, [{ alias: 12, floatValue: Number.NaN }])), {
        topic: DDATA,
        code: 'E_INPUT_VALUE',
        mentions: [`metric 'Vibration/Y' (alias 12) is NaN at timestamp ${BIRTH_TIME}`],
      });
    });

    it('should take new aliases from a new NBIRTH and forget the old ones', () => {
      const d = born();
      send(d, topicOf('NBIRTH'), nbirth({ metrics: [{ name: 'Pressure', alias: 31, type: 'Float', value: 1 }] }));
      refusal(() => send(d, DDATA, rawData(1, [{ alias: 11, floatValue: 1 }])), { topic: DDATA, mentions: [`no DBIRTH seen for device 'plant/${NODE}/${DEVICE}'`, 'a rebirth is needed'] });
    });
  });

  describe('seq', () => {
    it('should refuse a message out of order, naming the expected and received seq', () => {
      const err = refusal(() => send(born(), DDATA, rawData(5, [{ alias: 11, floatValue: 1 }])), { topic: DDATA, code: 'E_INPUT_VALUE' });
      expect(err.message).toBe(`${DDATA}: seq out of order from edge node 'plant/${NODE}': expected 2, received 5 (messages lost or reordered; continuing from 5)`);
    });

    it('should resynchronise after a gap, so one lost message costs one dead letter', () => {
      const d = born();
      expect(() => send(d, DDATA, rawData(3, [{ alias: 11, floatValue: 1 }]))).toThrow(/expected 2, received 3/);
      expect(send(d, DDATA, rawData(4, [{ alias: 11, floatValue: 2 }]))[0].seq).toBe(4);
      expect(send(d, NDATA, rawData(5, [{ alias: 1, doubleValue: 3 }]))[0].seq).toBe(5);
    });

    it('should wrap from 255 to 0', () => {
      const d = decoder();
      send(d, topicOf('NBIRTH'), nbirth());
      for (let k = 1; k <= 300; k++) expect(send(d, NDATA, rawData(k % 256, [{ alias: 1, doubleValue: k }]))[0].seq).toBe(k % 256);
    });

    it('should count births and deaths of devices in the node seq', () => {
      const d = born();
      expect(send(d, topicOf('DDEATH', DEVICE), rawData(2, []))).toEqual([]);
      expect(send(d, topicOf('DBIRTH', DEVICE), dbirth(3))).toEqual([]);
      expect(send(d, DDATA, rawData(4, [{ alias: 11, floatValue: 1 }]))).toHaveLength(1);
    });

    it('should keep a DBIRTH that arrives out of order, refusing it but decoding the DATA after it', () => {
      const d = decoder();
      send(d, topicOf('NBIRTH'), nbirth());
      expect(() => send(d, topicOf('DBIRTH', DEVICE), dbirth(9))).toThrow(/expected 1, received 9/);
      expect(send(d, DDATA, rawData(10, [{ alias: 11, floatValue: 1 }]))).toHaveLength(1);
    });

    it('should keep a seq per edge node', () => {
      const d = decoder();
      const other = 'spBv1.0/plant/NDATA/gw-2';
      send(d, topicOf('NBIRTH'), nbirth());
      send(d, 'spBv1.0/plant/NBIRTH/gw-2', nbirth());
      expect(send(d, NDATA, rawData(1, [{ alias: 1, doubleValue: 1 }]))[0].device).toBe(NODE);
      expect(send(d, other, rawData(1, [{ alias: 1, doubleValue: 1 }]))[0].device).toBe('gw-2');
      expect(send(d, other, rawData(2, [{ alias: 1, doubleValue: 1 }]))).toHaveLength(1);
    });

    it('should refuse a message without a seq, or with one beyond 255', () => {
      refusal(() => send(born(), DDATA, rawData(undefined, [{ alias: 11, floatValue: 1 }])), { topic: DDATA, mentions: ['DDATA payload has no seq'] });
      refusal(() => send(born(), DDATA, rawData(256, [{ alias: 11, floatValue: 1 }])), { topic: DDATA, mentions: ['DDATA seq is 256, expected 0..255'] });
    });
  });

  describe('rebirth needed', () => {
    it('should say a rebirth is needed for DATA from a node never born (a gateway restart)', () => {
      refusal(() => send(decoder(), DDATA, rawData(17, [{ alias: 11, floatValue: 1 }])), {
        topic: DDATA,
        code: 'E_INPUT_VALUE',
        mentions: [`no NBIRTH seen from edge node 'plant/${NODE}'`, "a rebirth is needed (NCMD 'Node Control/Rebirth' = true)"],
      });
    });

    it('should say a rebirth is needed for an alias the births never declared', () => {
      refusal(() => send(born(), DDATA, rawData(2, [{ alias: 99, floatValue: 1 }])), {
        topic: DDATA,
        mentions: [`metric alias 99 is not in the DBIRTH of device 'plant/${NODE}/${DEVICE}': a rebirth is needed`],
      });
    });

    it('should forget the node on an NDEATH with the bdSeq of its NBIRTH', () => {
      const d = born();
      expect(send(d, topicOf('NDEATH'), ndeath(7))).toEqual([]);
      refusal(() => send(d, DDATA, rawData(2, [{ alias: 11, floatValue: 1 }])), { topic: DDATA, mentions: ['no NBIRTH seen'] });
    });

    it('should ignore a late NDEATH from an earlier connection (another bdSeq)', () => {
      const d = born();
      expect(send(d, topicOf('NDEATH'), ndeath(6))).toEqual([]);
      expect(send(d, DDATA, rawData(2, [{ alias: 11, floatValue: 1 }]))).toHaveLength(1);
    });

    it('should forget a device on its DDEATH', () => {
      const d = born();
      send(d, topicOf('DDEATH', DEVICE), rawData(2, []));
      refusal(() => send(d, DDATA, rawData(3, [{ alias: 11, floatValue: 1 }])), { topic: DDATA, mentions: ['no DBIRTH seen'] });
    });

    it('should keep the state of one decoder to itself', () => {
      born();
      refusal(() => send(decoder(), DDATA, rawData(2, [{ alias: 11, floatValue: 1 }])), { topic: DDATA, mentions: ['no NBIRTH seen'] });
    });
  });

  describe('births that break the rules', () => {
    it('should refuse a birth metric without a name, and one alias given to two metrics', () => {
      const d = decoder();
      refusal(() => send(d, topicOf('NBIRTH'), rawData(0, [{ alias: 3, doubleValue: 1, datatype: 10 }])), { topic: topicOf('NBIRTH'), mentions: ['NBIRTH metric #0 has no name'] });
      refusal(() => send(d, topicOf('NBIRTH'), nbirth({ metrics: [{ name: 'a', alias: 1, type: 'Float', value: 0 }] })), { topic: topicOf('NBIRTH'), mentions: ["NBIRTH gives alias 1 to both 'Temperature' and 'a'"] });
    });
  });

  describe('topics and payloads', () => {
    it.each(['NCMD', 'DCMD', 'STATE'])('should return nothing for %s messages', (type) => {
      const topic = type === 'STATE' ? 'spBv1.0/STATE/scada-1' : topicOf(type, type === 'DCMD' ? DEVICE : undefined);
      expect(send(decoder(), topic, Buffer.from('{"online": true}'))).toEqual([]);
      expect(send(decoder(), 'STATE/scada-1', Buffer.from('ONLINE'))).toEqual([]);
    });

    it.each([
      ['plant/pump-1/vibration', 'not a Sparkplug B topic'],
      ['spBv1.0/plant/XDATA/gw-1', "unknown Sparkplug message type 'XDATA'"],
      ['spBv1.0/plant/DDATA/gw-1', 'a Sparkplug DDATA topic has 5 non-empty levels, this one has 4'],
      ['spBv1.0/plant/NDATA/gw-1/pump', 'a Sparkplug NDATA topic has 4 non-empty levels, this one has 5'],
      ['spBv1.0//NDATA/gw-1', 'this one has 4'],
    ])('should refuse the topic %s', (topic, says) => {
      refusal(() => send(decoder(), topic, rawData(0, [])), { topic, code: 'E_INPUT_VALUE', mentions: [says] });
    });

    it('should refuse a broken protobuf with the protobuf message', () => {
      const whole = rawData(2, [{ alias: 11, floatValue: 1 }]);
      refusal(() => send(born(), DDATA, whole.subarray(0, whole.length - 4)), { topic: DDATA, code: 'E_INPUT_VALUE', mentions: ['payload is not a valid Sparkplug B protobuf', 'index out of range'] });
      refusal(() => send(born(), DDATA, Uint8Array.from([0x07])), { topic: DDATA, mentions: ['invalid wire type 7'] });
    });

    it('should refuse an empty DATA payload', () => {
      refusal(() => send(born(), DDATA, new Uint8Array(0)), { topic: DDATA, code: 'E_INPUT_SHAPE', mentions: ['DDATA payload is empty'] });
    });
  });
});
