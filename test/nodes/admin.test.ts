// The nodes' models and admin endpoints in node-red-node-test-helper: where the Quantize button
// puts a variant of an example model, which windows it calibrates and checks on, and what a
// models directory that is not there does to the node set.
import { cpSync, existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MachineSimulator, profileById } from '../../devices';
import edgeInferNodes from '../../nodes/index';
import { GATEWAY_MODELS_FOLDER } from '../../nodes/catalog';
import type { RuntimeNode } from '../../nodes/runtime-node';
import { featureShape, ModelRegistry } from '../../runtime/model';
import { bundledModelsDir } from '../../runtime/paths';
import { calibrationFromLog, loadCalibration } from '../../runtime/quant';
import { ResultStore } from '../../runtime/store';
import { computeFeatures } from '../../runtime/stream';
import { unavailableReason } from '../../runtime/engine';
import { collect, helper, until, userDir } from './helpers';

interface Request {
  get(url: string): Request;
  post(url: string): Request;
  send(body: object): Promise<{ status: number; body: Record<string, unknown> }>;
  then: Promise<{ status: number; body: unknown }>['then'];
}
const request = (): Request => (helper as unknown as { request(): Request }).request();

function pumpWindow(seed: number): Record<string, number[]> {
  const b = new MachineSimulator(profileById('pump-motor'), { seed }).next('vibration', 2048);
  return { vib_x: Array.from(b.channels.vib_x), vib_y: Array.from(b.channels.vib_y), vib_z: Array.from(b.channels.vib_z) };
}

afterEach(async () => {
  await helper.unload();
});

describe('the Quantize button', () => {
  it('should keep a variant of an example model in the user directory, not in the package, and offer it', async () => {
    helper.settings({ userDir, edgeInfer: {} }); // the default models directory: the package's
    const variantFile = 'fault-classifier.fp8-e4m3-gateway.onnx';
    const inPackage = path.join(bundledModelsDir(), 'fault-classifier', variantFile);
    const inUserDir = path.join(userDir, GATEWAY_MODELS_FOLDER, 'fault-classifier', variantFile);
    const db = path.join(userDir, 'quantize.db');
    try {
      await helper.load(edgeInferNodes, [
        { id: 'f', type: 'tab' },
        { id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', dbPath: db, recordEvery: 1 },
        { id: 'm', z: 'f', type: 'edge-infer-fault-classifier', runtime: 'rt', variant: 'fp32', wires: [['out']] },
        { id: 'out', z: 'f', type: 'helper' },
      ]);
      const out = collect(helper.getNode('out'));
      for (let i = 0; i < 250; i++) helper.getNode('m').receive({ topic: `pump-${i}`, payload: pumpWindow(100 + i) });
      await until(() => out.length === 250, 60_000, '250 results');
      const log = (helper.getNode('rt') as unknown as RuntimeNode).resources.log()!;
      await until(() => log.windows('fault-classifier').length === 250, 5000, '250 recorded windows');

      const start = await request().post('/edge-infer/quantize').send({ model: 'fault-classifier', to: 'fp8-e4m3', samples: 200, runtime: 'rt' });
      expect(start.status, String(start.body.error)).toBe(200);
      let status: Record<string, unknown> = {};
      const poll = setInterval(() => void request().get(`/edge-infer/quantize/${String(start.body.id)}`).then((r) => (status = r.body as Record<string, unknown>)), 100);
      await until(() => status.state !== undefined && status.state !== 'running', 60_000, 'the job').finally(() => clearInterval(poll));
      expect(status.error).toBeUndefined();
      expect(status.state).toBe('done');
      // 250 windows read for 200 samples: 200 to calibrate, the newest 50 to check on.
      expect((status.report as { windows: number }).windows).toBe(50);
      expect(existsSync(inUserDir)).toBe(true);
      expect(existsSync(inPackage)).toBe(false);
      const card = JSON.parse(readFileSync(inUserDir.replace(/\.onnx$/, '.model.json'), 'utf8')) as { variant: string };
      expect(card.variant).toBe('fp8-e4m3-gateway');
      // The catalog scans the user directory beside the examples: the editor offers the variant.
      let variants: string[] = [];
      const listed = async (): Promise<string[]> => {
        const res = await request().get('/edge-infer/models');
        const models = res.body as Array<{ id: string; variants: Array<{ variant: string }> }>;
        return models.find((m) => m.id === 'fault-classifier')!.variants.map((v) => v.variant);
      };
      const end = Date.now() + 10_000;
      while (!(variants = await listed()).includes('fp8-e4m3-gateway') && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      expect(variants).toContain('fp8-e4m3-gateway');
      expect(variants).toContain('fp32');

      // Again: a new name, and the first variant's files stay as they were.
      const first = readFileSync(inUserDir);
      const again = await quantize({ model: 'fault-classifier', to: 'fp8-e4m3', samples: 200, runtime: 'rt' });
      expect(again.state, again.error).toBe('done');
      expect(again.report!.variant).toBe('fp8-e4m3-gateway-2');
      expect(existsSync(inUserDir.replace('fp8-e4m3-gateway', 'fp8-e4m3-gateway-2'))).toBe(true);
      expect(readFileSync(inUserDir).equals(first)).toBe(true);
    } finally {
      rmSync(inPackage, { force: true });
      rmSync(inPackage.replace(/\.onnx$/, '.model.json'), { force: true });
      rmSync(inPackage.replace(/\.onnx$/, '.report.html'), { force: true });
    }
  });
});

type JobStatus = { id: string; state: string; error?: string; report?: { variant: string; windows: number; top1: number } };

/** Starts a job and polls it to its end. */
async function quantize(body: object): Promise<JobStatus> {
  const start = await request().post('/edge-infer/quantize').send(body);
  expect(start.status, String(start.body.error)).toBe(200);
  let status = start.body as JobStatus;
  const end = Date.now() + 120_000;
  while (status.state === 'running' && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    status = (await request().get(`/edge-infer/quantize/${status.id}`)).body as JobStatus;
  }
  return status;
}

/**
 * Writes `count` windows of a model to a log as the runtime records them: features of simulated
 * pumps (every other one with an imbalance), oldest first, each scaled by `scale(i)`.
 */
async function recordWindows(db: string, modelId: string, count: number, scale: (i: number) => number = () => 1): Promise<void> {
  const registry = await ModelRegistry.open(bundledModelsDir(), { watch: false });
  const card = registry.pick(modelId, 'fp32').card;
  await registry.close();
  const dims = featureShape(card.input);
  const windows = Array.from({ length: count }, (_, i) => {
    const sim = new MachineSimulator(profileById('pump-motor'), { seed: 500 + i, faults: i % 2 ? [{ type: 'imbalance', onsetS: 0, severity: 0.8 }] : [] });
    const b = sim.next('vibration', card.input.window);
    const features = computeFeatures(card.input, card.input.channels.map((c) => b.channels[c.name]));
    return { timeMs: 1_000_000 + i * 1000, device: `pump-${i % 7}`, model: modelId, features: features.map((v) => v * scale(i)), dims };
  });
  const store = ResultStore.open({ path: db });
  await store.commit({ windows });
  await store.close();
}

function runtimeFlow(db: string): object[] {
  return [{ id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', dbPath: db, recordEvery: 1 }];
}

describe('the Quantize button\'s refusals', () => {
  it('should refuse a log with too few windows for a check on 50 held-out windows, saying how many it has and needs', async () => {
    helper.settings({ userDir, edgeInfer: { modelsDir: bundledModelsDir() } });
    const db = path.join(userDir, 'few.db');
    await recordWindows(db, 'fault-classifier', 120);
    await helper.load(edgeInferNodes, runtimeFlow(db));
    const res = await request().post('/edge-infer/quantize').send({ model: 'fault-classifier', to: 'int8', samples: 1000, runtime: 'rt' });
    expect(res.status).toBe(400);
    expect(String(res.body.error)).toMatch(/few\.db: the log holds only 120 windows of model 'fault-classifier'; calibration needs at least 250 \(the newest fifth is held out to check the variant, and the check needs 50/);
    const small = await request().post('/edge-infer/quantize').send({ model: 'fault-classifier', to: 'int8', samples: 20, runtime: 'rt' });
    expect(small.status).toBe(400);
    expect(String(small.body.error)).toMatch(/samples must be a whole number ≥ 200 .*got 20/);
  });

  it('should refuse a variant that agrees with fp32 on fewer than 98 % of the held-out windows, and write no file', async () => {
    const modelsDir = path.join(userDir, 'refuse-models');
    cpSync(path.join(bundledModelsDir(), 'fault-classifier'), path.join(modelsDir, 'fault-classifier'), { recursive: true });
    helper.settings({ userDir, edgeInfer: { modelsDir } });
    const db = path.join(userDir, 'skewed.db');
    // The log's older windows (what int8 calibrates on) came from a sensor set a thousand times
    // too low; the newest fifth (the check) is right: the ranges int8 learned clip every real window.
    await recordWindows(db, 'fault-classifier', 250, (i) => (i < 200 ? 1e-3 : 1));
    await helper.load(edgeInferNodes, runtimeFlow(db));
    const status = await quantize({ model: 'fault-classifier', to: 'int8', samples: 200, runtime: 'rt' });
    expect(status.state).toBe('failed');
    expect(status.error).toMatch(/int8-gateway refused: it agrees with fp32 on \d+\.\d % of 50 held-out windows \(newest 50 windows of the log\), the bound is 98\.0 %\. No file was written\./);
    expect(readdirSync(path.join(modelsDir, 'fault-classifier')).filter((f) => f.includes('gateway'))).toEqual([]);
  });

  it('should run one job at a time per model (409 with the running job) and two at most (429)', async () => {
    const modelsDir = path.join(userDir, 'busy-models');
    for (const m of ['fault-classifier', 'fault-transformer', 'vibration-anomaly']) cpSync(path.join(bundledModelsDir(), m), path.join(modelsDir, m), { recursive: true });
    helper.settings({ userDir, edgeInfer: { modelsDir } });
    const db = path.join(userDir, 'busy.db');
    await recordWindows(db, 'fault-classifier', 250);
    await recordWindows(db, 'vibration-anomaly', 250);
    await helper.load(edgeInferNodes, runtimeFlow(db));
    const first = await request().post('/edge-infer/quantize').send({ model: 'fault-classifier', to: 'int8', samples: 200, runtime: 'rt' });
    expect(first.status, String(first.body.error)).toBe(200);
    const second = await request().post('/edge-infer/quantize').send({ model: 'fault-classifier', to: 'fp8-e4m3', samples: 200, runtime: 'rt' });
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ job: first.body.id, error: expect.stringMatching(new RegExp(`fault-classifier: quantization job ${String(first.body.id)} is still running`)) });
    const other = await request().post('/edge-infer/quantize').send({ model: 'vibration-anomaly', to: 'int8', samples: 200, runtime: 'rt' });
    expect(other.status, String(other.body.error)).toBe(200);
    const third = await request().post('/edge-infer/quantize').send({ model: 'fault-transformer', to: 'int8', samples: 200, runtime: 'rt' });
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ jobs: [first.body.id, other.body.id], error: expect.stringMatching(/2 quantization jobs are running .*at most 2 at once/) });
    // Once they end, the model takes a job again.
    const ended = async (id: unknown): Promise<void> => {
      const end = Date.now() + 120_000;
      while (((await request().get(`/edge-infer/quantize/${String(id)}`)).body as JobStatus).state === 'running' && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    };
    await ended(first.body.id);
    await ended(other.body.id);
    const after = await quantize({ model: 'fault-classifier', to: 'fp8-e4m3', samples: 200, runtime: 'rt' });
    expect(after.state, after.error).toBe('done');
  });
});

describe('the runtime node\'s backends', () => {
  it('should list the backend of each model loaded on a deployed runtime and why not native, and 404 for a runtime not deployed', async () => {
    helper.settings({ userDir, edgeInfer: { modelsDir: bundledModelsDir() } });
    await helper.load(edgeInferNodes, [
      { id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', log: false },
      { id: 'm', type: 'edge-infer-fault-classifier', runtime: 'rt', variant: 'fp32', wires: [['out']] },
      { id: 'out', type: 'helper' },
    ]);
    const out = collect(helper.getNode('out'));
    helper.getNode('m').receive({ topic: 'pump', payload: pumpWindow(3) });
    await until(() => out.length === 1, 15_000, 'a result');
    const res = await request().get('/edge-infer/runtimes/rt/backends');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ backend: 'wasm', models: [{ model: 'fault-classifier', variant: 'fp32', backend: 'wasm', why: 'the runtime asks for wasm' }] });
    expect((res.body as { native: string }).native).toEqual(unavailableReason('native') ?? 'available');
    const missing = await request().get('/edge-infer/runtimes/nope/backends');
    expect(missing.status).toBe(404);
    expect((missing.body as { error: string }).error).toBe("no deployed edge-infer runtime 'nope'");
  });
});

describe('calibration from the result log', () => {
  it('should calibrate on the older windows and hold out the newest, from an open store, a file and a db: source alike', async () => {
    const registry = await ModelRegistry.open(bundledModelsDir(), { watch: false });
    const fp32 = registry.pick('fault-classifier', 'fp32');
    await registry.close();
    const card = fp32.card;
    const dims = featureShape(card.input);
    const size = dims.reduce((a, b) => a * b, 1);
    const file = path.join(userDir, 'calibration.db');
    const store = ResultStore.open({ path: file });
    // 30 windows a second apart; each carries its number in its first feature.
    const windows = Array.from({ length: 30 }, (_, i) => {
      const features = new Float32Array(size);
      features[0] = i;
      return { timeMs: 1_000_000 + i * 1000, device: 'pump', model: card.id, features, dims };
    });
    await store.commit({ windows });
    const numbers = (feeds: Array<Record<string, { data: unknown }>>): number[] => feeds.map((f) => (f[card.input.tensor].data as Float32Array)[0]);

    const fromStore = await calibrationFromLog(store, card, { samples: 8 });
    // The newest ⌈8 × 1.25⌉ = 10 windows (20..29), in the order they were recorded.
    expect(numbers(fromStore.calibration as never)).toEqual([20, 21, 22, 23, 24, 25, 26, 27]);
    expect(numbers(fromStore.heldOut.windows as never)).toEqual([28, 29]);
    expect(fromStore.heldOut.source).toBe('newest 2 windows of the log');
    expect(fromStore.description).toBe(`result log ${file}, 8 windows`);
    await store.close();

    const fromFile = await calibrationFromLog(file, card, { samples: 8 });
    expect(numbers(fromFile.heldOut.windows as never)).toEqual([28, 29]);
    const fromSource = await loadCalibration({ kind: 'db', file }, card, fp32.signature, { samples: 8 });
    expect(numbers(fromSource.calibration as never)).toEqual([20, 21, 22, 23, 24, 25, 26, 27]);
    expect(numbers(fromSource.heldOut.windows as never)).toEqual([28, 29]);

    await expect(calibrationFromLog(file, card, { samples: 100, atLeast: 40, hint: 'let the flow run longer' })).rejects.toThrow(
      /the log holds only 30 windows of model 'fault-classifier'; calibration needs at least 40 \(let the flow run longer\)/,
    );
    await expect(calibrationFromLog(path.join(userDir, 'absent.db'), card, { samples: 8 })).rejects.toThrow(/absent\.db: no such result log/);
    expect(existsSync(path.join(userDir, 'absent.db'))).toBe(false);
  });
});

describe('a models directory that is not there', () => {
  it('should log a clear error and register no model types, while the runtime config node still loads', async () => {
    const missing = path.join(userDir, 'no-such-models');
    helper.settings({ userDir, edgeInfer: { modelsDir: missing } });
    await helper.load(edgeInferNodes, [{ id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', log: false }]);
    expect(helper.getNode('rt')).toBeTruthy();
    const errors = (helper.log().args as Array<[{ level: number; msg: unknown }]>).filter(([e]) => e.level === helper.log().ERROR).map(([e]) => String(e.msg));
    expect(errors).toContainEqual(expect.stringMatching(new RegExp(`edge-infer: settings\\.js edgeInfer\\.modelsDir: .*no-such-models: expected a models directory, it does not exist; no model nodes are registered`)));
    const registry = (helper as unknown as { _redNodes: { getType(t: string): unknown } })._redNodes;
    expect(registry.getType('edge-infer-runtime')).toBeTruthy();
    expect(registry.getType('edge-infer-fault-classifier')).toBeFalsy();
    const models = await request().get('/edge-infer/models');
    expect(models.body).toEqual([]);
  });
});
