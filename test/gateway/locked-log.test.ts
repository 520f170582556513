// Another process holds the log's write lock (BEGIN IMMEDIATE) past the busy timeout while
// blocks stream in, then the gateway is killed and restarted. Commits that failed meanwhile must
// neither lose windows (a later commit's cursor passing them, so the replay skips them) nor log
// any twice: in the end every window of the stream is in the log exactly once.
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { BUSY_TIMEOUT_MS } from '../../runtime/store/store';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { ChildGateway, client, publish, tempDir, testConfig, vibrationBlock, waitFor } from '../helpers/gateway';

const DEVICES = ['press-1', 'press-2'];
const BLOCKS = 60;
const BLOCK = 512;
// Window 2048, hop 1024: the last window of 60 blocks starts at block 56.
const WINDOWS = Math.floor((BLOCKS - 4) / 2) + 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the log locked by another process while blocks stream in', () => {
  let broker: MosquittoBroker | undefined;
  let pub: MqttClient | undefined;
  let gateway: ChildGateway | undefined;
  afterAll(async () => {
    await gateway?.kill();
    pub?.end(true);
    await broker?.stop();
  });

  it('should log every window once after commits failed for longer than the busy timeout and the gateway was killed', async () => {
    broker = await startMosquitto();
    const dir = tempDir('edge-infer-locked-');
    const db = path.join(dir, 'log.db');
    // Results wait up to a second to share a commit (journal rows commit at once): the lock below
    // is taken while a burst's results wait.
    const config = testConfig(broker.url, { storage: { path: db, batchMs: 1000 }, broker: { url: broker.url, protocol: 4, clientId: 'gw-locked', reconnectMs: 100, persistentSession: true } });
    gateway = new ChildGateway(config, path.join(dir, 'gateway.json'));
    await gateway.start();
    pub = await client(broker.url, { clientId: 'locked-publisher', clean: true });

    for (let seq = 0; seq < BLOCKS; seq++) {
      if (seq === 20) {
        // A burst, and while the gateway works on it another process (a backup tool, say) takes
        // the write lock and keeps it past the gateway's busy timeout: the burst's results
        // cannot be committed, nor can later messages be journaled.
        await Promise.all(Array.from({ length: 16 }, (_, i) => DEVICES.map((device) => publish(pub!, `plant/${device}/vibration`, vibrationBlock(seq + i, BLOCK)))).flat());
        await sleep(300);
        const other = new Database(db);
        other.exec('BEGIN IMMEDIATE');
        await sleep(BUSY_TIMEOUT_MS + 1500);
        other.exec('COMMIT');
        other.close();
        seq += 15;
        continue;
      }
      for (const device of DEVICES) await publish(pub, `plant/${device}/vibration`, vibrationBlock(seq, BLOCK));
      await sleep(30);
      if (seq === 45) await gateway.crashAndRestart();
    }
    const count = (sql: string): number => {
      const file = new Database(db, { readonly: true });
      try {
        return file.prepare(sql).pluck().get() as number;
      } finally {
        file.close();
      }
    };
    await waitFor(() => count('SELECT COUNT(*) FROM results') >= 2 * DEVICES.length * WINDOWS, 60_000, 'every window logged').catch(() => undefined);
    await gateway.stop();

    const log = new Database(db, { readonly: true });
    try {
      const twice = log.prepare('SELECT model, device, window_start_ms, COUNT(*) AS n FROM results GROUP BY model, device, window_start_ms HAVING n > 1').all();
      expect(twice).toEqual([]);
      const perStream = log.prepare('SELECT model, device, COUNT(*) AS n FROM results GROUP BY model, device ORDER BY model, device').all();
      expect(perStream).toEqual(['fault-classifier', 'vibration-anomaly'].flatMap((model) => DEVICES.map((device) => ({ model, device, n: WINDOWS }))));
      expect(log.prepare('SELECT COUNT(*) FROM dead_letters').pluck().get()).toBe(0);
    } finally {
      log.close();
    }
    // The lock did what it is here for: commits of results failed, and were tried again.
    expect(gateway.output).toMatch(/the log could not commit \d+ unit\(s\): database is locked/);
    expect(gateway.output).toMatch(/the log commits again/);
  }, 180_000);
});
