import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MachineSimulator, type Plant, type PlantInput, builtinPlants, parsePlant, plantById, profileById } from '../../devices';
import { isEdgeInferError } from '../../runtime/errors';
import { createDecoder } from '../../runtime/stream/decoders';
import { PlantPublisher } from '../../runtime/stream/plant-publisher';
import { type MosquittoBroker, type TestBroker, startAedes, startMosquitto } from '../helpers/brokers';

const EPOCH_MS = 1_700_000_000_000;

interface Received {
  topic: string;
  payload: Buffer;
}

/** A subscriber that keeps every message it gets, in arrival order. */
interface Collector {
  client: MqttClient;
  messages: Received[];
  /** Resolves once `n` messages have arrived; rejects after `timeoutMs`, saying how many did. */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  /** Resolves once `done()` holds (checked on every message). */
  waitUntil(done: () => boolean, timeoutMs?: number): Promise<void>;
  end(): Promise<void>;
}

async function collect(url: string, filter: string, opts: { clientId?: string; clean?: boolean } = {}): Promise<Collector> {
  const client = mqtt.connect(url, { clientId: opts.clientId, clean: opts.clean ?? true, protocolVersion: 4, reconnectPeriod: 100 });
  const messages: Received[] = [];
  let waiter: (() => void) | undefined;
  client.on('message', (topic, payload) => {
    messages.push({ topic, payload });
    waiter?.();
  });
  client.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return {
    client,
    messages,
    waitFor: (n, timeoutMs = 10_000) => waitUntil(() => messages.length >= n, timeoutMs, () => `expected ${n} messages, ${messages.length} arrived within ${timeoutMs} ms`),
    waitUntil: (done, timeoutMs = 10_000) => waitUntil(done, timeoutMs, () => `condition not met within ${timeoutMs} ms (${messages.length} messages arrived)`),
    end: () => client.endAsync(true),
  };

  function waitUntil(done: () => boolean, timeoutMs: number, why: () => string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (done()) {
          clearTimeout(timer);
          waiter = undefined;
          resolve();
        }
      };
      const timer = setTimeout(() => {
        waiter = undefined;
        reject(new Error(why()));
      }, timeoutMs);
      waiter = check;
      check();
    });
  }
}

function byTopic(messages: readonly Received[]): Map<string, Buffer[]> {
  const out = new Map<string, Buffer[]>();
  for (const m of messages) {
    const list = out.get(m.topic) ?? [];
    list.push(m.payload);
    out.set(m.topic, list);
  }
  return out;
}

/** A plant of the first `n` demo machines. */
function demoSlice(n: number, publish: Partial<Plant['publish']> = {}): Plant {
  const demo = plantById('demo');
  return parsePlant({ ...demo, machines: demo.machines.slice(0, n), publish: { ...demo.publish, ...publish } });
}

const vibrationDecoder = createDecoder({ kind: 'float32', channels: ['vib_x', 'vib_y', 'vib_z'], header: 'edge-infer' });
const sampleDecoder = createDecoder({ kind: 'json', timestampField: 'timestamp', seqField: 'seq' });
const jsonBlockDecoder = createDecoder({ kind: 'json', field: 'channels', timestampField: 'timestamp', seqField: 'seq', sampleRateField: 'sampleRate' });

describe('plants', () => {
  const base: PlantInput = {
    id: 'p',
    title: 'P',
    description: 'A plant.',
    machines: [{ device: 'm-1', profile: 'fan', seed: 1 }],
    publish: { encoding: 'float32' },
  };

  function parseError(value: unknown): string {
    try {
      parsePlant(value, 'plants/bad.json');
    } catch (err) {
      expect(isEdgeInferError(err, 'E_DEVICE_PROFILE')).toBe(true);
      return (err as Error).message;
    }
    throw new Error('expected the plant to be refused');
  }

  it('should parse the built-in plants, with defaults filled in', () => {
    const plants = builtinPlants();
    expect(plants.map((p) => p.id)).toEqual(['demo', 'line']);
    const demo = plantById('demo');
    expect(demo.machines).toHaveLength(6);
    expect(demo.machines.filter((m) => m.faults?.length)).toHaveLength(3);
    expect(new Set(demo.machines.map((m) => m.seed)).size).toBe(6);
    expect(plantById('line').machines).toHaveLength(24);
    expect(parsePlant(base).publish).toEqual({ topic: 'plant/{device}/{stream}', encoding: 'float32', qos: 1 });
  });

  it('should name the file and the field of every problem', () => {
    const msg = parseError({ ...base, machines: [{ device: 'm-1', profile: 'fan', seed: 1, faults: [{ type: 'imbalance', onsetS: 10, severity: 2 }] }], publish: { encoding: 'f32', qos: 3 } });
    expect(msg).toMatch(/^plants\/bad\.json: invalid plant: /);
    expect(msg).toContain('machines[0].faults[0].severity');
    expect(msg).toContain('publish.encoding');
    expect(msg).toContain('publish.qos');
  });

  it('should refuse unknown profiles, repeated devices, unknown streams and ambiguous topics', () => {
    expect(parseError({ ...base, machines: [{ device: 'm-1', profile: 'pump', seed: 1 }] })).toMatch(/machines\[0\]\.profile: unknown device profile 'pump'; known profiles: compressor, fan, mixer, pump-motor/);
    expect(parseError({ ...base, machines: [base.machines[0], { device: 'm-1', profile: 'fan', seed: 2 }] })).toMatch(/machines\[1\]\.device: device 'm-1' is already used by machines\[0\]/);
    expect(parseError({ ...base, publish: { encoding: 'json', streams: ['vibration', 'vib'] } })).toMatch(/publish\.streams\[1\]: stream 'vib' is not a stream of profile 'fan'/);
    expect(parseError({ ...base, publish: { encoding: 'json', topic: 'plant/{device}' } })).toMatch(/publish\.topic: the topic must hold \{stream\}/);
    expect(parseError({ ...base, publish: { encoding: 'json', topic: 'plant/+/{device}/{stream}' } })).toMatch(/publish\.topic: .*\+ #/);
    expect(parseError({ ...base, publish: { encoding: 'json', topic: 'plant/{machine}/{stream}' } })).toMatch(/unknown placeholder \{machine\}/);
  });

  it('should refuse options that make no sense at the public boundary', () => {
    expect(() => new PlantPublisher(plantById('demo'), { url: 'localhost:1883' })).toThrow(/url: expected a broker URL/);
    expect(() => new PlantPublisher(plantById('demo'), { url: 'mqtt://x', speed: -1 })).toThrow(/speed: expected a number ≥ 0/);
  });
});

const BROKERS: [string, () => Promise<TestBroker>][] = [
  ['mosquitto', () => startMosquitto()],
  ['aedes', () => startAedes()],
];

describe.each(BROKERS)('PlantPublisher against %s', (_name, startBroker) => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startBroker();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it("should deliver every machine's messages on its own topics, in order, with consecutive seq, decodable", async () => {
    const plant = plantById('demo');
    const sub = await collect(broker.url, 'plant/#');
    const publisher = new PlantPublisher(plant, { url: broker.url, speed: 0, seconds: 2, startTimeMs: EPOCH_MS });
    try {
      const stats = await publisher.run();
      // 6 machines × (20 vibration blocks of 0.1 s + 2 temperature samples)
      expect(stats.messages).toBe(6 * 22);
      expect(stats.unacknowledged).toBe(0);
      expect(stats.simulatedSeconds).toBeCloseTo(2, 9);
      await sub.waitFor(stats.messages);
      const topics = byTopic(sub.messages);
      expect([...topics.keys()].sort()).toEqual(plant.machines.flatMap((m) => [`plant/${m.device}/temperature`, `plant/${m.device}/vibration`]).sort());
      for (const m of plant.machines) {
        const vib = topics.get(`plant/${m.device}/vibration`) ?? [];
        expect(vib).toHaveLength(20);
        expect(stats.perTopic[`plant/${m.device}/vibration`]).toBe(20);
        expect(stats.lastSeq[`${m.device}/vibration`]).toBe(19);
        const sim = new MachineSimulator(profileById(m.profile), { seed: m.seed, faults: m.faults ?? [] });
        vib.forEach((payload, i) => {
          const topic = `plant/${m.device}/vibration`;
          const [d] = vibrationDecoder.decode(payload, { topic, device: m.device });
          expect(d.seq, topic).toBe(i);
          expect(d.timestampMs).toBe(EPOCH_MS + i * 100);
          const expected = sim.next('vibration', 512);
          for (const c of ['vib_x', 'vib_y', 'vib_z']) {
            expect(d.channels[c]).toHaveLength(512);
            expect(d.channels[c]).toEqual(expected.channels[c]);
          }
        });
        const temp = topics.get(`plant/${m.device}/temperature`) ?? [];
        expect(temp.map((p) => JSON.parse(p.toString()).seq)).toEqual([0, 1]);
        temp.forEach((payload, i) => {
          const [d] = sampleDecoder.decode(payload, { topic: `plant/${m.device}/temperature`, device: m.device });
          expect(d).toMatchObject({ seq: i, timestampMs: EPOCH_MS + i * 1000 });
          expect(Object.keys(d.channels)).toEqual(['temperature']);
          expect(d.channels.temperature[0]).toBeGreaterThan(20);
        });
      }
    } finally {
      await publisher.stop();
      await sub.end();
    }
  });

  it('should publish blocks as JSON with seq, timestamp and sample rate when the plant says json', async () => {
    const plant = demoSlice(2, { encoding: 'json', streams: ['current'], qos: 2 });
    const sub = await collect(broker.url, 'plant/+/current');
    const publisher = new PlantPublisher(plant, { url: broker.url, speed: 0, seconds: 0.5, startTimeMs: EPOCH_MS });
    try {
      const stats = await publisher.run();
      expect(stats.messages).toBe(2 * 5);
      await sub.waitFor(10);
      for (const [topic, payloads] of byTopic(sub.messages)) {
        payloads.forEach((payload, i) => {
          const doc = JSON.parse(payload.toString());
          expect(Object.keys(doc).sort()).toEqual(['channels', 'sampleRate', 'seq', 'timestamp']);
          const [d] = jsonBlockDecoder.decode(payload, { topic, device: 'x' });
          expect(d).toMatchObject({ seq: i, timestampMs: EPOCH_MS + i * 100, sampleRate: 2000 });
          expect(d.channels.current).toHaveLength(200);
        });
      }
    } finally {
      await publisher.stop();
      await sub.end();
    }
  });

  it('should pace messages to wall time × speed', async () => {
    const plant = demoSlice(2, { streams: ['vibration'] });
    for (const [speed, expectedS] of [
      [50, 0.02],
      [10, 0.1],
    ] as const) {
      const publisher = new PlantPublisher(plant, { url: broker.url, speed, seconds: 1 });
      try {
        await publisher.start();
        const stats = await publisher.run();
        expect(stats.messages).toBe(20);
        // The last block is due when its last sample is taken, 1 s of simulated time in.
        expect(stats.wallSeconds).toBeGreaterThanOrEqual(expectedS * 0.95);
        expect(stats.wallSeconds).toBeLessThan(expectedS + 0.25);
      } finally {
        await publisher.stop();
      }
    }
  });

  it('should never have more than maxInFlight messages unacknowledged at speed 0', async () => {
    const publisher = new PlantPublisher(plantById('line'), { url: broker.url, speed: 0, seconds: 1, maxInFlight: 8 });
    try {
      const stats = await publisher.run();
      expect(stats.messages).toBe(24 * 10);
      expect(stats.peakInFlight).toBe(8);
    } finally {
      await publisher.stop();
    }
  });

  it('should stop at maxMessages, and stop promptly when asked', async () => {
    const capped = new PlantPublisher(plantById('line'), { url: broker.url, speed: 0, maxMessages: 37 });
    try {
      expect((await capped.run()).messages).toBe(37);
    } finally {
      await capped.stop();
    }
    const endless = new PlantPublisher(plantById('demo'), { url: broker.url, speed: 1 });
    await endless.start();
    const run = endless.run();
    await new Promise((resolve) => setTimeout(resolve, 250));
    const t = performance.now();
    await endless.stop();
    const stats = await run;
    expect(performance.now() - t).toBeLessThan(1000);
    // About 0.25 s in real time: 2 blocks per machine (plus the first temperature sample).
    expect(stats.messages).toBeGreaterThanOrEqual(6);
    expect(stats.messages).toBeLessThan(40);
    expect(stats.unacknowledged).toBe(0);
  });
});

describe('PlantPublisher with mosquitto stalling and restarting', () => {
  let broker: MosquittoBroker;
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('should stop publishing while a stalled broker acknowledges nothing, and finish once it is back', async () => {
    const publisher = new PlantPublisher(plantById('line'), { url: broker.url, speed: 0, seconds: 2, maxInFlight: 16 });
    await publisher.start();
    broker.pause();
    try {
      const run = publisher.run();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(publisher.published).toBe(16);
      expect(publisher.inFlight).toBe(16);
      expect(publisher.stats.messages).toBe(0);
      broker.resume();
      const stats = await run;
      expect(stats.messages).toBe(24 * 20);
      expect(stats.peakInFlight).toBe(16);
    } finally {
      broker.resume();
      await publisher.stop();
    }
  });

  it('should deliver every QoS 1 message published while the broker restarts to a persistent-session subscriber', async () => {
    const plant = demoSlice(3, { streams: ['vibration'], qos: 1 });
    const clientId = `restart-sub-${process.pid}`;
    // The subscriber leaves its session (and subscription) on the broker and goes away: what
    // arrives before the restart survives it only in mosquitto's persistence file.
    await (await collect(broker.url, 'plant/#', { clientId, clean: false })).end();
    const publisher = new PlantPublisher(plant, { url: broker.url, speed: 10, seconds: 6, reconnectMs: 100 });
    let sub: Collector | undefined;
    try {
      await publisher.start();
      const run = publisher.run();
      // 0.2 s in (2 simulated seconds), restart the broker under the publisher.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const before = publisher.stats.messages;
      await broker.restart();
      const stats = await run;
      expect(before).toBeGreaterThan(0);
      expect(before).toBeLessThan(3 * 50);
      expect(stats.messages).toBe(3 * 60);
      sub = await collect(broker.url, 'plant/#', { clientId, clean: false });
      // QoS 1 is at least once: a message resent across the restart may arrive twice.
      const unique = (): Set<string> => new Set(sub?.messages.map((r) => `${r.topic}#${r.payload.readUInt32LE(4)}`));
      await sub.waitUntil(() => unique().size >= 3 * 60, 5000);
      for (const m of plant.machines) {
        const topic = `plant/${m.device}/vibration`;
        const seqs = sub.messages
          .filter((r) => r.topic === topic)
          .map((r) => vibrationDecoder.decode(r.payload, { topic, device: m.device })[0].seq);
        expect(new Set(seqs), topic).toEqual(new Set(Array.from({ length: 60 }, (_, i) => i)));
      }
    } finally {
      await publisher.stop();
      await sub?.end();
    }
  });
});
