// An update acknowledged (staged) but not yet checked when the gateway stops is not lost: the next
// start checks and swaps it in from its staged files. The second update is held behind the first,
// whose probation lasts until the stop.
import { copyFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../runtime/gateway/gateway';
import { bundledModelsDir } from '../../runtime/paths';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { client, publish, tempDir, testConfig, waitFor } from '../helpers/gateway';
import { exampleVariant, headerOf, updatePayload } from '../helpers/hotswap';
import { Streamer } from '../helpers/streamer';

const MODEL = 'fault-classifier';
const TOPIC = `edge-infer/models/${MODEL}/update`;

describe('an update staged when the gateway stops', () => {
  let broker: MosquittoBroker;
  let gateway: Gateway | undefined;
  let pub: MqttClient;
  let streamer: Streamer;

  afterAll(async () => {
    await streamer?.stop();
    pub?.end(true);
    await gateway?.stop();
    await broker?.stop();
  });

  it('should be checked and swapped in at the next start', async () => {
    broker = await startMosquitto();
    const modelsDir = tempDir('edge-infer-hotswap-resume-');
    mkdirSync(path.join(modelsDir, MODEL));
    for (const f of [`${MODEL}.fp32.onnx`, `${MODEL}.fp32.model.json`]) copyFileSync(path.join(bundledModelsDir(), MODEL, f), path.join(modelsDir, MODEL, f));
    // A probation longer than the test: the first swap holds every later update of the model back.
    const config = testConfig(broker.url, { models: modelsDir, modelUpdates: { watch: false, agreement: { windows: 20, minWindows: 10 }, healthBatches: 1000 } }, { recordEvery: 1 });
    config.pipelines = config.pipelines.filter((p) => p.name === 'classifier');
    config.storage.retention = {};
    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    pub = await client(broker.url);
    streamer = new Streamer(pub, ['pump-1', 'pump-2'], 20);
    streamer.start();
    await waitFor(() => gateway!.log.windows(MODEL, { limit: 20 }).length >= 20, 30_000, 'recorded windows');

    const log = () => gateway!.log.modelUpdates().list({ model: MODEL });
    const first = updatePayload(exampleVariant(MODEL, 'int8'));
    await publish(pub, TOPIC, first);
    await waitFor(() => log().some((u) => u.sha256 === headerOf(first).sha256 && u.state === 'active'), 20_000, 'int8 active');
    const second = updatePayload(exampleVariant(MODEL, 'int8-dynamic'));
    const sha = headerOf(second).sha256 as string;
    await publish(pub, TOPIC, second);
    await waitFor(() => log().some((u) => u.sha256 === sha && u.state === 'staged'), 20_000, 'int8-dynamic staged');
    expect(log().filter((u) => u.sha256 === sha).map((u) => u.state)).toEqual(['staged']);
    await gateway.stop();

    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    await waitFor(() => log().some((u) => u.sha256 === sha && u.state !== 'staged' && u.state !== 'checked'), 30_000, 'int8-dynamic decided');
    expect(log().filter((u) => u.sha256 === sha).map((u) => u.state).reverse()).toEqual(['staged', 'checked', 'active']);
    expect(gateway.pipelines[0].variant.variant).toBe('int8-dynamic');
    await waitFor(() => gateway!.log.latestPerDevice({ model: MODEL }).every((r) => r.variant === 'int8-dynamic'), 20_000, 'results of int8-dynamic');
    expect(gateway.log.counts().deadLetters).toBe(0);
  }, 120_000);
});
