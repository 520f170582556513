// Model hot-swap through a running gateway on Mosquitto, while devices stream: a signed update on
// MQTT is staged, checked and swapped in between batches; a wrongly signed one, an unsigned one,
// a corrupt file dropped in the models directory, a card for another model and a variant that
// disagrees (a real model with changed weights) are each refused with their reason while the
// serving variant serves on; a variant that overflows on loud input is rolled back after the
// swap. Through all of it, every window published is logged exactly once.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../runtime/gateway/gateway';
import { decodeModel, floatValues } from '../../runtime/onnx';
import { bundledModelsDir } from '../../runtime/paths';
import type { ModelUpdateRow } from '../../runtime/store';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { client, publish, tempDir, testConfig, waitFor } from '../helpers/gateway';
import { exampleVariant, headerOf, keyPair, renamed, signUpdate, updatePayload, withWeights } from '../helpers/hotswap';
import { Streamer } from '../helpers/streamer';

const MODEL = 'fault-classifier';
const TOPIC = `edge-infer/models/${MODEL}/update`;

describe('model hot-swap in the gateway', () => {
  let broker: MosquittoBroker;
  let gateway: Gateway;
  let pub: MqttClient;
  let streamer: Streamer;
  let modelsDir: string;
  const key = keyPair();
  const reported: string[] = [];
  const statuses: Array<{ state: string; variant: string | null; reason: string | null; pipeline: string | null }> = [];

  beforeAll(async () => {
    broker = await startMosquitto();
    modelsDir = tempDir('edge-infer-hotswap-models-');
    mkdirSync(path.join(modelsDir, MODEL));
    for (const f of [`${MODEL}.fp32.onnx`, `${MODEL}.fp32.model.json`]) copyFileSync(path.join(bundledModelsDir(), MODEL, f), path.join(modelsDir, MODEL, f));
    const config = testConfig(
      broker.url,
      {
        models: modelsDir,
        modelUpdates: { publicKey: key.publicPem, pollMs: 100, agreement: { windows: 20, minWindows: 10, minLabelAgreement: 0.9 }, healthBatches: 20 },
      },
      { recordEvery: 1 },
    );
    config.pipelines = config.pipelines.filter((p) => p.name === 'classifier');
    // The streams are dated 2023: retention by age would empty the recorded windows the check reads.
    config.storage.retention = {};
    gateway = new Gateway(config, (err) => reported.push(err instanceof Error ? err.message : String(err)));
    await gateway.start();
    pub = await client(broker.url);
    const sub = await client(broker.url);
    sub.on('message', (_t, payload) => statuses.push(JSON.parse(String(payload))));
    await new Promise((r) => sub.subscribe('edge-infer/models/+/status', { qos: 1 }, r));
    streamer = new Streamer(pub, ['pump-1', 'pump-2', 'pump-3'], 20);
    streamer.start();
    await waitFor(() => gateway.log.windows(MODEL, { limit: 30 }).length >= 30, 30_000, 'recorded windows');
  });

  afterAll(async () => {
    await streamer?.stop();
    pub?.end(true);
    await gateway?.stop();
    await broker?.stop();
  });

  const pipeline = () => gateway.pipelines[0];
  const updates = (): ModelUpdateRow[] => gateway.log.modelUpdates().list({ model: MODEL, limit: 1000 });
  /** Waits for the update log's newest step of this sha256 to be one of `states`. */
  const stepOf = (sha: string, states: string[]): Promise<ModelUpdateRow> => waitFor<ModelUpdateRow | undefined>(() => updates().find((u) => u.sha256 === sha && states.includes(u.state)), 20_000, `a ${states.join('/')} step of ${sha.slice(0, 12)}`) as Promise<ModelUpdateRow>;
  const shaOf = (payload: Buffer) => headerOf(payload).sha256 as string;

  it('should stage, check and swap in a signed update pushed on MQTT, and say so on the status topic', async () => {
    const int8 = exampleVariant(MODEL, 'int8');
    // The JSON form here (base64 model); the binary form (header line, raw model) in the others.
    const payload = updatePayload(int8, signUpdate(key.privateKey, MODEL, int8), 'json');
    // Twice, as a broker redelivering it would: staged twice, swapped in once.
    await Promise.all([publish(pub, TOPIC, payload), publish(pub, TOPIC, payload)]);
    const active = await stepOf(shaOf(payload), ['active', 'refused', 'rolled-back']);
    expect(active).toMatchObject({ state: 'active', pipeline: 'classifier', variant: 'int8', source: `mqtt:${TOPIC}` });
    await waitFor(() => !pipeline().slot.swapping, 20_000, 'the probation to end');
    await new Promise((r) => setTimeout(r, 300));
    expect(updates().filter((u) => u.sha256 === shaOf(payload)).map((u) => u.state).sort()).toEqual(['active', 'checked', 'staged', 'staged']);
    // The staged copy of what serves stays (the duplicate's check did not remove it).
    expect(existsSync(pipeline().variant.file)).toBe(true);
    expect(updates().find((u) => u.state === 'checked')!.reason).toMatch(/agrees with fp32 on \d+\.\d % of 20 recorded windows/);
    expect(pipeline().variant.variant).toBe('int8');
    await waitFor(() => gateway.log.latestPerDevice({ model: MODEL }).every((r) => r.variant === 'int8'), 20_000, 'results made by int8');
    await waitFor(() => statuses.some((s) => s.state === 'active' && s.variant === 'int8'), 10_000, 'the active status on MQTT');
    // /health and the dashboard's models page show what serves now.
    expect(gateway.health().pipelines[0].variant).toBe('int8');
    const models = (await (await fetch(`http://127.0.0.1:${gateway.httpPort}/api/models`)).json()) as { models: Array<{ variant: string; precision: string; bytes: number }> };
    expect(models.models[0]).toMatchObject({ variant: 'int8', precision: 'int8', bytes: int8.onnx.byteLength });
  });

  it('should refuse a wrongly signed update and an unsigned one, and keep serving', async () => {
    const fp32 = exampleVariant(MODEL, 'fp32');
    const other = keyPair();
    const wrong = updatePayload(fp32, signUpdate(other.privateKey, MODEL, fp32));
    await publish(pub, TOPIC, wrong);
    expect((await stepOf(shaOf(wrong), ['refused'])).reason).toMatch(/signature does not verify with modelUpdates\.publicKey/);
    // Signed, but for a card other than the one sent: the manifest covers the card too.
    const forged = updatePayload({ ...fp32, cardText: renamed(fp32.cardText, 'fp32-forged') }, signUpdate(key.privateKey, MODEL, fp32));
    await publish(pub, TOPIC, forged);
    await waitFor(() => updates().filter((u) => u.sha256 === shaOf(forged) && u.state === 'refused').length === 2, 20_000, 'the forged card refused');
    const unsigned = updatePayload(exampleVariant(MODEL, 'fp8-e4m3'));
    await publish(pub, TOPIC, unsigned);
    expect((await stepOf(shaOf(unsigned), ['refused'])).reason).toMatch(/not signed/);
    expect(pipeline().variant.variant).toBe('int8');
    await waitFor(() => statuses.some((s) => s.state === 'refused' && /does not verify/.test(s.reason ?? '')), 10_000, 'the refusal on MQTT');
  });

  it('should refuse a payload whose sha256 does not match its bytes, and one that is not JSON', async () => {
    const fp32 = exampleVariant(MODEL, 'fp32');
    const body = JSON.parse(String(updatePayload(fp32, undefined, 'json')));
    body.sha256 = 'a'.repeat(64);
    await publish(pub, TOPIC, JSON.stringify(body));
    await publish(pub, TOPIC, 'not json');
    await waitFor(() => updates().filter((u) => u.state === 'refused' && u.sha256 === null).length >= 2, 20_000, 'two refusals');
    const reasons = updates().filter((u) => u.sha256 === null).map((u) => u.reason);
    expect(reasons.some((r) => /sha256: the ONNX bytes hash to [0-9a-f]{64}, the update says a{64}/.test(r ?? ''))).toBe(true);
    expect(reasons.some((r) => /expected JSON of format edge-infer-model-update\/1/.test(r ?? ''))).toBe(true);
  });

  it('should refuse a corrupt model file dropped in the models directory, naming it', async () => {
    const fp32 = exampleVariant(MODEL, 'fp32');
    const corrupt = { onnx: fp32.onnx.subarray(0, 200_000), cardText: renamed(fp32.cardText, 'fp32-cut') };
    const stem = path.join(modelsDir, MODEL, `${MODEL}.fp32-cut`);
    // Card and signature first, the model last under a hidden name, then renamed: as documented.
    writeFileSync(`${stem}.model.json`, corrupt.cardText);
    writeFileSync(`${stem}.sig`, signUpdate(key.privateKey, MODEL, corrupt));
    writeFileSync(path.join(modelsDir, MODEL, '.incoming.onnx'), corrupt.onnx);
    const { renameSync } = await import('node:fs');
    renameSync(path.join(modelsDir, MODEL, '.incoming.onnx'), `${stem}.onnx`);
    const { createHash } = await import('node:crypto');
    const sha = createHash('sha256').update(corrupt.onnx).digest('hex');
    const refused = await stepOf(sha, ['refused', 'active']);
    expect(refused.state).toBe('refused');
    expect(refused.source).toBe(`file:${stem}.onnx`);
    expect(refused.reason).toMatch(/truncated|corrupt|not an ONNX|cannot/i);
    expect(pipeline().variant.variant).toBe('int8');
  });

  it('should refuse an unsigned file dropped in the models directory, and an update for a model no pipeline serves', async () => {
    const fp8 = exampleVariant(MODEL, 'fp8-e5m2');
    const stem = path.join(modelsDir, MODEL, `${MODEL}.fp8-e5m2`);
    writeFileSync(`${stem}.model.json`, fp8.cardText);
    writeFileSync(`${stem}.onnx`, fp8.onnx);
    const { createHash } = await import('node:crypto');
    const refused = await stepOf(createHash('sha256').update(fp8.onnx).digest('hex'), ['refused', 'active']);
    expect(refused).toMatchObject({ state: 'refused', source: `file:${stem}.onnx` });
    expect(refused.reason).toMatch(/it is not signed, and modelUpdates\.publicKey asks for signed updates/);
    const other = exampleVariant('vibration-anomaly', 'int8');
    const payload = updatePayload(other, signUpdate(key.privateKey, 'vibration-anomaly', other));
    await publish(pub, 'edge-infer/models/vibration-anomaly/update', payload);
    const step = await waitFor(() => gateway.log.modelUpdates().list({ model: 'vibration-anomaly' })[0], 20_000, 'the refusal of vibration-anomaly');
    expect(step).toMatchObject({ state: 'refused', sha256: shaOf(payload), pipeline: null });
    expect(step.reason).toMatch(/no pipeline serves model 'vibration-anomaly'/);
    expect(pipeline().variant.variant).toBe('int8');
  });

  it('should refuse a card for another model pushed on this model\'s topic', async () => {
    const other = exampleVariant('vibration-anomaly', 'int8');
    const payload = updatePayload(other, signUpdate(key.privateKey, MODEL, other));
    await publish(pub, TOPIC, payload);
    expect((await stepOf(shaOf(payload), ['refused'])).reason).toMatch(/card is for model 'vibration-anomaly', the update for 'fault-classifier'/);
  });

  it('should refuse a variant that disagrees with the serving one on the recorded windows (changed weights)', async () => {
    const fp32 = exampleVariant(MODEL, 'fp32');
    // A real model whose last layer now favours 'bearing' by far: the same shapes, another mind.
    const onnx = withWeights(fp32.onnx, (name, v) => {
      if (name !== 'logits.bias') return false;
      v[3] += 50;
      return true;
    });
    const bad = { onnx, cardText: renamed(fp32.cardText, 'fp32-retrained') };
    const payload = updatePayload(bad, signUpdate(key.privateKey, MODEL, bad));
    await publish(pub, TOPIC, payload);
    const refused = await stepOf(shaOf(payload), ['refused', 'active']);
    expect(refused.state).toBe('refused');
    expect(refused.reason).toMatch(/agrees with the serving variant on \d+\.\d % of the 20 newest recorded windows, the bound is 90\.0 %/);
    expect(pipeline().variant.variant).toBe('int8');
  });

  it('should roll back a variant that overflows on loud input after the swap, and lose no window', async () => {
    // Loud windows of pump-9 first, then enough quiet ones that the check reads only quiet windows.
    streamer.amplitude.set('pump-9', 40);
    await streamer.rounds(0);
    (streamer.devices as string[]).push('pump-9');
    await waitFor(() => gateway.log.windows(MODEL, { device: 'pump-9', limit: 5 }).length >= 5, 20_000, 'loud windows');
    (streamer.devices as string[]).pop();
    const loud = gateway.log.windows(MODEL, { device: 'pump-9', limit: 5 });
    await new Promise((r) => setTimeout(r, 2000));
    const quiet = gateway.log.windows(MODEL, { limit: 40 }).filter((w) => w.device !== 'pump-9');
    const fp32 = exampleVariant(MODEL, 'fp32');
    const onnx = overflowOnLoud(fp32.onnx, quiet.map((w) => w.features), loud.map((w) => w.features));
    const guarded = { onnx, cardText: renamed(fp32.cardText, 'fp32-guarded') };
    const payload = updatePayload(guarded, signUpdate(key.privateKey, MODEL, guarded));
    await publish(pub, TOPIC, payload);
    expect((await stepOf(shaOf(payload), ['active', 'refused'])).state).toBe('active');
    expect(pipeline().variant.variant).toBe('fp32-guarded');
    // Now pump-9 is loud again: the new variant's outputs overflow, and it is rolled back.
    (streamer.devices as string[]).push('pump-9');
    const rolled = await stepOf(shaOf(payload), ['rolled-back']);
    expect(rolled.reason).toMatch(/fp32-guarded rolled back to int8 on batch \d+ of its 20 on probation after the swap: output 'probabilities' of window \d+ of the batch is (NaN|Infinity|-Infinity)/);
    expect(pipeline().variant.variant).toBe('int8');
    await waitFor(() => statuses.some((s) => s.state === 'rolled-back'), 10_000, 'the rollback on MQTT');

    // Every window published is logged once, by int8, fp32 or (before its rollback) the guarded variant.
    await streamer.stop();
    const expected = streamer.expected();
    const total = [...expected.values()].reduce((a, b) => a + b, 0);
    await waitFor(() => gateway.log.counts().results >= total, 30_000, `${total} results`);
    await new Promise((r) => setTimeout(r, 500));
    expect(gateway.log.counts().results).toBe(total);
    expect(gateway.log.counts().deadLetters).toBe(0);
    const db = (await import('better-sqlite3')).default(gateway.config.storage.path, { readonly: true });
    const twice = db.prepare('SELECT device, window_start_ms, COUNT(*) AS n FROM results GROUP BY device, window_start_ms HAVING n > 1').all();
    const perDevice = new Map((db.prepare('SELECT device, COUNT(*) AS n FROM results GROUP BY device').all() as Array<{ device: string; n: number }>).map((r) => [r.device, r.n]));
    const loudVariants = db.prepare("SELECT DISTINCT variant FROM results WHERE device = 'pump-9' AND variant = 'fp32-guarded' AND score != score").all();
    db.close();
    expect(twice).toEqual([]);
    expect(perDevice).toEqual(expected);
    expect(loudVariants).toEqual([]);
  });
});

/**
 * The model with one hidden unit of fc1 turned into a tripwire: silent (ReLU at 0) on every quiet
 * window, and overflowing fc2 to infinity on loud ones. The unit watches the one normalized input
 * that separates loud from quiet windows best.
 */
function overflowOnLoud(onnx: Uint8Array, quiet: Float32Array[], loud: Float32Array[]): Uint8Array {
  const inits = new Map(decodeModel(onnx).graph!.initializer!.map((t) => [t.name, floatValues(t)]));
  const mean = inits.get('feature_mean')!;
  const std = inits.get('feature_std')!;
  const z = (f: Float32Array, k: number) => (f[k] - mean[k]) / std[k];
  let best = -1;
  let gap = -Infinity;
  let threshold = 0;
  for (let k = 0; k < mean.length; k++) {
    const hiQuiet = Math.max(...quiet.map((f) => z(f, k)));
    const loLoud = Math.min(...loud.map((f) => z(f, k)));
    if (loLoud - hiQuiet > gap) {
      gap = loLoud - hiQuiet;
      best = k;
      threshold = (hiQuiet + loLoud) / 2;
    }
  }
  if (!(gap > 0)) throw new Error(`no input separates loud from quiet windows (best gap ${gap})`);
  const hidden = 384;
  const unit = 0;
  return withWeights(onnx, (name, v) => {
    if (name === 'fc1.weight') {
      for (let k = 0; k < 768; k++) v[k * hidden + unit] = k === best ? 1e30 : 0;
      return true;
    }
    if (name === 'fc1.bias') {
      v[unit] = -1e30 * threshold;
      return true;
    }
    if (name === 'fc2.weight') {
      for (let j = 0; j < 96; j++) v[unit * 96 + j] = 1e30;
      return true;
    }
    return false;
  });
}
