// The runtime config node's worker threads: its model nodes make their features and run their
// models on the runtime's pool, sending and logging what they send and log without it.
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import edgeInferNodes from '../../nodes/index';
import type { RuntimeNode } from '../../nodes/runtime-node';
import { bundledModelsDir } from '../../runtime/paths';
import { ResultStore } from '../../runtime/store';
import { defaultWorkers } from '../../runtime/stream';
import { collect, helper, pumpWindow, until, userDir } from './helpers';

const WINDOWS = 6;


beforeAll(() => {
  helper.settings({ userDir, edgeInfer: { modelsDir: bundledModelsDir() } });
});

afterEach(async () => {
  await helper.unload();
});

/** Scores of WINDOWS windows through the anomaly node of a runtime with `workers`, and what its log holds. */
async function scores(workers: number | string, db: string): Promise<{ scores: number[]; logged: number; threads: number | undefined }> {
  await helper.load(edgeInferNodes, [
    { id: 'f', type: 'tab' },
    { id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', dbPath: db, workers },
    { id: 'm', z: 'f', type: 'edge-infer-vibration-anomaly', runtime: 'rt', variant: 'fp32', wires: [['out']] },
    { id: 'out', z: 'f', type: 'helper' },
  ]);
  const rt = helper.getNode('rt') as unknown as RuntimeNode;
  const out = collect(helper.getNode('out'));
  for (let i = 0; i < WINDOWS; i++) helper.getNode('m').receive({ topic: `pump-${i}`, payload: pumpWindow(40 + i) });
  const errors: string[] = [];
  helper.getNode('m').on('call:error', ((call: { args: unknown[] }) => errors.push(String(call.args[0]))) as never);
  helper.getNode('m').on('call:warn', ((call: { args: unknown[] }) => errors.push(String(call.args[0]))) as never);
  await until(() => out.length === WINDOWS || errors.length > 0, 20_000, `${WINDOWS} results`);
  expect(errors).toEqual([]);
  const threads = rt.resources.workerPool()?.size;
  await helper.unload();
  const store = ResultStore.open({ path: db });
  const logged = store.counts().results;
  await store.close();
  // One window per device: the results come in the order of their devices.
  return { scores: out.map((m) => Number(m.payload.score)), logged, threads };
}

describe('the runtime config node with worker threads', () => {
  it('should send and log the results it sends and logs without them', async () => {
    const inThread = await scores(0, path.join(userDir, 'workers-0.db'));
    const pooled = await scores(1, path.join(userDir, 'workers-1.db'));
    expect(inThread.threads).toBeUndefined();
    expect(pooled.threads).toBe(1);
    expect(pooled.logged).toBe(WINDOWS);
    expect(inThread.logged).toBe(WINDOWS);
    pooled.scores.forEach((s, i) => expect(s).toBeCloseTo(inThread.scores[i], 4));
  });

  it("should take 'auto' as one thread per core but one, and warn of a setting that is not a number of threads", async () => {
    await helper.load(edgeInferNodes, [
      { id: 'rt-auto', type: 'edge-infer-runtime', log: false, workers: 'auto' },
      { id: 'rt-bad', type: 'edge-infer-runtime', log: false, workers: 'many' },
      { id: 'rt-neg', type: 'edge-infer-runtime', log: false, workers: -1 },
      { id: 'rt-none', type: 'edge-infer-runtime', log: false },
    ]);
    const workers = (id: string) => (helper.getNode(id) as unknown as RuntimeNode).resources.options.workers;
    expect(workers('rt-auto')).toBe(defaultWorkers());
    expect(workers('rt-bad')).toBe(0);
    expect(workers('rt-neg')).toBe(0);
    expect(workers('rt-none')).toBe(0);
    const warnings = (helper.log().args as Array<[{ level: number; msg: unknown }]>).filter(([e]) => e.level === helper.log().WARN).map(([e]) => String(e.msg));
    expect(warnings).toContainEqual(expect.stringMatching(/workers must be auto or a whole number of threads from 0 to 64, got many; running in Node-RED's thread/));
    expect(warnings).toContainEqual(expect.stringMatching(/workers must be auto or a whole number of threads from 0 to 64, got -1/));
  });
});
