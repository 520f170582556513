// Repeated problems in the gateway's log. A broker outage in a gateway process: Mosquitto goes
// away for 30 s while the gateway retries five times a second, and the gateway's output holds a
// handful of lines (the broker unreachable, then reachable again with how long and how many
// attempts), not one line per retry. A log locked by another process while messages come: every
// message fails its journal write and comes again, and that is one problem, not a line each.
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { Gateway } from '../../runtime/gateway/gateway';
import { BUSY_TIMEOUT_MS } from '../../runtime/store';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { ChildGateway, client, tempDir, waitFor } from '../helpers/gateway';
import { gatherModel } from '../helpers/models';
import { modelsDir, speedCard } from '../helpers/speed-models';

const OUTAGE_MS = 30_000;
const RECONNECT_MS = 200;

/** One speed-table pipeline on machine/{device}/speed, a fresh log. */
function config(brokerUrl: string, clientId: string) {
  return parseGatewayConfig(
    {
      broker: { url: brokerUrl, protocol: 5, clientId, reconnectMs: RECONNECT_MS, persistentSession: true },
      models: modelsDir([{ card: speedCard('speed-table'), onnx: gatherModel() }]),
      storage: { path: path.join(tempDir('edge-infer-quiet-'), 'log.db') },
      http: { port: 0, host: '127.0.0.1' },
      engine: { backend: 'wasm', threads: 1 },
      pipelines: [{ name: 'speeds', topic: 'machine/{device}/speed', decoder: { kind: 'json', channels: ['speed'] }, model: 'speed-table' }],
    },
    'quiet log test config',
  );
}

describe('the gateway log through a broker outage', () => {
  let broker: MosquittoBroker | undefined;
  let gateway: ChildGateway | undefined;
  afterAll(async () => {
    await gateway?.stop();
    await broker?.stop();
  });

  it('should write at most a handful of lines for a 30 s outage, the last saying the broker is back, after how long and how many attempts', async () => {
    broker = await startMosquitto();
    const c = config(broker.url, 'gw-quiet');
    gateway = new ChildGateway(c, path.join(path.dirname(c.storage.path), 'gateway.json'));
    await gateway.start();
    const before = gateway.output.length;

    await broker.stop();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    await broker.restart();
    const g = gateway;
    await waitFor(() => /reachable again/.test(g.output.slice(before)), 15_000, 'the line saying the broker is back');
    const port = gateway.port;
    expect(((await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { ok: boolean }).ok).toBe(true);

    const lines = gateway.output.slice(before).split('\n').filter((l) => l.trim() !== '');
    expect(lines.length, lines.join('\n')).toBeLessThanOrEqual(5);
    expect(lines[0]).toMatch(new RegExp(`^edge-infer: broker ${broker.url.replace(/[./]/g, '\\$&')} unreachable \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${broker.port}\\); retrying$`));
    const back = lines.find((l) => /reachable again/.test(l))!;
    expect(back).toMatch(/^edge-infer: broker \S+ reachable again after (29|3\d) s down \(since \d\d:\d\d:\d\d UTC\), \d+ failed attempts$/);
    // The gateway did retry all along (about five times a second), it only did not say so each time.
    const attempts = Number(/(\d+) failed attempts/.exec(back)![1]);
    expect(attempts).toBeGreaterThan((OUTAGE_MS / RECONNECT_MS) * 0.5);
  }, 90_000);

  it('should report messages that cannot be journaled while the log is locked elsewhere once, and once more when they are journaled again', async () => {
    const mosquitto = await startMosquitto();
    const reported: string[] = [];
    const c = config(mosquitto.url, 'gw-quiet-journal');
    const g = new Gateway(c, (err) => reported.push(err instanceof Error ? err.message : String(err)));
    const pub = await client(mosquitto.url, { clientId: 'quiet-journal-plant' });
    try {
      await g.start();
      // Another process (a backup tool, say) holds the write lock past the busy timeout while
      // messages come, one every 100 ms: each journal write waits the timeout and fails, each
      // failed message drops the connection, and the broker brings the messages again.
      const other = new Database(c.storage.path);
      other.exec('BEGIN IMMEDIATE');
      let sent = 0;
      const plant = setInterval(() => pub.publish(`machine/m-${sent % 3}/speed`, JSON.stringify({ speed: sent++ % 4 }), { qos: 1 }), 100);
      await new Promise((r) => setTimeout(r, 2 * BUSY_TIMEOUT_MS + 1000));
      other.exec('COMMIT');
      other.close();
      await new Promise((r) => setTimeout(r, 1000));
      clearInterval(plant);
      const total = sent;
      await waitFor(() => g.log.counts().results === total, 30_000, `all ${total} messages logged`);
      const journal = reported.filter((m) => /journal/.test(m));
      expect(journal.length, reported.join('\n')).toBeGreaterThanOrEqual(2);
      expect(journal.length, reported.join('\n')).toBeLessThanOrEqual(4);
      expect(journal[0]).toMatch(/^journal: \d+ message\(s\) and \d+ delivery record\(s\) not written: database is locked$/);
      expect(journal.at(-1)).toMatch(/^messages are journaled again after \d+ s \(since \d\d:\d\d:\d\d UTC\), \d+ failures?$/);
    } finally {
      pub.end(true);
      await g.stop();
      await mosquitto.stop();
    }
  }, 90_000);
});
