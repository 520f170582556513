// Three `edge-infer run` processes on one Mosquitto. Block payloads that each fill a window are
// split by an MQTT 5 shared subscription: every message is handled exactly once across the
// three logs, also when one process is killed mid-stream and restarted. Streams of small blocks
// are split by device partition: each device's windows are all in one log. A partitioned gateway
// drops another gateway's messages on arrival, in the acknowledgement gate before mqtt.js parses them:
// acknowledged, never identified, counted or journaled.
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { type GatewayConfig, parseGatewayConfig } from '../../runtime/gateway/config';
import { Gateway } from '../../runtime/gateway/gateway';
import { ResultStore } from '../../runtime/store';
import { MessageIdentity, contentHash, contentOf } from '../../runtime/stream/identity';
import { partitionOf } from '../../runtime/stream/partition';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { VIBRATION_DECODER, client, publish, spawnGateway, tempDir, vibrationBlock, waitFor } from '../helpers/gateway';
import { speedTableModelsDir } from '../helpers/speed-table';

const GATEWAYS = 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Spawned = ReturnType<typeof spawnGateway>;

interface Site {
  configs: GatewayConfig[];
  files: string[];
  running: Spawned[];
}

/** Three gateway configs, one log each; `pipeline(i)` is gateway i's only pipeline. */
function site(brokerUrl: string, name: string, pipeline: (i: number) => Record<string, unknown>): Site {
  const dir = tempDir(`edge-infer-${name}-`);
  const configs = Array.from({ length: GATEWAYS }, (_, i) =>
    parseGatewayConfig(
      {
        // Shared subscriptions are MQTT 5.
        broker: { url: brokerUrl, protocol: 5, clientId: `${name}-gw-${i}`, reconnectMs: 200, persistentSession: true },
        storage: { path: path.join(dir, `gw-${i}.db`) },
        http: { port: 0, host: '127.0.0.1' },
        engine: { backend: 'wasm', threads: 1 },
        pipelines: [{ name: 'classifier', model: 'fault-classifier', variant: 'fp32', decoder: VIBRATION_DECODER, ...pipeline(i) }],
      },
      `${name} gateway ${i}`,
    ),
  );
  return { configs, files: configs.map((_, i) => path.join(dir, `gw-${i}.json`)), running: [] };
}

async function start(s: Site, i: number): Promise<Spawned> {
  const g = spawnGateway(s.configs[i], s.files[i]);
  s.running[i] = g;
  await waitFor(() => g.output().includes('/health') || g.proc.exitCode !== null, 30_000, `gateway ${i} to start`);
  if (!g.output().includes('/health')) throw new Error(`gateway ${i} did not start: ${g.output()}`);
  return g;
}

async function stopAll(s: Site): Promise<void> {
  await Promise.all(
    s.running.map(async (g) => {
      if (g.proc.exitCode !== null || g.proc.signalCode !== null) return;
      g.proc.kill('SIGTERM');
      expect(await g.exited, g.output()).toBe(0);
    }),
  );
}

interface Row {
  gateway: number;
  device: string;
  startMs: number;
  keys: string[];
}

/** Every result of the three logs, with the log it is in. */
function results(s: Site): Row[] {
  return s.configs.flatMap((c, gateway) => {
    const db = new Database(c.storage.path, { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT device, window_start_ms AS startMs, message_keys AS keys FROM results ORDER BY id').all() as Array<{ device: string; startMs: number; keys: string }>;
      return rows.map((r) => ({ gateway, device: r.device, startMs: r.startMs, keys: (JSON.parse(r.keys) as string[]).map(contentOf) }));
    } finally {
      db.close();
    }
  });
}

const resultCount = (s: Site): number =>
  s.configs.reduce((n, c) => {
    const db = new Database(c.storage.path, { readonly: true, fileMustExist: true });
    try {
      return n + (db.prepare('SELECT COUNT(*) FROM results').pluck().get() as number);
    } finally {
      db.close();
    }
  }, 0);

/** Messages a gateway journaled and has not finished with, as its log holds them now. */
function journalDepth(file: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT COUNT(*) FROM journal').pluck().get() as number;
  } finally {
    db.close();
  }
}


describe('three gateways on one broker', () => {
  let broker: MosquittoBroker | undefined;
  const sites: Site[] = [];
  const clients: MqttClient[] = [];
  afterAll(async () => {
    for (const s of sites) for (const g of s.running) g.proc.kill('SIGKILL');
    for (const c of clients) c.end(true);
    await broker?.stop();
  });

  it('should handle every block exactly once across the three logs with a shared subscription, also when one is killed mid-stream', async () => {
    broker = await startMosquitto();
    // Each 2048-sample block is a whole window of the classifier (window = hop = 2048).
    const s = site(broker.url, 'shared', () => ({ topic: '$share/gw/plant/{device}/vibration', window: 2048, hop: 2048, decoder: { ...VIBRATION_DECODER, samplesPerMessage: 2048 } }));
    sites.push(s);
    await Promise.all(s.configs.map((_, i) => start(s, i)));
    await sleep(300);

    const devices = ['press-1', 'press-2', 'pump-1', 'fan-1'];
    const blocks = 60;
    const pub = await client(broker.url, { clientId: 'shared-plant', protocolVersion: 5 });
    clients.push(pub);
    const sent: Array<{ device: string; seq: number; key: string }> = [];
    const acks: Promise<void>[] = [];
    for (let seq = 0; seq < blocks; seq++) {
      for (const device of devices) {
        const topic = `plant/${device}/vibration`;
        const payload = vibrationBlock(seq, 2048);
        sent.push({ device, seq, key: contentHash(topic, payload) });
        acks.push(publish(pub, topic, payload));
      }
      if (seq >= 20 && seq < 40) continue; // a burst: the gateways have messages in flight...
      if (seq === 40) {
        // ...when one of them dies without a word, with messages journaled and not yet logged;
        // it comes back under the same client id.
        // Frozen (SIGSTOP) it cannot commit, so journal rows seen in its log then are still
        // there when SIGKILL comes.
        const victim = s.running[1];
        for (let tries = 0; tries < 400; tries++) {
          victim.proc.kill('SIGSTOP');
          if (journalDepth(s.configs[1].storage.path) > 0) break;
          victim.proc.kill('SIGCONT');
          await sleep(5);
        }
        victim.proc.kill('SIGKILL');
        await victim.exited;
        await sleep(500);
        await start(s, 1);
      }
      await sleep(40);
    }
    await Promise.all(acks);
    await waitFor(() => resultCount(s) >= sent.length, 30_000, `${sent.length} results across the three logs`).catch(() => undefined);
    await sleep(500); // anything logged twice would show up now
    await stopAll(s);

    const rows = results(s);
    const byKey = new Map<string, number[]>();
    for (const r of rows) {
      expect(r.keys).toHaveLength(1); // a block is one window
      byKey.set(r.keys[0], [...(byKey.get(r.keys[0]) ?? []), r.gateway]);
    }
    const missing = sent.filter((m) => !byKey.has(m.key)).map((m) => `${m.device}#${m.seq}`);
    const twice = sent.filter((m) => (byKey.get(m.key)?.length ?? 0) > 1).map((m) => `${m.device}#${m.seq} in ${byKey.get(m.key)!.join(', ')}`);
    expect(missing, 'blocks without a result').toEqual([]);
    expect(twice, 'blocks logged more than once').toEqual([]);
    expect(rows).toHaveLength(sent.length);
    // The kill hit messages journaled and not yet logged, which the restarted gateway replayed.
    expect(s.running[1].output()).toMatch(/replayed \d+ message/);
    // The broker did share: every gateway took part.
    expect(new Set(rows.map((r) => r.gateway)).size).toBe(GATEWAYS);
  }, 110_000);

  it('should keep each device on one gateway with device partitions, and cover every device', async () => {
    broker ??= await startMosquitto();
    const s = site(broker.url, 'partition', (i) => ({ topic: 'plant/{device}/vibration', partition: { index: i, count: GATEWAYS } }));
    sites.push(s);
    await Promise.all(s.configs.map((_, i) => start(s, i)));
    await sleep(300);

    const devices = Array.from({ length: 9 }, (_, k) => `line-${k + 1}`);
    // Precondition: the devices fall in every partition, so each gateway has work.
    expect(new Set(devices.map((d) => partitionOf(d, GATEWAYS))).size).toBe(GATEWAYS);
    // Small blocks (128 samples): a window of 2048 spans 16 messages of one device.
    const size = 128;
    const blocks = 64; // 8192 samples: windows at 0, 1024, ..., 6144
    const perDevice = Math.floor((blocks * size - 2048) / 1024) + 1;
    const pub = await client(broker.url, { clientId: 'partition-plant', protocolVersion: 5 });
    clients.push(pub);
    const acks: Promise<void>[] = [];
    for (let seq = 0; seq < blocks; seq++) {
      for (const device of devices) acks.push(publish(pub, `plant/${device}/vibration`, vibrationBlock(seq, size)));
      await sleep(5);
    }
    await Promise.all(acks);
    await waitFor(() => resultCount(s) >= devices.length * perDevice, 30_000, `${devices.length * perDevice} results across the three logs`).catch(() => undefined);
    await sleep(300);
    await stopAll(s);

    const rows = results(s);
    for (const device of devices) {
      const mine = rows.filter((r) => r.device === device);
      expect(new Set(mine.map((r) => r.gateway)), `${device}: the logs holding its windows`).toEqual(new Set([partitionOf(device, GATEWAYS)]));
      expect(mine.map((r) => r.startMs), `${device}: its windows, each once`).toEqual(Array.from({ length: perDevice }, (_, k) => 1_700_000_000_000 + (k * 1024 * 1000) / 5120));
    }
    expect(rows).toHaveLength(devices.length * perDevice);
  }, 60_000);
});

describe('a partitioned gateway', () => {
  let broker: MosquittoBroker | undefined;
  let gateway: Gateway | undefined;
  let pub: MqttClient | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    pub?.end(true);
    await gateway?.stop();
    await broker?.stop();
    broker = gateway = pub = undefined;
  });

  const robots = Array.from({ length: 8 }, (_, k) => `robot-0${k + 1}`);
  // One robot the hash gives to the other gateway, placed on this one by the map.
  const pinned = robots.find((d) => partitionOf(d, 2) === 1)!;
  const owned = robots.filter((d) => d === pinned || partitionOf(d, 2) === 0);
  const speeds = { topic: 'machine/{device}/speed', qos: 1, decoder: { kind: 'json', channels: ['speed'] }, model: 'speed-table' };

  async function run(
    pipelines: Array<Record<string, unknown>>,
    before?: (identity: MessageIdentity) => Promise<void>,
  ): Promise<{ identified: string[]; routed: string[]; journaled: Array<{ pipeline: string; topic: string }>; metrics: string; log: string }> {
    broker = await startMosquitto();
    const log = path.join(tempDir(), 'log.db');
    const config = parseGatewayConfig(
      {
        broker: { url: broker.url, protocol: 4, clientId: 'partitioned-gw', reconnectMs: 100, persistentSession: true },
        models: speedTableModelsDir(),
        storage: { path: log },
        http: { port: 0, host: '127.0.0.1' },
        engine: { backend: 'wasm', threads: 1 },
        pipelines,
      },
      'partitioned gateway config',
    );
    const identified: string[] = [];
    const identify = MessageIdentity.prototype.identify;
    vi.spyOn(MessageIdentity.prototype, 'identify').mockImplementation(function (this: MessageIdentity, packet, receivedMs) {
      identified.push(packet.topic);
      return identify.call(this, packet, receivedMs);
    });
    // What mqtt.js handed over (the gateway's handler): what the gate did not drop on arrival.
    const routed: string[] = [];
    const route = (Gateway.prototype as unknown as { route: (packet: { topic: string }) => Promise<void> }).route;
    vi.spyOn(Gateway.prototype as unknown as { route: (packet: { topic: string }) => Promise<void> }, 'route').mockImplementation(function (this: Gateway, packet) {
      routed.push(packet.topic);
      return route.call(this, packet);
    });
    const journaled: Array<{ pipeline: string; topic: string }> = [];
    const journalSoon = ResultStore.prototype.journalSoon;
    vi.spyOn(ResultStore.prototype, 'journalSoon').mockImplementation(function (this: ResultStore, entry) {
      journaled.push({ pipeline: entry.pipeline, topic: entry.topic });
      return journalSoon.call(this, entry);
    });
    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    await before?.((gateway as unknown as { identity: MessageIdentity }).identity);
    pub = await client(broker.url, { clientId: 'partitioned-plant' });
    const sent: Promise<void>[] = [];
    for (let k = 0; k < 5; k++) for (const d of robots) sent.push(publish(pub, `machine/${d}/speed`, JSON.stringify({ speed: 1 + k / 10 })));
    // No device at all: taken by every pipeline, and dead-lettered by decode.
    sent.push(publish(pub, 'machine//speed', JSON.stringify({ speed: 1 })));
    await Promise.all(sent);
    const source = (gateway as unknown as { source: { heldAcks: number } }).source;
    const expected = pipelines.reduce((n, p) => n + (p.partition ? owned.length : robots.length) * 5, 0);
    await waitFor(() => gateway!.log.counts().results >= expected && source.heldAcks === 0, 20_000, `${expected} results and every acknowledgement sent`);
    const metrics = await gateway.metrics.text();
    await gateway.stop();
    return { identified, routed, journaled, metrics, log };
  }

  /** Results per device in the log (both pipelines run the same model). */
  const resultsPerDevice = (log: string): Record<string, number> => {
    const db = new Database(log, { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT device, COUNT(*) AS n FROM results GROUP BY device').all() as Array<{ device: string; n: number }>;
      return Object.fromEntries(rows.map((r) => [r.device, r.n]));
    } finally {
      db.close();
    }
  };
  const counter = (metrics: string, name: string, pipeline: string): number => Number(metrics.split('\n').find((l) => l.startsWith(`${name}{pipeline="${pipeline}"}`))?.split(' ').at(-1) ?? 0);

  it('should acknowledge and drop the messages of devices another gateway owns before identifying, counting or journaling them', async () => {
    const { identified, routed, journaled, metrics, log } = await run([{ name: 'mine', ...speeds, partition: { index: 0, count: 2, devices: { [pinned]: 0 } } }]);
    const ownTopic = (t: string) => t === 'machine//speed' || owned.some((d) => t === `machine/${d}/speed`);
    expect(owned.length).toBeLessThan(robots.length); // precondition: the other gateway has devices
    expect(routed.filter((t) => !ownTopic(t)), 'messages of other partitions handed over by mqtt.js (not dropped on arrival)').toEqual([]);
    expect(identified.filter((t) => !ownTopic(t)), 'messages of other partitions identified (hashed)').toEqual([]);
    expect(journaled.filter((j) => !ownTopic(j.topic)), 'messages of other partitions journaled').toEqual([]);
    expect(identified).toHaveLength(owned.length * 5 + 1);
    expect(counter(metrics, 'edge_infer_messages_total', 'mine')).toBe(owned.length * 5 + 1);
    expect(counter(metrics, 'edge_infer_other_partition_messages_total', 'mine')).toBe((robots.length - owned.length) * 5);
    expect(resultsPerDevice(log)).toEqual(Object.fromEntries(owned.map((d) => [d, 5])));
    expect(metrics).toMatch(/edge_infer_dead_letters_total\{pipeline="mine",code="E_INPUT_VALUE"\} 1/);
  }, 30_000);

  it('should hand a message of another partition over as before when its packet id still carries a message of ours, counting it once', async () => {
    const total = robots.length * 5 + 1;
    const { identified, routed, journaled, metrics } = await run([{ name: 'mine', ...speeds, partition: { index: 0, count: 2, devices: { [pinned]: 0 } } }], async (identity) => {
      // Every packet id the broker will use carries a message of ours whose acknowledgement the
      // broker has not been seen to read: a message under one of them must reach pass().
      const own = `machine/${owned[0]}/speed`;
      await Promise.all(Array.from({ length: total + 16 }, (_, k) => identity.identify({ topic: own, payload: Buffer.from(`earlier ${k}`), qos: 1, messageId: k + 1 }, Date.now()).recorded));
    });
    const ownTopic = (t: string) => t === 'machine//speed' || owned.some((d) => t === `machine/${d}/speed`);
    expect(routed.filter((t) => !ownTopic(t))).toHaveLength((robots.length - owned.length) * 5);
    expect(identified.filter((t) => !ownTopic(t)), 'messages of other partitions identified (hashed)').toHaveLength(0);
    expect(journaled.filter((j) => !ownTopic(j.topic))).toEqual([]);
    expect(counter(metrics, 'edge_infer_other_partition_messages_total', 'mine')).toBe((robots.length - owned.length) * 5);
    expect(counter(metrics, 'edge_infer_messages_total', 'mine')).toBe(owned.length * 5 + 1);
  }, 30_000);

  it('should drop a message only when no pipeline takes it: a pipeline without a partition still gets every device', async () => {
    const { identified, journaled, metrics, log } = await run([
      { name: 'mine', ...speeds, partition: { index: 0, count: 2, devices: { [pinned]: 0 } } },
      { name: 'all', ...speeds },
    ]);
    expect(identified).toHaveLength(robots.length * 5 + 1);
    expect(new Set(journaled.filter((j) => j.pipeline === 'mine').map((j) => j.topic.split('/')[1]))).toEqual(new Set([...owned, '']));
    expect(journaled.filter((j) => j.pipeline === 'all')).toHaveLength(robots.length * 5 + 1);
    expect(counter(metrics, 'edge_infer_messages_total', 'mine')).toBe(owned.length * 5 + 1);
    expect(counter(metrics, 'edge_infer_messages_total', 'all')).toBe(robots.length * 5 + 1);
    expect(counter(metrics, 'edge_infer_other_partition_messages_total', 'mine')).toBe((robots.length - owned.length) * 5);
    expect(resultsPerDevice(log)).toEqual(Object.fromEntries(robots.map((d) => [d, owned.includes(d) ? 10 : 5])));
  }, 30_000);
});
