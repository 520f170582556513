// Teach-in through a model node: msg.teachIn starts a teach-in for the message's device, the
// status shows its progress, the device's results say 'learning' then 'active' with its own
// threshold, and the baseline is in the runtime's log. Bad commands fail the message (Catch).
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import edgeInferNodes from '../../nodes/index';
import { teachInSettingsOf } from '../../nodes/model-node';
import { bundledModelsDir } from '../../runtime/paths';
import { type TestNode, collect, helper, pumpWindow, until, userDir } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const catchNode = require('@node-red/nodes/core/common/25-catch.js');

const TYPE = 'edge-infer-vibration-anomaly';


beforeAll(() => {
  helper.settings({ userDir, edgeInfer: { modelsDir: bundledModelsDir() } });
});

afterEach(async () => {
  await helper.unload();
});

describe('teach-in through a model node', () => {
  it('should learn the message\'s device on msg.teachIn, show its progress, then judge it by its own threshold', async () => {
    const db = path.join(userDir, 'teach-in-node.db');
    await helper.load([catchNode, edgeInferNodes], [
      { id: 'f1', type: 'tab' },
      { id: 'rt', type: 'edge-infer-runtime', backend: 'wasm', threads: 1, dbPath: db, recordEvery: 0 },
      { id: 'model', z: 'f1', type: TYPE, runtime: 'rt', variant: 'fp32', teachInMinWindows: 3, wires: [['out']] },
      { id: 'model5', z: 'f1', type: TYPE, runtime: 'rt', variant: 'fp32', teachInMinWindows: 3, alertConsecutive: 5 },
      { id: 'out', z: 'f1', type: 'helper' },
      { id: 'catcher', z: 'f1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', z: 'f1', type: 'helper' },
    ]);
    const out = collect(helper.getNode('out'));
    const caught = collect(helper.getNode('caught'));
    const model = helper.getNode('model') as TestNode;
    const statuses: string[] = [];
    model.on('call:status', ((call: { args: Array<{ text?: string }> }) => statuses.push(call.args[0]?.text ?? '')) as never);
    const errors = (): string[] => caught.map((m) => (m as unknown as { error: { message: string } }).error.message.replace(/^EdgeInferError: /, ''));

    // A device it has not seen: refused; then one window makes it known.
    model.receive({ topic: 'pump-t', teachIn: { action: 'start', windows: 4 } });
    await until(() => caught.length === 1, 10_000, 'the refusal of an unknown device');
    model.receive({ topic: 'pump-t', payload: pumpWindow(1) });
    await until(() => out.length === 1, 15_000, 'the first result');
    expect(out[0].payload).toMatchObject({ baseline: 'none', threshold: 11.19 });
    model.receive({ topic: 'pump-t', teachIn: { action: 'start', windows: 0 } });
    model.receive({ topic: 'pump-t', teachIn: { action: 'cancel' } });
    model.receive({ topic: 'pump-t', teachIn: { action: 'pause' } });
    model.receive({ topic: 'pump-t', teachIn: { action: 'start', windows: 4 } });
    model.receive({ topic: 'pump-t', teachIn: { action: 'start', windows: 4 } });
    await until(() => caught.length === 5, 10_000, 'four refusals more');
    expect(errors()).toEqual([
      "teach-in: device 'pump-t' has no results of model 'vibration-anomaly' yet",
      'teach-in: windows must be a whole number ≥ 1, got 0',
      'teach-in of pump-t (vibration-anomaly): none is running to cancel',
      "msg.teachIn.action: expected 'start' or 'cancel', got \"pause\"",
      'teach-in of pump-t (vibration-anomaly): already learning (0 windows so far); cancel it first',
    ]);
    expect(statuses.at(-1)).toMatch(/teach-in pump-t 0\/4$/);
    // Each later message of 2048 samples makes two windows (hop 1024): two messages teach four.
    model.receive({ topic: 'pump-t', payload: pumpWindow(2) });
    await until(() => out.length === 3, 15_000, 'two results while learning');
    expect(out.slice(1).map((m) => m.payload.baseline)).toEqual(['learning', 'learning']);
    await until(() => statuses.some((t) => / · teach-in pump-t 2\/4$/.test(t)), 3_000, 'the progress in the status');
    model.receive({ topic: 'pump-t', payload: pumpWindow(3) });
    model.receive({ topic: 'pump-t', payload: pumpWindow(4) });
    await until(() => out.length === 7, 15_000, 'four results more');
    // A node that alerts on 5 in a row cannot learn from 4 windows: refused, naming its K.
    (helper.getNode('model5') as TestNode).receive({ topic: 'pump-t', teachIn: { action: 'start', windows: 4 } });
    await until(() => caught.length === 6, 10_000, 'the refusal of fewer windows than the node\'s K');
    expect(errors()[5]).toBe("teach-in of pump-t (vibration-anomaly): windows (4) must be at least the alert's 5 in a row");
    const after = out.slice(5).map((m) => m.payload);
    expect(after.every((p) => p.baseline === 'active' && typeof p.threshold === 'number' && p.threshold !== 11.19)).toBe(true);
    await helper.unload();
    const conn = new Database(db, { readonly: true });
    try {
      // The node's own alert rule (3 in a row by default) set the baseline's K.
      expect(conn.prepare("SELECT device, model, state, windows, started_by AS startedBy, rule, consecutive FROM baselines WHERE state = 'active'").all()).toEqual([
        { device: 'pump-t', model: 'vibration-anomaly', state: 'active', windows: 4, startedBy: 'node-red:model', rule: 'runs', consecutive: 3 },
      ]);
      // The four windows learned, recorded for a fine-tune: each its 3 × 64 model-input features.
      expect(conn.prepare('SELECT length(features) AS bytes FROM taught_windows').all()).toEqual(Array(4).fill({ bytes: 192 * 4 }));
    } finally {
      conn.close();
    }
  });

  it('should refuse teach-in settings that are not numbers, naming the setting', () => {
    expect(teachInSettingsOf({ teachInQuantile: '0.99', teachInMargin: '', teachInMinWindows: 20 })).toEqual({ quantile: 0.99, minWindows: 20 });
    expect(() => teachInSettingsOf({ teachInMargin: 'wide' })).toThrow("teachInMargin must be a number, got 'wide'");
  });
});
