import { existsSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import edgeInferNodes from '../../nodes/index';
import type { RuntimeNode } from '../../nodes/runtime-node';
import { bundledModelsDir } from '../../runtime/paths';
import { ResultStore } from '../../runtime/store';
import type { VariantEntry } from '../../runtime/model';
import { collect, helper, pumpWindow, until, userDir } from './helpers';

const IN_FLIGHT = 80;

/** Files this process holds open under `prefix` (the database and its -wal and -shm files). */
function openFiles(prefix: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(prefix)) open.push(target);
    } catch {
      // closed while we looked
    }
  }
  return open;
}

/**
 * One window through each model node of `twoModels` (so their sessions are loaded), then 80 more
 * each (three runs' worth), handed to their schedulers but not yet run.
 */
async function inFlight(seed: number): Promise<void> {
  const out = collect(helper.getNode('out'));
  helper.getNode('a').receive({ topic: 'warm', payload: pumpWindow(seed) });
  helper.getNode('b').receive({ topic: 'warm', payload: pumpWindow(seed) });
  await until(() => out.length === 2, 15_000, 'both models loaded');
  for (let i = 1; i <= IN_FLIGHT; i++) {
    helper.getNode('a').receive({ topic: `d${i}`, payload: pumpWindow(seed + i) });
    helper.getNode('b').receive({ topic: `d${i}`, payload: pumpWindow(seed + i) });
  }
  // The input handlers run (the windows go to the schedulers) before anything closes.
  await new Promise((r) => setImmediate(r));
}

/**
 * What the nodes report with node.error, read at the nodes themselves: the helper's spies are
 * gone once it unloads, and a stop is when these errors would come.
 */
function reportedErrors(...ids: string[]): string[] {
  const errors: string[] = [];
  for (const id of ids) Object.assign(helper.getNode(id), { error: (err: unknown) => errors.push(String(err)) });
  return errors;
}

/** A flow of two model nodes on one runtime that logs to `db`. */
function twoModels(db: string): object[] {
  return [
    { id: 'f', type: 'tab' },
    { id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', dbPath: db, recordEvery: 1 },
    { id: 'a', z: 'f', type: TYPE, runtime: 'rt', variant: 'fp32', wires: [['out']] },
    { id: 'b', z: 'f', type: 'edge-infer-vibration-anomaly', runtime: 'rt', variant: 'fp32', wires: [['out']] },
    { id: 'out', z: 'f', type: 'helper' },
  ];
}

const TYPE = 'edge-infer-fault-classifier';


beforeAll(() => {
  helper.settings({ userDir, edgeInfer: { modelsDir: bundledModelsDir() } });
});

afterEach(async () => {
  await helper.unload();
});

describe('the runtime config node', () => {
  it('should be shared by model nodes and count them', async () => {
    await helper.load(edgeInferNodes, [
      { id: 'f', type: 'tab' },
      { id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', log: false },
      { id: 'a', z: 'f', type: TYPE, runtime: 'rt', wires: [] },
      { id: 'b', z: 'f', type: 'edge-infer-vibration-anomaly', runtime: 'rt', wires: [] },
    ]);
    const rt = helper.getNode('rt') as unknown as RuntimeNode;
    expect(rt.resources.userCount).toBe(2);
    expect(rt.resources.options).toMatchObject({ backend: 'wasm', dbPath: '' });
  });

  it('should fall back to the default age limit, with a warning, for retentionDays of 0 or less, and still log', async () => {
    const db = path.join(userDir, 'retention.db');
    await helper.load(edgeInferNodes, [
      { id: 'f', type: 'tab' },
      { id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', dbPath: db, retentionDays: 0 },
      { id: 'm', z: 'f', type: TYPE, runtime: 'rt', wires: [['out']] },
      { id: 'out', z: 'f', type: 'helper' },
    ]);
    const rt = helper.getNode('rt') as unknown as RuntimeNode;
    expect(rt.resources.options.retentionDays).toBe(30);
    const warnings = (helper.log().args as Array<[{ level: number; msg: unknown }]>).filter(([e]) => e.level === helper.log().WARN).map(([e]) => String(e.msg));
    expect(warnings).toContainEqual(expect.stringMatching(/retentionDays must be more than 0, got 0; keeping 30 days/));
    const errors: string[] = [];
    helper.getNode('m').on('call:error', ((call: { args: unknown[] }) => errors.push(String(call.args[0]))) as never);
    const out = collect(helper.getNode('out'));
    helper.getNode('m').receive({ topic: 'p', payload: pumpWindow(3) });
    await until(() => out.length === 1, 15_000, 'a result');
    await helper.unload();
    expect(errors).toEqual([]);
    const store = ResultStore.open({ path: db });
    expect(store.counts().results).toBe(1);
    await store.close();
  });

  it('should fall back to defaults for settings that are not numbers', async () => {
    await helper.load(edgeInferNodes, [{ id: 'rt', type: 'edge-infer-runtime', threads: 'many', retentionDays: '', recordEvery: 'x' }]);
    const rt = helper.getNode('rt') as unknown as RuntimeNode;
    expect(rt.resources.options).toMatchObject({ threads: 1, retentionDays: 30, recordEvery: 20, backend: 'auto', weights: 'fast' });
    expect(rt.resources.options.dbPath).toBe(path.join(userDir, 'edge-infer.db'));
  });

  it('should not create a log when logging is off', async () => {
    const db = path.join(userDir, 'never.db');
    await helper.load(edgeInferNodes, [
      { id: 'f', type: 'tab' },
      { id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', log: false, dbPath: db },
      { id: 'm', z: 'f', type: TYPE, runtime: 'rt', wires: [['out']] },
      { id: 'out', z: 'f', type: 'helper' },
    ]);
    const out = collect(helper.getNode('out'));
    helper.getNode('m').receive({ topic: 'p', payload: pumpWindow(1) });
    await until(() => out.length === 1, 15_000, 'a result');
    expect(existsSync(db)).toBe(false);
  });

  it('should keep sending results when its log cannot be written, reporting the error', async () => {
    // A folder that cannot exist: its parent is a file.
    const blocker = path.join(userDir, 'not-a-folder');
    writeFileSync(blocker, 'a file, not a folder');
    await helper.load(edgeInferNodes, [
      { id: 'f', type: 'tab' },
      { id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', dbPath: path.join(blocker, 'cannot.db') },
      { id: 'm', z: 'f', type: TYPE, runtime: 'rt', wires: [['out']] },
      { id: 'out', z: 'f', type: 'helper' },
    ]);
    const out = collect(helper.getNode('out'));
    const errors: string[] = [];
    helper.getNode('m').on('call:error', ((call: { args: unknown[] }) => errors.push(String(call.args[0]))) as never);
    helper.getNode('m').receive({ topic: 'p', payload: pumpWindow(2) });
    await until(() => out.length === 1, 15_000, 'a result');
    await until(() => errors.length > 0, 5000, 'the log error');
    expect(errors[0]).toMatch(/results not logged: .*cannot\.db/);
  });

  it('should close after its model nodes on a stop: every window in flight run and logged, then the log file closed', async () => {
    const db = path.join(userDir, 'stop.db');
    await helper.load(edgeInferNodes, twoModels(db));
    const errors = reportedErrors('a', 'b');
    const resources = (helper.getNode('rt') as unknown as RuntimeNode).resources;
    await inFlight(40);
    // Node-RED starts every close at once: the runtime's with its model nodes'.
    await helper.unload();
    expect(errors).toEqual([]);
    expect(openFiles(db)).toEqual([]);
    // Closed for good: nothing opens the log or a session again.
    expect(() => resources.log()).toThrow(/runtime is closed/);
    await expect(resources.session({ id: 'fault-classifier', variant: 'fp32', file: 'x.onnx', mtimeMs: 0 } as VariantEntry)).rejects.toThrow(/runtime is closed/);
    expect(openFiles(db)).toEqual([]);
    const store = ResultStore.open({ path: db });
    expect(store.counts().results).toBe(2 + 2 * IN_FLIGHT);
    await store.close();
    rmSync(db); // nothing holds it
  });

  it('should run and log the windows in flight on a full redeploy, and leave the old log closed', async () => {
    const db = path.join(userDir, 'redeploy.db');
    await helper.load(edgeInferNodes, twoModels(db));
    const errors = reportedErrors('a', 'b');
    await inFlight(200);
    const redeployed = twoModels(db).map((n) => ((n as { id: string }).id === 'rt' ? { ...n, name: 'changed' } : n));
    await (helper as unknown as { _redNodes: { setFlows(f: object[], c: object, type: string): Promise<unknown> } })._redNodes.setFlows(redeployed, {}, 'full');
    await until(() => helper.getNode('rt')?.name === 'changed', 5000, 'the new flow');
    expect(errors).toEqual([]);
    // The new runtime opens the log when it first writes; the old one closed it.
    expect(openFiles(db)).toEqual([]);
    const store = ResultStore.open({ path: db });
    expect(store.counts().results).toBe(2 + 2 * IN_FLIGHT);
    await store.close();
  });

  it('should release its models and log when the last model node closes', async () => {
    await helper.load(edgeInferNodes, [
      { id: 'f', type: 'tab' },
      { id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', log: false },
      { id: 'm', z: 'f', type: TYPE, runtime: 'rt', wires: [] },
    ]);
    const rt = helper.getNode('rt') as unknown as RuntimeNode;
    const resources = rt.resources;
    await helper.unload();
    expect(resources.userCount).toBe(0);
  });
});
