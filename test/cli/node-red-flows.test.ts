// The example flows merged into one flows file for the Node-RED beside the gateway.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BROKER_HOST_ENV, BROKER_PORT_ENV, exampleFlows, mergeFlows } from '../../runtime/cli/node-red-flows';
import { tempDir } from '../helpers/gateway';

const broker = { id: 'b', type: 'mqtt-broker', broker: 'localhost', port: '1883' };

describe('mergeFlows', () => {
  it('should keep a node shared by several files once', () => {
    const merged = mergeFlows([
      { name: 'a.json', nodes: [{ id: 't1', type: 'tab' }, broker] },
      { name: 'b.json', nodes: [{ id: 't2', type: 'tab' }, { ...broker }] },
    ]);
    expect(merged.map((n) => n.id)).toEqual(['t1', 'b', 't2']);
  });

  it('should refuse two different nodes under one id, naming the id and both files', () => {
    expect(() =>
      mergeFlows([
        { name: 'a.json', nodes: [broker] },
        { name: 'b.json', nodes: [{ ...broker, port: '1884' }] },
      ]),
    ).toThrow(/node id 'b' is used by different nodes in a\.json and b\.json/);
  });

  it('should refuse a file that is not an array of nodes with ids and types', () => {
    expect(() => mergeFlows([{ name: 'x.json', nodes: {} as never }])).toThrow(/x\.json: expected a flows file/);
    expect(() => mergeFlows([{ name: 'y.json', nodes: [{ type: 'tab' } as never] }])).toThrow(/y\.json: every node needs a string id and type/);
  });
});

describe('exampleFlows', () => {
  it('should merge the three examples with unique ids, one broker on the environment and one runtime', () => {
    const flows = exampleFlows();
    const ids = flows.map((n) => n.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(flows.filter((n) => n.type === 'tab')).toHaveLength(3);
    const brokers = flows.filter((n) => n.type === 'mqtt-broker');
    expect(brokers).toHaveLength(1);
    expect(brokers[0]).toMatchObject({ broker: `\${${BROKER_HOST_ENV}}`, port: `\${${BROKER_PORT_ENV}}` });
    const runtimes = flows.filter((n) => n.type === 'edge-infer-runtime');
    expect(runtimes).toHaveLength(1);
    // An empty dbPath: the model nodes log to <userDir>/edge-infer.db.
    expect(runtimes[0]!.dbPath).toBe('');
    // Every wire and config reference points at a node of the merged file.
    for (const n of flows) {
      for (const out of (n.wires as string[][] | undefined) ?? []) for (const to of out) expect(ids, `${n.id} → ${to}`).toContain(to);
      for (const key of ['broker', 'runtime', 'z'] as const) if (typeof n[key] === 'string' && !String(n[key]).startsWith('${')) expect(ids, `${n.id}.${key}`).toContain(n[key]);
    }
  });

  it('should name the folder with no flows, and the file that is not JSON', () => {
    const dir = tempDir('edge-infer-flows-');
    expect(() => exampleFlows(dir)).toThrow(new RegExp(`${dir}: no example flows`));
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'broken.json'), '[{');
    expect(() => exampleFlows(dir)).toThrow(/broken\.json: not JSON/);
  });
});
