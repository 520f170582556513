// The example flows in node-red-node-test-helper, with their MQTT nodes swapped for helper nodes:
// the A/B flow pairs the two results of each window even when the payloads carry no time and the
// two branches see a message at different moments, as they do on a busy gateway.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MachineSimulator, profileById } from '../../devices';
import edgeInferNodes from '../../nodes/index';
import { bundledModelsDir, packageRoot } from '../../runtime/paths';
import { type TestNode, collect, helper, until, userDir } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const changeNode = require('@node-red/nodes/core/function/15-change.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const functionNode = require('@node-red/nodes/core/function/10-function.js');

type FlowNode = Record<string, unknown> & { id: string; type: string };

/** An example flow with its MQTT and debug nodes as helper nodes, on the wasm backend, logging nowhere. */
function example(name: string): FlowNode[] {
  const nodes = JSON.parse(readFileSync(path.join(packageRoot(), 'flows', `${name}.json`), 'utf8')) as FlowNode[];
  return nodes
    .filter((n) => n.type !== 'mqtt-broker' && n.type !== 'comment')
    .map((n) => {
      if (n.type === 'mqtt in' || n.type === 'mqtt out' || n.type === 'debug') return { id: n.id, z: n.z, type: 'helper', wires: n.wires ?? [] };
      if (n.type === 'edge-infer-runtime') return { ...n, backend: 'wasm', log: false };
      return n;
    });
}

/** Float32 blocks without edge-infer's header (so without time): 1024 samples, channels interleaved. */
function blocks(seed: number, count: number): Buffer[] {
  const sim = new MachineSimulator(profileById('pump-motor'), { seed, faults: seed % 2 ? [{ type: 'imbalance', onsetS: 0, severity: 0.8 }] : [] });
  return Array.from({ length: count }, () => {
    const b = sim.next('vibration', 1024);
    const buf = Buffer.alloc(1024 * 12);
    for (let i = 0; i < 1024; i++) ['vib_x', 'vib_y', 'vib_z'].forEach((c, k) => buf.writeFloatLE(b.channels[c][i], (i * 3 + k) * 4));
    return buf;
  });
}

beforeAll(() => {
  helper.settings({ userDir, edgeInfer: { modelsDir: bundledModelsDir() } });
});

afterEach(async () => {
  await helper.unload();
});

describe('the A/B example flow', () => {
  it('should pair the fp32 and FP8 results of each window when the payloads carry no time and one branch lags', async () => {
    const flow = example('ab-precision');
    // The low-bit branch sees every message 25 ms after the fp32 branch.
    const dev = flow.find((n) => n.id === 'dev3')!;
    dev.wires = [['fp32', 'lag']];
    flow.push({ id: 'lag', z: dev.z, type: 'helper', wires: [['lowbit']] });
    await helper.load([changeNode, functionNode, edgeInferNodes], flow);
    const lag = helper.getNode('lag') as TestNode & { send(msg: object): void };
    lag.on('input', ((msg: object) => setTimeout(() => lag.send(msg), 25)) as never);
    const reports = collect(helper.getNode('out3'));
    const input = helper.getNode('in3') as TestNode & { send(msg: object): void };
    const a = blocks(2, 6);
    const b = blocks(3, 6);
    for (let k = 0; k < 6; k++) {
      input.send({ topic: 'plant/pump-a/vibration', payload: a[k] });
      input.send({ topic: 'plant/pump-b/vibration', payload: b[k] });
      await new Promise((r) => setTimeout(r, 30));
    }
    // Each device's first block only half fills a window; each later block completes one.
    await until(() => reports.length === 10, 30_000, `ten paired windows (got ${reports.length})`);
    const last = reports.at(-1)!.payload as { windows: number; agreement: number; variant: string };
    expect(last.windows).toBe(10);
    expect(last.variant).toBe('fp8-e4m3');
    expect(last.agreement).toBeGreaterThanOrEqual(0.9);
  });
});
