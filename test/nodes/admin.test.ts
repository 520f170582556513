// The nodes' models and admin endpoints in node-red-node-test-helper: where the Quantize button
// puts a variant of an example model, which windows it calibrates and checks on, and what a
// models directory that is not there does to the node set.
import { existsSync, readFileSync, rmSync } from 'node:fs';
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
      for (let i = 0; i < 25; i++) helper.getNode('m').receive({ topic: `pump-${i}`, payload: pumpWindow(100 + i) });
      await until(() => out.length === 25, 30_000, '25 results');
      const log = (helper.getNode('rt') as unknown as RuntimeNode).resources.log()!;
      await until(() => log.windows('fault-classifier').length === 25, 5000, '25 recorded windows');

      const start = await request().post('/edge-infer/quantize').send({ model: 'fault-classifier', to: 'fp8-e4m3', samples: 20, runtime: 'rt' });
      expect(start.status, String(start.body.error)).toBe(200);
      let status: Record<string, unknown> = {};
      const poll = setInterval(() => void request().get(`/edge-infer/quantize/${String(start.body.id)}`).then((r) => (status = r.body as Record<string, unknown>)), 100);
      await until(() => status.state !== undefined && status.state !== 'running', 60_000, 'the job').finally(() => clearInterval(poll));
      expect(status.error).toBeUndefined();
      expect(status.state).toBe('done');
      // 25 windows read for 20 samples: 20 to calibrate, the newest 5 to check on.
      expect((status.report as { windows: number }).windows).toBe(5);
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
    } finally {
      rmSync(inPackage, { force: true });
      rmSync(inPackage.replace(/\.onnx$/, '.model.json'), { force: true });
      rmSync(inPackage.replace(/\.onnx$/, '.report.html'), { force: true });
    }
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
