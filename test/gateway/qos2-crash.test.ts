// An inbound QoS 2 message survives a SIGKILL of the gateway between its PUBREC and the broker's
// PUBREL: the gateway keeps it in its SQLite file before answering PUBREC, and after the restart
// the broker's PUBREL (persistent session) finds it there. A proxy between the gateway and
// Mosquitto holds the PUBREL back, so the kill lands exactly in that gap.
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { client, spawnGateway, tempDir, waitFor } from '../helpers/gateway';
import { gatherModel } from '../helpers/models';
import { type MqttProxy, PUBREL, startMqttProxy } from '../helpers/mqtt-proxy';
import { modelsDir, speedCard } from '../helpers/speed-models';

function count(db: string, sql: string): number {
  const file = new Database(db, { readonly: true });
  try {
    return file.prepare(sql).pluck().get() as number;
  } finally {
    file.close();
  }
}

describe('an inbound QoS 2 message and a gateway killed after its PUBREC', () => {
  let broker: MosquittoBroker | undefined;
  let proxy: MqttProxy | undefined;
  let pub: MqttClient | undefined;
  let running: ReturnType<typeof spawnGateway> | undefined;
  afterAll(async () => {
    running?.proc.kill('SIGKILL');
    pub?.end(true);
    await proxy?.close();
    await broker?.stop();
  });

  it.each([4, 5] as const)('should be processed after the restart, when the broker releases it (MQTT %i)', async (protocol) => {
    broker = await startMosquitto();
    proxy = await startMqttProxy(broker.port);
    const dir = tempDir('edge-infer-qos2-');
    const db = path.join(dir, 'log.db');
    const config = parseGatewayConfig(
      {
        broker: { url: proxy.url, protocol, clientId: `gw-qos2-${protocol}`, reconnectMs: 100, persistentSession: true },
        models: modelsDir([{ card: speedCard('speed-table'), onnx: gatherModel() }]),
        storage: { path: db },
        http: { port: 0, host: '127.0.0.1' },
        engine: { backend: 'wasm', threads: 1 },
        pipelines: [{ name: 'speeds', topic: 'machine/{device}/speed', qos: 2, decoder: { kind: 'json', channels: ['speed'] }, model: 'speed-table' }],
      },
      'qos2 config',
    );
    const configFile = path.join(dir, 'gateway.json');
    running = spawnGateway(config, configFile);
    await waitFor(() => running!.output().includes('/health'), 30_000, 'the gateway to start');

    proxy.dropToClient.add(PUBREL);
    pub = await client(broker.url, { clientId: `qos2-publisher-${protocol}` });
    await new Promise<void>((resolve, reject) => pub!.publish('machine/q-1/speed', JSON.stringify({ speed: 1 }), { qos: 2 }, (err) => (err ? reject(err) : resolve())));
    // The broker sent PUBREL: the gateway had answered PUBREC, so the message was on its disk.
    await waitFor(() => (proxy!.dropped.get(PUBREL) ?? 0) >= 1, 10_000, 'the PUBREL');
    expect(count(db, 'SELECT COUNT(*) FROM mqtt_incoming')).toBe(1);
    expect(count(db, 'SELECT COUNT(*) FROM journal')).toBe(0);

    const victim = running;
    victim.proc.kill('SIGKILL');
    await victim.exited;
    proxy.dropToClient.clear();
    running = spawnGateway(config, configFile);
    await waitFor(() => count(db, 'SELECT COUNT(*) FROM results') === 1, 30_000, 'the result of the QoS 2 message');
    expect(count(db, "SELECT score FROM results WHERE device = 'q-1'")).toBe(10);
    await waitFor(() => count(db, 'SELECT COUNT(*) FROM mqtt_incoming') === 0, 10_000, 'the held copy to go');
    const last = running;
    last.proc.kill('SIGTERM');
    expect(await last.exited).toBe(0);
    running = undefined;
    expect(count(db, 'SELECT COUNT(*) FROM results')).toBe(1);
    pub.end(true);
    pub = undefined;
    await proxy.close();
    proxy = undefined;
    await broker.stop();
    broker = undefined;
  }, 90_000);
});
