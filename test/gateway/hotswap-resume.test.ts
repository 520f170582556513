// An update acknowledged (staged) but not yet checked when the gateway stops is not lost: the next
// start checks and swaps it in from its staged files. The second update is held behind the first,
// whose probation lasts until the stop. An update in service when the gateway stops serves again
// after the start, checked again; with its staged files gone the configured variant serves, and
// the log says why.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import type { GatewayConfig } from '../../runtime/gateway/config';
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

  /** A gateway serving fault-classifier fp32 from a models folder of its own, fed by two pumps until the log has recorded 20 windows (the agreement check's). */
  async function started(modelUpdates: Record<string, unknown>): Promise<GatewayConfig> {
    broker ??= await startMosquitto();
    const modelsDir = tempDir('edge-infer-hotswap-resume-');
    mkdirSync(path.join(modelsDir, MODEL));
    for (const f of [`${MODEL}.fp32.onnx`, `${MODEL}.fp32.model.json`]) copyFileSync(path.join(bundledModelsDir(), MODEL, f), path.join(modelsDir, MODEL, f));
    const config = testConfig(broker.url, { models: modelsDir, modelUpdates: { watch: false, agreement: { windows: 20, minWindows: 10 }, ...modelUpdates } }, { recordEvery: 1 });
    config.pipelines = config.pipelines.filter((p) => p.name === 'classifier');
    config.storage.retention = {};
    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    pub = await client(broker.url);
    streamer = new Streamer(pub, ['pump-1', 'pump-2'], 20);
    streamer.start();
    await waitFor(() => gateway!.log.windows(MODEL, { limit: 20 }).length >= 20, 30_000, 'recorded windows');
    return config;
  }

  it('should be checked and swapped in at the next start', async () => {
    // A probation longer than the test: the first swap holds every later update of the model back.
    const config = await started({ healthBatches: 1000 });

    const log = () => gateway!.log.modelUpdates().list({ model: MODEL });
    const first = updatePayload(exampleVariant(MODEL, 'int8'));
    await publish(pub, TOPIC, first);
    await waitFor(() => log().some((u) => u.sha256 === headerOf(first).sha256 && u.state === 'active'), 20_000, 'int8 active');
    const second = updatePayload(exampleVariant(MODEL, 'int8-dynamic'));
    const sha = headerOf(second).sha256 as string;
    await publish(pub, TOPIC, second);
    await waitFor(() => log().some((u) => u.sha256 === sha && u.state === 'staged'), 20_000, 'int8-dynamic staged');
    expect(log().filter((u) => u.sha256 === sha).map((u) => u.state)).toEqual(['staged']);
    await gateway!.stop();

    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    await waitFor(() => log().some((u) => u.sha256 === sha && u.state !== 'staged' && u.state !== 'checked'), 30_000, 'int8-dynamic decided');
    expect(log().filter((u) => u.sha256 === sha).map((u) => u.state).reverse()).toEqual(['staged', 'checked', 'active']);
    expect(gateway.pipelines[0].variant.variant).toBe('int8-dynamic');
    await waitFor(() => gateway!.log.latestPerDevice({ model: MODEL }).every((r) => r.variant === 'int8-dynamic'), 20_000, 'results of int8-dynamic');
    expect(gateway.log.counts().deadLetters).toBe(0);
  }, 120_000);

  it('should serve an update in service again after a restart, and say so when its staged files are gone', async () => {
    await streamer?.stop();
    pub?.end(true);
    await gateway?.stop();
    const staging = tempDir('edge-infer-hotswap-staging-');
    const config = await started({ staging, healthBatches: 2 });
    const log = () => gateway!.log.modelUpdates().list({ model: MODEL });
    const update = updatePayload(exampleVariant(MODEL, 'int8'));
    const sha = headerOf(update).sha256 as string;
    await publish(pub, TOPIC, update);
    await waitFor(() => gateway!.pipelines[0].variant.variant === 'int8' && !gateway!.pipelines[0].slot.swapping, 20_000, 'int8 in service, its probation served');
    await gateway!.stop();

    // The next start (after a stop or a power cut alike: each step was committed as it happened): the
    // update is put back, checked again, with one batch of probation.
    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    await waitFor(() => log().filter((u) => u.sha256 === sha && u.state === 'active').length === 2, 30_000, 'int8 in service again');
    expect(log().filter((u) => u.sha256 === sha).map((u) => u.state).reverse()).toEqual(['staged', 'checked', 'active', 'checked', 'active']);
    await waitFor(() => gateway!.pipelines[0].variant.variant === 'int8', 20_000, 'int8 serving');
    await gateway.stop();

    // Its staged files removed by hand: the configured variant serves, and the log says why.
    rmSync(path.join(staging, MODEL), { recursive: true, force: true });
    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    const refused = log().find((u) => u.sha256 === sha && u.state === 'refused');
    expect(refused?.reason).toMatch(/^mqtt:edge-infer\/models\/fault-classifier\/update: in service on classifier before the last stop, but its staged files in .+ are gone; fp32 serves$/);
    expect(gateway.pipelines[0].variant.variant).toBe('fp32');
    // Refused, it is not tried again at the next start.
    await gateway.stop();
    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    expect(log().filter((u) => u.sha256 === sha && u.state === 'refused')).toHaveLength(1);
    expect(gateway.log.counts().deadLetters).toBe(0);
  }, 120_000);
});
