// 100 model swaps while four devices stream through the gateway on Mosquitto: fault-classifier
// int8 and fp32 in turn, four in five pushed on MQTT and one in five dropped in the models
// directory. No window is lost or logged twice (the log's results per device against the blocks
// published), no batch mixes variants, and both variants made results.
import { copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../runtime/gateway/gateway';
import { bundledModelsDir } from '../../runtime/paths';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { client, publish, tempDir, testConfig, waitFor } from '../helpers/gateway';
import { exampleVariant, updatePayload } from '../helpers/hotswap';
import { Streamer } from '../helpers/streamer';

const MODEL = 'fault-classifier';
const SWAPS = 100;

describe('100 hot-swaps while streaming', () => {
  let broker: MosquittoBroker;
  let gateway: Gateway;
  let pub: MqttClient;
  const reported: string[] = [];

  afterAll(async () => {
    pub?.end(true);
    await gateway?.stop();
    await broker?.stop();
  });

  it('should swap int8 and fp32 100 times without losing or doubling a window', async () => {
    broker = await startMosquitto();
    const modelsDir = tempDir('edge-infer-hotswap-load-');
    const folder = path.join(modelsDir, MODEL);
    mkdirSync(folder);
    for (const f of [`${MODEL}.fp32.onnx`, `${MODEL}.fp32.model.json`]) copyFileSync(path.join(bundledModelsDir(), MODEL, f), path.join(folder, f));
    const config = testConfig(broker.url, { models: modelsDir, modelUpdates: { pollMs: 100, agreement: { windows: 20, minWindows: 10 }, healthBatches: 1 } }, { recordEvery: 1 });
    config.pipelines = config.pipelines.filter((p) => p.name === 'classifier');
    // The streams are dated 2023: retention by age would empty the recorded windows the check reads.
    config.storage.retention = {};
    gateway = new Gateway(config, (err) => reported.push(err instanceof Error ? err.message : String(err)));
    await gateway.start();
    pub = await client(broker.url);
    const streamer = new Streamer(pub, ['pump-1', 'pump-2', 'pump-3', 'pump-4'], 10);
    streamer.start();
    await waitFor(() => gateway.log.windows(MODEL, { limit: 20 }).length >= 20, 30_000, 'recorded windows');

    const variants = { int8: exampleVariant(MODEL, 'int8'), fp32: exampleVariant(MODEL, 'fp32') };
    const actives = () => gateway.log.modelUpdates().list({ model: MODEL, limit: 10_000 }).filter((u) => u.state === 'active').length;
    const refusals = () => gateway.log.modelUpdates().list({ model: MODEL, limit: 10_000 }).filter((u) => u.state === 'refused' || u.state === 'rolled-back');
    const t0 = Date.now();
    for (let i = 1; i <= SWAPS; i++) {
      const name = i % 2 === 1 ? 'int8' : 'fp32';
      const v = variants[name];
      if (i % 5 === 0) {
        // Dropped in: written under a hidden name, then renamed, card first.
        const stem = path.join(folder, `${MODEL}.${name}`);
        writeFileSync(`${stem}.model.json`, v.cardText);
        writeFileSync(path.join(folder, '.incoming'), v.onnx);
        renameSync(path.join(folder, '.incoming'), `${stem}.onnx`);
      } else {
        // Both payload forms: binary (header line and raw model) and JSON (base64 model).
        await publish(pub, `edge-infer/models/${MODEL}/update`, updatePayload(v, undefined, i % 4 === 1 ? 'json' : 'binary'));
      }
      await waitFor(() => actives() >= i || refusals().length > 0, 30_000, `swap ${i} to ${name}`);
      expect(refusals()).toEqual([]);
      // The probation (one batch) ends and the old session goes before the next swap is sent.
      await waitFor(() => !gateway.pipelines[0].slot.swapping, 10_000, `swap ${i} to end its probation`);
      expect(gateway.pipelines[0].variant.variant).toBe(name);
    }
    const seconds = (Date.now() - t0) / 1000;
    await streamer.stop();

    const expected = streamer.expected();
    const total = [...expected.values()].reduce((a, b) => a + b, 0);
    await waitFor(() => gateway.log.counts().results >= total, 60_000, `${total} results`);
    await new Promise((r) => setTimeout(r, 500));
    expect(gateway.log.counts().results).toBe(total);
    expect(gateway.log.counts().deadLetters).toBe(0);
    expect(gateway.pipelines[0].slot.sessions()).toHaveLength(1);
    const db = new Database(config.storage.path, { readonly: true });
    try {
      expect(db.prepare('SELECT device, window_start_ms FROM results GROUP BY device, window_start_ms HAVING COUNT(*) > 1').all()).toEqual([]);
      const perDevice = new Map((db.prepare('SELECT device, COUNT(*) AS n FROM results GROUP BY device').all() as Array<{ device: string; n: number }>).map((r) => [r.device, r.n]));
      expect(perDevice).toEqual(expected);
      // One batch is one commit unit: its results share processed_ms and latency_ms, and one variant.
      expect(db.prepare('SELECT processed_ms, latency_ms FROM results GROUP BY processed_ms, latency_ms HAVING COUNT(DISTINCT variant) > 1').all()).toEqual([]);
      const variantsSeen = (db.prepare('SELECT DISTINCT variant FROM results ORDER BY variant').all() as Array<{ variant: string }>).map((r) => r.variant);
      expect(variantsSeen).toEqual(['fp32', 'int8']);
      const steps = db.prepare("SELECT source FROM model_updates WHERE state = 'active'").all() as Array<{ source: string }>;
      expect(steps.filter((s) => s.source.startsWith('file:'))).toHaveLength(SWAPS / 5);
      expect(steps.filter((s) => s.source.startsWith('mqtt:'))).toHaveLength(SWAPS - SWAPS / 5);
    } finally {
      db.close();
    }
    console.log(`${SWAPS} swaps in ${seconds.toFixed(1)} s while ${total} windows streamed`);
  }, 600_000);
});
