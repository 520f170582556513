// The gateway with its feature transforms and inference on worker threads (config `workers`):
// on one Mosquitto, the same stream logs the same results, window for window, as the gateway
// without workers, in window order per device, even when a thread dies halfway through (its
// batches run again on the thread that replaces it: nothing acknowledged is lost, nothing is
// logged twice, and no window becomes a dead letter).
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelSession } from '../../runtime/engine';
import { Gateway } from '../../runtime/gateway/gateway';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { client, publish, testConfig, vibrationBlock, waitFor } from '../helpers/gateway';

const DEVICES = 4;
const BLOCKS = 16; // 8,192 samples a device: 7 windows of 2048 every 1024
const WINDOWS = DEVICES * (Math.floor((BLOCKS * 512 - 2048) / 1024) + 1);
const T0 = 1_700_000_000_000;

interface Row {
  id: number;
  device: string;
  start: number;
  score: number;
}

async function run(broker: MosquittoBroker, pub: MqttClient, workers: number, killHalfway: boolean): Promise<{ rows: Row[]; deadLetters: number; journal: number; restarts: number }> {
  const config = testConfig(broker.url, { workers });
  config.pipelines = config.pipelines.filter((p) => p.model === 'vibration-anomaly');
  const gw = new Gateway(config, () => undefined);
  await gw.start();
  expect(gw.workers?.size ?? 0).toBe(workers);
  try {
    const send = async (from: number, to: number) => {
      for (let seq = from; seq < to; seq++) for (let d = 0; d < DEVICES; d++) await publish(pub, `plant/m${d}/vibration`, vibrationBlock(seq + 7 * d, 512, T0 + d));
    };
    await send(0, BLOCKS / 2);
    if (killHalfway) {
      // The second half streams in while a thread with a batch under way dies (checked every
      // turn of the event loop: a batch takes a few ms on its thread).
      const rest = send(BLOCKS / 2, BLOCKS);
      const end = Date.now() + 20_000;
      while (gw.workers!.busy === 0 && Date.now() < end) await new Promise((r) => setImmediate(r));
      const load = gw.workers!.load;
      expect(Math.max(...load)).toBeGreaterThan(0);
      await gw.workers!.kill(load.indexOf(Math.max(...load)));
      await rest;
    } else {
      await send(BLOCKS / 2, BLOCKS);
    }
    await waitFor(() => gw.log.counts().results >= WINDOWS, 60_000, `${WINDOWS} results`);
    const restarts = gw.workers?.restarts ?? 0;
    await gw.stop();
    const db = new Database(config.storage.path, { readonly: true });
    try {
      const rows = db.prepare('SELECT id, device, window_start_ms AS start, score FROM results ORDER BY id').all() as Row[];
      const deadLetters = db.prepare('SELECT COUNT(*) FROM dead_letters').pluck().get() as number;
      const journal = db.prepare('SELECT COUNT(*) FROM journal').pluck().get() as number;
      return { rows, deadLetters, journal, restarts };
    } finally {
      db.close();
    }
  } finally {
    await gw.stop();
  }
}

describe('the gateway on worker threads', () => {
  let broker: MosquittoBroker;
  let pub: MqttClient;
  beforeAll(async () => {
    broker = await startMosquitto();
    pub = await client(broker.url, { clientId: 'workers-publisher', clean: true });
  });
  afterAll(async () => {
    pub?.end(true);
    await broker?.stop();
  });

  it('should log what the gateway without workers logs, in window order per device, when a thread dies halfway', async () => {
    const inThread = await run(broker, pub, 0, false);
    const pooled = await run(broker, pub, 2, true);
    expect(pooled.restarts).toBe(1);
    for (const r of [inThread, pooled]) {
      expect(r.rows.length).toBe(WINDOWS);
      expect(r.deadLetters).toBe(0);
    }
    // Only the messages a window still waits for stay journaled (unacknowledged): the same ones.
    expect(pooled.journal).toBe(inThread.journal);
    expect(pooled.journal).toBeLessThanOrEqual(2 * DEVICES);
    const key = (r: Row) => `${r.device}@${r.start}`;
    // Each window once.
    expect(new Set(pooled.rows.map(key)).size).toBe(WINDOWS);
    const expected = new Map(inThread.rows.map((r) => [key(r), r.score]));
    for (const r of pooled.rows) expect(r.score).toBeCloseTo(expected.get(key(r))!, 5);
    // Per device, the log's order is the windows' order.
    for (let d = 0; d < DEVICES; d++) {
      const starts = pooled.rows.filter((r) => r.device === `m${d}`).map((r) => r.start);
      expect(starts).toEqual([...starts].sort((a, b) => a - b));
    }
  });
});

describe('a swap of variants on worker threads', () => {
  let broker: MosquittoBroker;
  let pub: MqttClient;
  beforeAll(async () => {
    broker = await startMosquitto();
    pub = await client(broker.url, { clientId: 'workers-swap-publisher', clean: true });
  });
  afterAll(async () => {
    pub?.end(true);
    await broker?.stop();
  });

  it('should run the swapped-in variant on the threads from its first batch, losing no window', async () => {
    // One thread is enough to show where the variant runs, and starts in half the time of two.
    const config = testConfig(broker.url, { workers: 1 });
    config.pipelines = config.pipelines.filter((p) => p.model === 'vibration-anomaly');
    const gw = new Gateway(config, () => undefined);
    await gw.start();
    try {
      const send = async (from: number, to: number) => {
        for (let seq = from; seq < to; seq++) for (let d = 0; d < DEVICES; d++) await publish(pub, `plant/m${d}/vibration`, vibrationBlock(seq + 7 * d, 512, T0 + d));
      };
      await send(0, BLOCKS / 2);
      const firstHalf = DEVICES * (Math.floor(((BLOCKS / 2) * 512 - 2048) / 1024) + 1);
      await waitFor(() => gw.log.counts().results >= firstHalf, 30_000, 'the first half');
      const pipeline = gw.pipelines[0];
      const file = pipeline.variant.file.replace('.fp32.onnx', '.int8.onnx');
      const int8 = await ModelSession.load(file, { backend: 'wasm', threads: 1, name: 'anomaly (int8)' });
      const swapped = pipeline.slot.swap({ session: int8, variant: 'int8' }, 2);
      await send(BLOCKS / 2, BLOCKS);
      await waitFor(() => gw.log.counts().results >= WINDOWS, 30_000, `${WINDOWS} results`);
      expect(await swapped).toEqual({ state: 'active' });
      // Its batches ran on the threads: the main thread's copy served none.
      expect(int8.stats.runs).toBe(0);
      expect(gw.workers!.busy).toBe(0);
    } finally {
      await gw.stop();
    }
    const db = new Database(config.storage.path, { readonly: true });
    try {
      const variants = db.prepare('SELECT variant, COUNT(*) AS n FROM results GROUP BY variant ORDER BY variant').all() as Array<{ variant: string; n: number }>;
      expect(variants.map((v) => v.variant)).toEqual(['fp32', 'int8']);
      expect(variants.reduce((a, v) => a + v.n, 0)).toBe(WINDOWS);
      expect(db.prepare('SELECT COUNT(*) FROM dead_letters').pluck().get()).toBe(0);
    } finally {
      db.close();
    }
  });
});

describe('the workers setting', () => {
  const base = { pipelines: [{ name: 'vib', topic: 'plant/{device}/vibration', decoder: { kind: 'float32', channels: ['vib_x'] }, model: 'fault-classifier' }] };
  const parse = (workers: unknown) => parseGatewayConfig({ ...base, workers }, 'gateway.yaml').workers;

  it("should default to 0 (in the main thread) and take a number of threads or 'auto'", () => {
    expect(parseGatewayConfig(base, 'gateway.yaml').workers).toBe(0);
    expect(parse(2)).toBe(2);
    expect(parse('auto')).toBe('auto');
  });

  it('should refuse what is not a number of threads, naming the field', () => {
    expect(() => parse(-1)).toThrow('gateway.yaml: workers: expected 0 (none), a number of threads, or auto');
    expect(() => parse(65)).toThrow('gateway.yaml: workers: expected at most 64 threads');
    expect(() => parse(1.5)).toThrow("gateway.yaml: workers: expected a number of threads (0: none) or 'auto'");
    expect(() => parse('many')).toThrow("gateway.yaml: workers: expected a number of threads (0: none) or 'auto'");
    expect(() => parse(Number.NaN)).toThrow('gateway.yaml: workers:');
  });
});
