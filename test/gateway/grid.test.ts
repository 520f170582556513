// A replay keeps each device's window grid. Blocks of 768 samples do not divide tumbling windows
// of 2048: after a kill -9 the journal's first block of a device starts inside a window, and a
// replay that started windows there would analyse samples twice and make windows a run without
// the crash would not have. Mosquitto with persistence, the gateway a child process killed at
// seeded moments; in the end every window starts on the grid 0, 2048, 4096, ... and is logged once.
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { Random } from '../../devices/random';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { ChildGateway, client, publish, tempDir, testConfig, vibrationBlock, waitFor } from '../helpers/gateway';

const BLOCK = 768;
const WINDOW = 2048;
const BLOCKS = 64; // 49,152 samples: 24 windows of 2048
const DEVICES = ['press-1', 'press-2'];
const KILLS = 4;
const RATE = 5120;
const T0 = 1_700_000_000_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the window grid across kill -9', () => {
  let broker: MosquittoBroker | undefined;
  let pub: MqttClient | undefined;
  let gateway: ChildGateway | undefined;
  afterAll(async () => {
    await gateway?.kill();
    pub?.end(true);
    await broker?.stop();
  });

  it('should log each tumbling window of 2048 once, on the grid, when 768-sample blocks stream across kills', async () => {
    broker = await startMosquitto();
    const dir = tempDir('edge-infer-grid-');
    const db = path.join(dir, 'log.db');
    const config = testConfig(broker.url, { storage: { path: db }, broker: { url: broker.url, protocol: 4, clientId: 'gw-grid', reconnectMs: 100, persistentSession: true } }, { window: WINDOW, hop: WINDOW });
    gateway = new ChildGateway(config, path.join(dir, 'gateway.json'));
    await gateway.start();
    pub = await client(broker.url, { clientId: 'grid-publisher', clean: true });

    const random = new Random(Number(process.env.EDGE_INFER_CRASH_SEED ?? 768), 'grid-kills');
    const killAt = new Set(Array.from({ length: KILLS }, () => 4 + Math.floor(random.uniform() * (BLOCKS - 8))));
    for (let seq = 0; seq < BLOCKS; seq++) {
      for (const device of DEVICES) await publish(pub, `plant/${device}/vibration`, vibrationBlock(seq, BLOCK, T0));
      await sleep(40);
      // Up again (after its replay) before the stream goes on, so the next kill finds work journaled.
      if (killAt.has(seq)) await gateway.crashAndRestart();
    }
    const port = gateway.port;
    const windows = Math.floor((BLOCKS * BLOCK) / WINDOW);
    const count = () => {
      const file = new Database(db, { readonly: true });
      try {
        return file.prepare('SELECT COUNT(*) FROM results').pluck().get() as number;
      } finally {
        file.close();
      }
    };
    await waitFor(async () => {
      const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { outbox: number };
      return health.outbox === 0 && count() >= 2 * DEVICES.length * windows;
    }, 30_000, 'every window logged').catch(() => undefined);
    await gateway.stop();

    const log = new Database(db, { readonly: true });
    try {
      const period = 1000 / RATE;
      const grid = Array.from({ length: windows }, (_, k) => T0 + k * WINDOW * period);
      for (const model of ['fault-classifier', 'vibration-anomaly']) {
        for (const device of DEVICES) {
          const starts = (log.prepare('SELECT window_start_ms FROM results WHERE model = ? AND device = ? ORDER BY window_start_ms').pluck().all(model, device) as number[]);
          expect(starts.map((s, i) => s - grid[i]).every((d) => Math.abs(d) < 1e-3), `${model} ${device}: window starts ${starts.join(', ')}`).toBe(true);
          expect(starts).toHaveLength(windows);
        }
      }
      expect(log.prepare('SELECT COUNT(*) FROM dead_letters').pluck().get()).toBe(0);
    } finally {
      log.close();
    }
    // The kills hit the gateway at work: some restarts had journaled blocks to replay.
    expect(gateway.output).toMatch(/replayed \d+ message/);
  }, 150_000);
});
