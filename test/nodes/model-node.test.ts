import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { MachineSimulator, profileById } from '../../devices';
import type { ModelSession } from '../../runtime/engine';
import { ModelRegistry } from '../../runtime/model';
import { ResultStore } from '../../runtime/store';
import Database from 'better-sqlite3';
import { unavailableReason } from '../../runtime/engine';
import { alertPolicyOf } from '../../nodes/model-node';
import { alertKind } from '../../runtime/stream/alerts';
import edgeInferNodes from '../../nodes/index';
import { RuntimeResources } from '../../nodes/resources';
import type { RuntimeNode } from '../../nodes/runtime-node';
import { bundledModelsDir } from '../../runtime/paths';
import { type TestNode, collect, helper, until, userDir } from './helpers';

// Node-RED's own Catch and Complete nodes, for the error paths and for done().
// eslint-disable-next-line @typescript-eslint/no-require-imports
const catchNode = require('@node-red/nodes/core/common/25-catch.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const completeNode = require('@node-red/nodes/core/common/24-complete.js');

/** The message of an error a Catch node passed on. */
const caughtMessage = (m: object): string => (m as { error: { message: string } }).error.message;

const TYPE = 'edge-infer-fault-classifier';
const WINDOW = 2048;

/** 2048 samples of a pump with a fault, as one [x, y, z] array per channel. */
function pumpWindow(seed: number, fault?: 'imbalance'): Record<'vib_x' | 'vib_y' | 'vib_z', number[]> {
  const sim = new MachineSimulator(profileById('pump-motor'), { seed, faults: fault ? [{ type: fault, onsetS: 0, severity: 0.8 }] : [] });
  const b = sim.next('vibration', WINDOW);
  return { vib_x: Array.from(b.channels.vib_x), vib_y: Array.from(b.channels.vib_y), vib_z: Array.from(b.channels.vib_z) };
}

/** A flow on one tab (Catch nodes catch within their tab; nodes without one are config nodes). */
function flow(extra: object[] = [], nodeProps: object = {}): object[] {
  return [
    { id: 'f1', type: 'tab' },
    { id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', threads: 1, log: true, dbPath: path.join(userDir, 'nodes.db'), recordEvery: 1 },
    { id: 'model', z: 'f1', type: TYPE, runtime: 'rt', wires: [['out']], ...nodeProps },
    { id: 'out', z: 'f1', type: 'helper' },
    ...extra.map((n) => ({ z: 'f1', ...n })),
  ];
}

beforeAll(() => {
  helper.settings({ userDir, edgeInfer: { modelsDir: bundledModelsDir() } });
});

afterEach(async () => {
  await helper.unload();
});

describe('a model node', () => {
  it('should load with defaults and no runtime, and say it is ready', async () => {
    await helper.load(edgeInferNodes, [{ id: 'model', type: TYPE, wires: [] }]);
    const node = helper.getNode('model') as TestNode & { status: unknown };
    expect(node).toBeTruthy();
  });

  it('should take a whole window as an object of named channels and send one result per window', async () => {
    await helper.load(edgeInferNodes, flow());
    const out = collect(helper.getNode('out'));
    helper.getNode('model').receive({ topic: 'pump-7', payload: pumpWindow(3, 'imbalance') });
    await until(() => out.length === 1, 15_000, 'a result');
    const p = out[0].payload;
    expect(p).toMatchObject({ device: 'pump-7', model: 'fault-classifier', label: 'imbalance', anomaly: true });
    expect(Object.keys(p.probabilities as object)).toEqual(['normal', 'imbalance', 'misalignment', 'bearing', 'looseness']);
    expect(p).toHaveProperty('latencyMs');
    expect(p).toHaveProperty('window.start');
    expect(p.threshold).toBe(0.5);
  });

  it('should take rows, a float32 Buffer, interleaved typed arrays, a Float32Array per channel, JSON in a Buffer and arrays of objects', async () => {
    await helper.load(edgeInferNodes, flow());
    const out = collect(helper.getNode('out'));
    const w = pumpWindow(4);
    const rows = w.vib_x.map((x, i) => [x, w.vib_y[i], w.vib_z[i]]);
    const buffer = Buffer.alloc(WINDOW * 12);
    rows.forEach((r, i) => r.forEach((v, k) => buffer.writeFloatLE(v, (i * 3 + k) * 4)));
    const model = helper.getNode('model');
    model.receive({ topic: 'rows', payload: rows });
    model.receive({ topic: 'buffer', payload: buffer });
    // The same bytes as a Float32Array (3072 values and more: a block, not one sample per channel).
    model.receive({ topic: 'float32array', payload: new Float32Array(buffer.buffer, buffer.byteOffset, WINDOW * 3) });
    model.receive({ topic: 'float64array', payload: Float64Array.from(new Float32Array(buffer.buffer, buffer.byteOffset, WINDOW * 3)) });
    model.receive({ topic: 'typed', payload: { vib_x: Float32Array.from(w.vib_x), vib_y: Float32Array.from(w.vib_y), vib_z: Float32Array.from(w.vib_z) } });
    // What an MQTT in node set to "a Buffer" delivers for a JSON message.
    model.receive({ topic: 'json-buffer', payload: Buffer.from(`\n  ${JSON.stringify(w)}\n`) });
    model.receive({ topic: 'records', payload: rows.map(([vib_x, vib_y, vib_z]) => ({ vib_x, vib_y, vib_z })) });
    await until(() => out.length === 7, 15_000, 'seven results');
    const scores = new Set(out.map((m) => (m.payload.score as number).toFixed(5)));
    expect(scores.size).toBe(1); // the same samples in seven shapes give the same result
    expect(out.map((m) => m.payload.device).sort()).toEqual(['buffer', 'float32array', 'float64array', 'json-buffer', 'records', 'rows', 'typed']);
  });

  it('should refuse a Buffer of text that is not JSON, and typed arrays that do not fill whole samples', async () => {
    await helper.load([catchNode, edgeInferNodes], flow([{ id: 'catcher', type: 'catch', scope: null, uncaught: false, wires: [['caught']] }, { id: 'caught', type: 'helper' }]));
    const caught = collect(helper.getNode('caught'));
    const out = collect(helper.getNode('out'));
    const model = helper.getNode('model');
    const broken = Buffer.from(JSON.stringify(pumpWindow(12)).slice(0, 3000)); // cut off mid-way
    model.receive({ topic: 'x', payload: broken });
    model.receive({ topic: 'x', payload: Buffer.from('vibration readings will follow shortly, please stand by') });
    model.receive({ topic: 'x', payload: new Float32Array(3 * 100 + 1) });
    await until(() => caught.length === 3, 5000, 'three errors caught');
    const messages = caught.map(caughtMessage);
    expect(messages[0]).toMatch(/msg\.payload is a Buffer of text that starts like JSON but is not JSON/);
    expect(messages[1]).toMatch(/msg\.payload is a Buffer of text \("vibration readings will follow…"\), neither JSON nor float32 samples/);
    expect(messages[2]).toMatch(/msg\.payload is a Float32Array of 301 values; samples of 3 channels \(vib_x, vib_y, vib_z\) interleaved need a multiple of 3/);
    expect(out).toHaveLength(0);
  });

  it('should keep a window per device, filling it from samples and blocks', async () => {
    await helper.load(edgeInferNodes, flow([], { device: 'payload.machine' }));
    const out = collect(helper.getNode('out'));
    const model = helper.getNode('model');
    const a = pumpWindow(5);
    const b = pumpWindow(6, 'imbalance');
    // Interleaved blocks of 512 from two machines: each completes its own window after four.
    for (let k = 0; k < 4; k++) {
      for (const [machine, w] of [['a', a], ['b', b]] as const) {
        const block = (c: 'vib_x' | 'vib_y' | 'vib_z') => w[c].slice(k * 512, (k + 1) * 512);
        model.receive({ payload: { machine, vib_x: block('vib_x'), vib_y: block('vib_y'), vib_z: block('vib_z') } });
      }
    }
    await until(() => out.length === 2, 15_000, 'two results');
    expect(out.map((m) => m.payload.device).sort()).toEqual(['a', 'b']);
    expect(out.find((m) => m.payload.device === 'b')?.payload.label).toBe('imbalance');
  });

  it('should take one sample of every channel at a time', async () => {
    await helper.load(edgeInferNodes, flow());
    const out = collect(helper.getNode('out'));
    const w = pumpWindow(7);
    const model = helper.getNode('model');
    for (let i = 0; i < WINDOW; i++) model.receive({ topic: 'slow', payload: [w.vib_x[i], w.vib_y[i], w.vib_z[i]] });
    await until(() => out.length === 1, 20_000, 'a result from single samples');
    expect(out[0].payload.device).toBe('slow');
  });

  it('should report bad input to a Catch node and keep working', async () => {
    await helper.load([catchNode, edgeInferNodes], flow([{ id: 'catcher', type: 'catch', scope: null, uncaught: false, wires: [['caught']] }, { id: 'caught', type: 'helper' }]));
    const caught = collect(helper.getNode('caught'));
    const out = collect(helper.getNode('out'));
    const model = helper.getNode('model');
    model.receive({ topic: 'x', payload: 42 });
    model.receive({ topic: 'x', payload: { vib_x: [1], vib_y: [Number.NaN], vib_z: [1] } });
    model.receive({ topic: 'x', payload: 'vibration' });
    await until(() => caught.length === 3, 5000, 'three errors caught');
    const messages = caught.map((m) => (m as unknown as { error: { message: string } }).error.message);
    expect(messages[0]).toMatch(/msg\.payload is one number, but the model reads 3 channels/);
    expect(messages[1]).toMatch(/msg\.payload\.vib_y\[0\] is NaN, expected a finite number/);
    expect(messages[2]).toMatch(/msg\.payload is string/);
    model.receive({ topic: 'y', payload: pumpWindow(8) });
    await until(() => out.length === 1, 15_000, 'a result after the errors');
  });

  it('should show rate, latency and the last label in its status', async () => {
    await helper.load(edgeInferNodes, flow());
    const model = helper.getNode('model') as TestNode;
    const statuses: Array<{ fill?: string; text?: string }> = [];
    model.on('call:status', ((call: { args: Array<{ fill?: string; text?: string }> }) => statuses.push(call.args[0])) as never);
    const out = collect(helper.getNode('out'));
    model.receive({ topic: 'p', payload: pumpWindow(9, 'imbalance') });
    await until(() => out.length === 1, 15_000, 'a result');
    await until(() => statuses.some((s) => /\/s · .* ms · imbalance/.test(s.text ?? '')), 3000, 'a status with the label');
    expect(statuses.find((s) => /imbalance/.test(s.text ?? ''))?.fill).toBe('red');
  });

  it('should show idle, not the last rate, once windows stop coming', async () => {
    await helper.load(edgeInferNodes, flow());
    const model = helper.getNode('model') as TestNode;
    const statuses: Array<{ fill?: string; shape?: string; text?: string }> = [];
    model.on('call:status', ((call: { args: Array<{ fill?: string; text?: string }> }) => statuses.push(call.args[0])) as never);
    const out = collect(helper.getNode('out'));
    model.receive({ topic: 'p', payload: pumpWindow(13) });
    await until(() => out.length === 1, 15_000, 'a result');
    await until(() => statuses.some((s) => /\/s · /.test(s.text ?? '')), 3000, 'a rate');
    await until(() => /idle/.test(statuses.at(-1)?.text ?? ''), 3000, 'idle after the rate');
    const rates = statuses.filter((s) => /\/s · /.test(s.text ?? '')).length;
    await new Promise((r) => setTimeout(r, 2200));
    // Idle is said once; no rate comes back without windows.
    expect(statuses.filter((s) => /\/s · /.test(s.text ?? '')).length).toBe(rates);
    expect(statuses.at(-1)).toMatchObject({ shape: 'ring', text: expect.stringMatching(/ · \S*idle · \S+$/) });
  });

  it('should call done for every message: Complete nodes hear of results, Catch nodes of windows a failed run lost', async () => {
    await helper.load([catchNode, completeNode, edgeInferNodes], flow([
      { id: 'catcher', type: 'catch', scope: ['model'], uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper' },
      { id: 'completer', type: 'complete', scope: ['model'], uncaught: false, wires: [['completed']] },
      { id: 'completed', type: 'helper' },
    ], { variant: 'fp32' }));
    const caught = collect(helper.getNode('caught'));
    const completed = collect(helper.getNode('completed'));
    const out = collect(helper.getNode('out'));
    const model = helper.getNode('model');
    model.receive({ topic: 'good', payload: pumpWindow(14) });
    await until(() => completed.length === 1 && out.length === 1, 15_000, 'a result and its done()');
    expect(completed[0].topic).toBe('good');
    // The session under the node goes away (as when its runtime closes): the whole run fails.
    const resources = (helper.getNode('rt') as unknown as RuntimeNode).resources;
    const registry = await ModelRegistry.open(bundledModelsDir(), { watch: false });
    const fp32 = registry.pick('fault-classifier', 'fp32');
    await registry.close();
    const session = await resources.session(fp32);
    await session.dispose();
    model.receive({ topic: 'lost-1', payload: pumpWindow(15) });
    model.receive({ topic: 'lost-2', payload: pumpWindow(16) });
    await until(() => caught.length === 2, 5000, 'both messages failed');
    expect(caught.map((m) => m.topic).sort()).toEqual(['lost-1', 'lost-2']);
    expect(caughtMessage(caught[0])).toMatch(/session was disposed/);
    expect(completed).toHaveLength(1);
  });

  it('should fail the messages whose windows have not run when it closes', async () => {
    // An engine that never answers: the windows are still waiting when the close gives up on them.
    const load = RuntimeResources.prototype.session;
    const spy = vi.spyOn(RuntimeResources.prototype, 'session').mockImplementation(async function (this: RuntimeResources, variant) {
      const session = await load.call(this, variant);
      return new Proxy(session, { get: (t, p) => (p === 'runWindows' ? () => new Promise(() => undefined) : (Reflect.get(t, p, t) as unknown)) }) as ModelSession;
    });
    try {
      await helper.load(edgeInferNodes, flow());
      const model = helper.getNode('model') as TestNode & { error(err: unknown): void };
      // done(err) reports through node.error; the helper's spies are gone once it unloads.
      const errors: string[] = [];
      model.error = (err: unknown) => errors.push(String(err));
      model.receive({ topic: 'stuck', payload: pumpWindow(17) });
      await new Promise((r) => setTimeout(r, 300));
      await helper.unload();
      await until(() => errors.length === 1, 2000, 'the waiting message failed');
      expect(errors[0]).toMatch(/closed before 1 window of this message ran/);
    } finally {
      spy.mockRestore();
    }
  });

  it('should log results and recorded windows to the runtime\'s SQLite file', async () => {
    const db = path.join(userDir, 'log-test.db');
    await helper.load(edgeInferNodes, [
      { id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', dbPath: db, recordEvery: 1 },
      { id: 'model', type: TYPE, runtime: 'rt', wires: [['out']] },
      { id: 'out', type: 'helper' },
    ]);
    const out = collect(helper.getNode('out'));
    const window = pumpWindow(10);
    helper.getNode('model').receive({ topic: 'logged', payload: window });
    await until(() => out.length === 1, 15_000, 'a result');
    await helper.unload();
    const store = ResultStore.open({ path: db });
    expect(store.counts().results).toBe(1);
    expect(store.windows('fault-classifier').length).toBe(1);
    // The RMS of the main channel (the card's first, vib_x) as the node read it: float32 samples, before the spectrum.
    const x = Float32Array.from(window.vib_x);
    expect(store.latestPerDevice()[0].rms).toBeCloseTo(Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length), 6);
    await store.close();
  });

  it('should refuse a variant its model does not have, in its status, without stopping Node-RED', async () => {
    await helper.load([catchNode, edgeInferNodes], flow([{ id: 'catcher', type: 'catch', scope: null, wires: [['caught']] }, { id: 'caught', type: 'helper' }], { variant: 'int4' }));
    const caught = collect(helper.getNode('caught'));
    helper.getNode('model').receive({ topic: 'x', payload: pumpWindow(11) });
    await until(() => caught.length === 1, 5000, 'the error');
    expect((caught[0] as unknown as { error: { message: string } }).error.message).toMatch(/has no variant 'int4'/);
  });

  it('should close within a second while windows are being run', async () => {
    await helper.load(edgeInferNodes, flow());
    const model = helper.getNode('model');
    for (let i = 0; i < 20; i++) model.receive({ topic: `d${i}`, payload: pumpWindow(20 + i) });
    const t0 = Date.now();
    await helper.unload();
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('should send an alert on its second output when a device is raised and when it clears, not on every anomalous window, and log both', async () => {
    const db = path.join(userDir, 'alerts-node.db');
    await helper.load(edgeInferNodes, [
      { id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', dbPath: db, recordEvery: 0 },
      { id: 'model', type: TYPE, runtime: 'rt', variant: 'fp32', alertConsecutive: 3, alertCooldownS: 300, wires: [['out'], ['alerts']] },
      { id: 'out', type: 'helper' },
      { id: 'alerts', type: 'helper' },
    ]);
    const out = collect(helper.getNode('out'));
    const alerts = collect(helper.getNode('alerts'));
    const model = helper.getNode('model');
    // Windows of 2048 samples every 1024: a device's first message makes one window, each later one two.
    for (let i = 0; i < 4; i++) {
      model.receive({ topic: 'pump-b', payload: pumpWindow(40 + i, 'imbalance') });
      await until(() => out.length === 2 * i + 1, 15_000, `results of message ${i + 1}`);
    }
    expect(out.map((m) => m.payload.anomaly)).toEqual(Array(7).fill(true));
    expect(alerts.map((a) => [a.payload.change, a.payload.windows, a.payload.kind])).toEqual([['raised', 3, 'fault']]);
    expect(alerts[0].payload).toMatchObject({ device: 'pump-b', model: 'fault-classifier', label: 'imbalance', message: expect.stringMatching(/pump-b: .* imbalance .* 3 windows in a row/) });
    for (let i = 0; i < 3; i++) {
      model.receive({ topic: 'pump-b', payload: pumpWindow(60 + i) });
      await until(() => out.length === 9 + 2 * i, 15_000, `results of normal message ${i + 1}`);
    }
    expect(out.slice(-4).map((m) => m.payload.anomaly)).toEqual([false, false, false, false]);
    expect(alerts.map((a) => a.payload.change)).toEqual(['raised', 'cleared']);
    await helper.unload();
    const conn = new Database(db, { readonly: true });
    try {
      expect(conn.prepare('SELECT kind, device FROM alerts ORDER BY id').all()).toEqual([{ kind: 'fault', device: 'pump-b' }, { kind: 'clear', device: 'pump-b' }]);
    } finally {
      conn.close();
    }
  });

  it('should have committed a message\'s results to SQLite when its done() is called', async () => {
    const db = path.join(userDir, 'done-after-commit.db');
    await helper.load([completeNode, edgeInferNodes], [
      { id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', dbPath: db, recordEvery: 0 },
      { id: 'model', type: TYPE, runtime: 'rt', variant: 'fp32', wires: [['out']] },
      { id: 'out', type: 'helper' },
      { id: 'completer', type: 'complete', scope: ['model'], uncaught: false, wires: [['completed']] },
      { id: 'completed', type: 'helper' },
    ]);
    // At each done(), another connection (as another process would) looks for the message's result.
    const found: boolean[] = [];
    const completed = helper.getNode('completed') as TestNode;
    completed.on('input', ((msg: { _msgid: string }) => {
      const conn = new Database(db, { readonly: true });
      try {
        const rows = conn.prepare('SELECT message_keys FROM results').all() as Array<{ message_keys: string }>;
        found.push(rows.some((r) => (JSON.parse(r.message_keys) as string[]).includes(msg._msgid)));
      } finally {
        conn.close();
      }
    }) as never);
    const model = helper.getNode('model');
    for (let i = 0; i < 8; i++) model.receive({ topic: `pump-${i % 3}`, payload: pumpWindow(70 + i) });
    await until(() => found.length === 8, 20_000, 'eight done() calls');
    expect(found).toEqual(Array(8).fill(true));
  });

  it('should hold a message and its results while the log is locked past its busy timeout, and send them (done without an error) once committed', async () => {
    const db = path.join(userDir, 'locked.db');
    ResultStore.open({ path: db }).close();
    await helper.load([catchNode, completeNode, edgeInferNodes], flow([
      { id: 'catcher', type: 'catch', scope: ['model'], uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper' },
    ], { variant: 'fp32' }).map((n) => ((n as { id: string }).id === 'rt' ? { ...n, dbPath: db } : n)));
    const caught = collect(helper.getNode('caught'));
    const out = collect(helper.getNode('out'));
    // Another process holds the write lock past the log's busy timeout (5 s).
    const holder = new Database(db);
    holder.exec('BEGIN IMMEDIATE');
    try {
      helper.getNode('model').receive({ topic: 'press-4', payload: pumpWindow(80) });
      await new Promise((r) => setTimeout(r, 7000));
      // Not in the log yet, so not sent either, and no error: the log tries the commit again.
      expect(out).toHaveLength(0);
      expect(caught).toHaveLength(0);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    await until(() => out.length === 1, 15_000, 'the result once the lock is gone');
    expect(caught).toHaveLength(0);
    const file = new Database(db, { readonly: true });
    try {
      expect(file.prepare("SELECT COUNT(*) FROM results WHERE device = 'press-4'").pluck().get()).toBe(1);
    } finally {
      file.close();
    }
  }, 30_000);

  it('should refuse alert settings that are not numbers or out of range, naming the setting', async () => {
    expect(alertPolicyOf({})).toEqual({ consecutive: 3, cooldownS: 300 });
    expect(alertPolicyOf({ alertConsecutive: '2', alertCooldownS: '0', alertClearAfter: '5' })).toEqual({ consecutive: 2, cooldownS: 0, clearAfter: 5 });
    expect(() => alertPolicyOf({ alertCooldownS: 'soon' })).toThrow(/alertCooldownS must be a number, got 'soon'/);
    expect(() => alertPolicyOf({ alertConsecutive: 0 })).toThrow(/consecutive must be a whole number ≥ 1, got 0/);
    expect(() => alertPolicyOf({ alertClearAfter: '2.5' })).toThrow(/clearAfter must be a whole number ≥ 1, got 2.5/);
    await helper.load([catchNode, edgeInferNodes], flow([{ id: 'catcher', type: 'catch', scope: null, wires: [['caught']] }, { id: 'caught', type: 'helper' }], { alertConsecutive: '-1' }));
    const caught = collect(helper.getNode('caught'));
    helper.getNode('model').receive({ topic: 'x', payload: pumpWindow(81) });
    await until(() => caught.length === 1, 5000, 'the error');
    expect(caughtMessage(caught[0])).toMatch(/consecutive must be a whole number ≥ 1, got -1/);
  });

  it('should name alert rows by what changed', () => {
    expect(alertKind('classification', 'raised')).toBe('fault');
    expect(alertKind('anomaly', 'raised')).toBe('anomaly');
    expect(alertKind('anomaly', 'repeated')).toBe('reminder');
    expect(alertKind('classification', 'cleared')).toBe('clear');
  });

  it('should show the backend it runs on, and on auto say why it is not native', async () => {
    await helper.load(edgeInferNodes, [
      { id: 'rt', type: 'edge-infer-runtime', backend: 'auto', log: false },
      { id: 'model', type: TYPE, runtime: 'rt', wires: [['out']] },
      { id: 'out', type: 'helper' },
    ]);
    const model = helper.getNode('model') as TestNode;
    const statuses: Array<{ text?: string }> = [];
    const warnings: string[] = [];
    model.on('call:status', ((call: { args: Array<{ text?: string }> }) => statuses.push(call.args[0])) as never);
    model.on('call:warn', ((call: { args: unknown[] }) => warnings.push(String(call.args[0]))) as never);
    await until(() => statuses.some((s) => /ready/.test(s.text ?? '')), 15_000, 'ready');
    const why = unavailableReason('native');
    if (why === null) {
      expect(statuses.find((s) => /ready/.test(s.text ?? ''))?.text).toMatch(/ · native · /);
      expect(warnings).toEqual([]);
    } else {
      expect(statuses.find((s) => /ready/.test(s.text ?? ''))?.text).toMatch(/ · wasm · /);
      expect(warnings).toEqual([expect.stringContaining(why)]);
    }
  });

  it('should show wasm in its status when the runtime asks for wasm', async () => {
    await helper.load(edgeInferNodes, flow());
    const model = helper.getNode('model') as TestNode;
    const statuses: Array<{ text?: string }> = [];
    model.on('call:status', ((call: { args: Array<{ text?: string }> }) => statuses.push(call.args[0])) as never);
    await until(() => statuses.some((s) => /ready/.test(s.text ?? '')), 15_000, 'ready');
    expect(statuses.find((s) => /ready/.test(s.text ?? ''))?.text).toMatch(/ · wasm · /);
  });
});
