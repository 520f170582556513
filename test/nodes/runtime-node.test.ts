import { existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MachineSimulator, profileById } from '../../devices';
import edgeInferNodes from '../../nodes/index';
import type { RuntimeNode } from '../../nodes/runtime-node';
import { bundledModelsDir } from '../../runtime/paths';
import { collect, helper, until, userDir } from './helpers';

const TYPE = 'edge-infer-fault-classifier';

function window(seed: number): Record<string, number[]> {
  const b = new MachineSimulator(profileById('pump-motor'), { seed }).next('vibration', 2048);
  return { vib_x: Array.from(b.channels.vib_x), vib_y: Array.from(b.channels.vib_y), vib_z: Array.from(b.channels.vib_z) };
}

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
    helper.getNode('m').receive({ topic: 'p', payload: window(1) });
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
    helper.getNode('m').receive({ topic: 'p', payload: window(2) });
    await until(() => out.length === 1, 15_000, 'a result');
    await until(() => errors.length > 0, 5000, 'the log error');
    expect(errors[0]).toMatch(/results not logged: .*cannot\.db/);
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
