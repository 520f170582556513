// Redeliveries told by the protocol, not by content: a flat-lined sensor (one-sample JSON without
// timestamps, every message the same bytes) on a real Mosquitto with a persistent session. A DUP
// whose first delivery never reached the gateway is a message to log; a DUP of a message already
// journaled (its acknowledgement lost with the connection) is recognised and not logged twice;
// and across kill -9 of a gateway process, every message the broker acknowledged to the sensor is
// logged exactly once.
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Random } from '../../devices/random';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { Gateway } from '../../runtime/gateway/gateway';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { client, publish, spawnGateway, tempDir, waitFor } from '../helpers/gateway';
import { type MqttProxy, startMqttProxy } from '../helpers/mqtt-proxy';
import { gatherModel } from '../helpers/models';
import { modelsDir, speedCard } from '../helpers/speed-models';

const PUBLISH = 3;
const FLAT = JSON.stringify({ speed: 3.2 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function config(brokerUrl: string, clientId: string, db = path.join(tempDir(), 'log.db')) {
  return parseGatewayConfig(
    {
      broker: { url: brokerUrl, protocol: 4, clientId, reconnectMs: 100, persistentSession: true },
      models: modelsDir([{ card: speedCard('speed-table'), onnx: gatherModel() }]),
      storage: { path: db, sync: 'normal' },
      http: { port: 0, host: '127.0.0.1' },
      engine: { backend: 'wasm', threads: 1 },
      // A window of one sample: every message is one result.
      pipelines: [{ name: 'speeds', topic: 'machine/{device}/speed', qos: 1, decoder: { kind: 'json', channels: ['speed'] }, model: 'speed-table' }],
    },
    'redelivery test config',
  );
}

const duplicates = async (gateway: Gateway): Promise<number> => {
  const line = (await gateway.metrics.text()).split('\n').find((l) => l.startsWith('edge_infer_duplicate_messages_total{'));
  return line ? Number(line.split(' ').at(-1)) : 0;
};

describe('redeliveries of a flat-lined sensor, by packet id and DUP', () => {
  let broker: MosquittoBroker | undefined;
  let proxy: MqttProxy | undefined;
  let gateway: Gateway | undefined;
  let pub: MqttClient | undefined;
  let child: ReturnType<typeof spawnGateway> | undefined;
  afterEach(async () => {
    child?.proc.kill('SIGKILL');
    pub?.end(true);
    await gateway?.stop();
    await proxy?.close();
    await broker?.stop();
    broker = proxy = gateway = pub = child = undefined;
  });

  async function flatLined(clientId: string): Promise<Gateway> {
    broker = await startMosquitto();
    proxy = await startMqttProxy(broker.port);
    gateway = new Gateway(config(proxy.url, clientId), () => undefined);
    await gateway.start();
    pub = await client(broker.url, { clientId: `${clientId}-sensor` });
    for (let i = 0; i < 3; i++) await publish(pub, 'machine/oven-1/speed', FLAT);
    await waitFor(() => gateway!.log.counts().results === 3, 10_000, 'three readings logged');
    await gateway.pipelines[0].drain();
    return gateway;
  }

  it('should log a reading whose first delivery was lost when the broker redelivers it with DUP, though its bytes equal readings already logged', async () => {
    const gw = await flatLined('gw-lost-first');
    // The fourth reading's PUBLISH is lost on its way to the gateway, then the connection dies.
    proxy!.dropToClient.add(PUBLISH);
    await publish(pub!, 'machine/oven-1/speed', FLAT);
    await waitFor(() => proxy!.dropped.get(PUBLISH) === 1, 5000, 'the PUBLISH lost');
    proxy!.dropToClient.clear();
    proxy!.cut();
    // Mosquitto sends it again, marked DUP: a message the gateway never had.
    await waitFor(() => gw.log.counts().results === 4, 10_000, 'the redelivered reading logged').catch(() => undefined);
    await sleep(300);
    expect(gw.log.counts().results).toBe(4);
    expect(await duplicates(gw)).toBe(0);
  });

  it('should recognise a DUP of a reading already journaled and logged (its PUBACK lost with the connection) and not log it twice', async () => {
    const gw = await flatLined('gw-ack-lost');
    // From here nothing the gateway sends reaches the broker (PUBACK, the gate's PINGREQ...): the
    // link died on the way there.
    for (let t = 1; t < 16; t++) proxy!.dropToBroker.add(t);
    pub!.publish('machine/oven-1/speed', FLAT, { qos: 1 });
    await waitFor(() => gw.log.counts().results === 4, 10_000, 'the fourth reading logged');
    await gw.pipelines[0].drain();
    await waitFor(() => proxy!.fromClient.some((p) => p.type === 4 && p.conn === 0), 5000, 'its PUBACK sent (and lost)');
    proxy!.dropToBroker.clear();
    proxy!.cut();
    await waitFor(async () => (await duplicates(gw)) === 1, 10_000, 'the redelivery recognised');
    await sleep(300);
    expect(gw.log.counts().results).toBe(4);
    // Acknowledged this time: Mosquitto sends nothing more.
    expect(proxy!.fromClient.filter((p) => p.type === 4 && p.conn === 1)).toHaveLength(1);
  });

  it('should take every reading of two flat-lined sensors into the log once across 6 kill -9 of the gateway process', async () => {
    broker = await startMosquitto();
    const dir = tempDir('edge-infer-flat-');
    const db = path.join(dir, 'log.db');
    const cfg = config(broker.url, 'gw-flat-kill', db);
    const configFile = path.join(dir, 'gateway.json');
    child = spawnGateway(cfg, configFile);
    await waitFor(() => child!.output().includes('/health'), 30_000, 'the gateway to start');
    await sleep(300);
    pub = await client(broker.url, { clientId: 'flat-sensors', clean: true });
    const DEVICES = ['oven-1', 'oven-2'];
    const PER_DEVICE = 250;
    const EVERY_MS = 20;
    let acked = 0;
    const publishing = (async () => {
      const acks: Promise<void>[] = [];
      for (let i = 0; i < PER_DEVICE; i++) {
        for (const d of DEVICES) {
          acks.push(publish(pub!, `machine/${d}/speed`, FLAT).then(() => void acked++));
          await sleep(EVERY_MS / DEVICES.length);
        }
      }
      await Promise.all(acks);
    })();
    const random = new Random(Number(process.env.EDGE_INFER_CRASH_SEED ?? 8), 'flat-kills');
    const streamMs = PER_DEVICE * EVERY_MS;
    const moments = Array.from({ length: 6 }, () => 300 + random.uniform() * (streamMs - 300)).sort((a, b) => a - b);
    const t0 = Date.now();
    const outputs: string[] = [];
    for (const at of moments) {
      await sleep(Math.max(0, t0 + at - Date.now()));
      const victim = child!;
      victim.proc.kill('SIGKILL');
      await victim.exited;
      outputs.push(victim.output());
      child = spawnGateway(cfg, configFile);
    }
    await publishing;
    expect(acked).toBe(PER_DEVICE * DEVICES.length);
    const last = child!;
    const port = await waitFor(() => /http:\/\/127\.0\.0\.1:(\d+)\/health/.exec(last.output())?.[1], 30_000, 'the last gateway to start');
    const count = (): Array<{ device: string; n: number }> => {
      const file = new Database(db, { readonly: true });
      try {
        return file.prepare('SELECT device, COUNT(*) AS n FROM results GROUP BY device ORDER BY device').all() as Array<{ device: string; n: number }>;
      } finally {
        file.close();
      }
    };
    const expected = DEVICES.map((device) => ({ device, n: PER_DEVICE }));
    await waitFor(
      async () => {
        const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { journal: number };
        return health.journal === 0 && JSON.stringify(count()) === JSON.stringify(expected);
      },
      20_000,
      'every reading logged',
    ).catch(() => undefined);
    await sleep(500); // a reading logged twice would show up now
    last.proc.kill('SIGTERM');
    expect(await last.exited).toBe(0);
    outputs.push(last.output());
    child = undefined;
    // These readings carry no time: a window's start is the reading's arrival in ms, and several
    // can arrive in one ms. A replay tells the logged window from a journaled one of the same ms by
    // its messages, so it skips none of them (one reading a window: a journaled reading's window
    // was never logged).
    const skipped = [...outputs.join('\n').matchAll(/(\d+) window\(s\) not logged again/g)].reduce((n, m) => n + Number(m[1]), 0);
    const log = new Database(db, { readonly: true });
    try {
      expect(log.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(log.prepare('SELECT COUNT(*) FROM dead_letters').pluck().get()).toBe(0);
      // One result per reading: every reading the broker acknowledged to the sensors, none twice.
      const perDevice = count();
      for (const d of perDevice) expect(d.n, `${d.device}: readings logged`).toBeLessThanOrEqual(PER_DEVICE);
      const logged = perDevice.reduce((n, d) => n + d.n, 0);
      expect({ logged, skippedByReplay: skipped }).toEqual({ logged: PER_DEVICE * DEVICES.length, skippedByReplay: 0 });
      const keys = (log.prepare('SELECT message_keys FROM results').pluck().all() as string[]).flatMap((k) => JSON.parse(k) as string[]);
      expect(new Set(keys).size).toBe(keys.length);
    } finally {
      log.close();
    }
  }, 120_000);
});
