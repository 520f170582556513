// Per-device variants with the scheduler, on real sessions of tiny models: y = log(x − 2) shared,
// y = table[x] (x / 10 for x in 0..19, a throw past it) as a device's own. Batches that mix devices
// are split by session and delivered in batch order; a device variant that throws or gives a
// non-finite output is rolled back and its windows run again on the shared one; the bound holds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelSession } from '../../runtime/engine';
import { EdgeInferError } from '../../runtime/errors';
import { signatureMismatch } from '../../runtime/gateway/device-models';
import { type ModelCard, parseCardJson } from '../../runtime/model';
import { GraphBuilder, encodeModel } from '../../runtime/onnx';
import type { ReadyWindow } from '../../runtime/stream/device-windows';
import { DeviceVariants, type DeviceServing } from '../../runtime/stream/device-variants';
import { ModelSlot, runFailure } from '../../runtime/stream/model-slot';
import { Scheduler, type WindowResult } from '../../runtime/stream/scheduler';
import { logModel } from '../helpers/models';
import { speedCard } from '../helpers/speed-models';

const card: ModelCard = parseCardJson(JSON.stringify(speedCard('speed', { task: 'anomaly', threshold: 5 })));
const ownCard: ModelCard = { ...card, output: { ...card.output, threshold: 1 } };

/** y = table[x]: x / 10 for x in 0..19, NaN at 19; an out-of-range Gather (a throw) from 20 on. */
function tableModel(): Uint8Array {
  const g = new GraphBuilder('table');
  const x = g.input('x', 'float32', ['batch', 1]);
  const table = g.weight('table', [20], Array.from({ length: 20 }, (_, i) => (i === 19 ? NaN : i / 10)));
  g.output(g.op1('Gather', [table, g.op1('Cast', [x], { to: 7 })], { axis: 0 }), 'float32', ['batch', 1], 'y');
  return encodeModel(g.build());
}

const load = (bytes: Uint8Array, name: string) => ModelSession.load(bytes, { backend: 'wasm', threads: 1, name });
const w = (device: string, x: number, i: number): ReadyWindow => ({ device, features: Float32Array.of(x), dims: [1], startMs: i * 1000, endMs: i * 1000 + 1000, messageKeys: [`${device}/${i}`] });

describe('DeviceVariants with the scheduler', () => {
  let shared: ModelSession;
  beforeAll(async () => {
    shared = await load(logModel(), 'shared');
  });
  afterAll(async () => {
    await shared.dispose();
  });

  async function own(device: string): Promise<DeviceServing> {
    return { device, session: await load(tableModel(), `${device}'s own`), variant: 'fp32', sha256: 'ab'.repeat(32), card: ownCard, folder: '/devices/' + device };
  }

  function scheduler(devices: DeviceVariants, batches: WindowResult[][], errors: unknown[] = []): Scheduler {
    const slot = new ModelSlot({ session: shared, variant: 'fp32' }, 'y');
    return new Scheduler(slot, card, async (r) => void batches.push(r), { maxBatch: 6, maxWaitMs: 0, maxQueue: 64, devices }, (err) => errors.push(err));
  }

  it('should run a mixed batch on each device\'s session, in batch order, each result naming its variant', async () => {
    const devices = new DeviceVariants('y', 4);
    const mine = await own('fan-1');
    devices.set(mine, 2, () => expect.unreachable());
    const batches: WindowResult[][] = [];
    const s = scheduler(devices, batches);
    s.submit([w('fan-1', 3, 0), w('fan-2', 3, 0), w('fan-1', 4, 1), w('fan-2', 4, 1), w('fan-1', 5, 2), w('fan-3', 12, 0)]);
    await s.drain();
    expect(batches).toHaveLength(1);
    const got = batches[0].map((r) => [r.window.device, r.window.startMs, r.outcome.ok ? r.outcome.outputs.y.data[0] : null, r.own?.device ?? null]);
    expect(got).toEqual([
      ['fan-1', 0, expect.closeTo(0.3, 6), 'fan-1'],
      ['fan-2', 0, expect.closeTo(0, 6), null],
      ['fan-1', 1000, expect.closeTo(0.4, 6), 'fan-1'],
      ['fan-2', 1000, expect.closeTo(Math.log(2), 6), null],
      ['fan-1', 2000, expect.closeTo(0.5, 6), 'fan-1'],
      ['fan-3', 0, expect.closeTo(Math.log(10), 6), null],
    ]);
    expect(devices.probation('fan-1')).toBe(1);
    expect(devices.clear('fan-1')).toBe(true);
    expect(devices.clear('fan-1')).toBe(false);
    // Cleared: the next batch is the shared variant's alone, and the device's session is let go.
    s.submit([w('fan-1', 6, 3)]);
    await s.drain();
    expect(batches[1][0].own).toBeUndefined();
    await expect.poll(() => mine.session.disposed).toBe(true);
  });

  it('should roll back a device whose variant throws, running its windows again on the shared one, the other devices\' results kept', async () => {
    const devices = new DeviceVariants('y', 4);
    const reasons: string[] = [];
    const mine = await own('fan-1');
    devices.set(mine, 3, (r) => reasons.push(r));
    const batches: WindowResult[][] = [];
    const errors: unknown[] = [];
    const s = scheduler(devices, batches, errors);
    s.submit([w('fan-1', 5, 0), w('fan-2', 3, 0), w('fan-1', 30, 1), w('fan-2', 4, 1)]);
    await s.drain();
    expect(errors).toEqual([]);
    expect(batches[0].map((r) => [r.window.device, r.outcome.ok && r.outcome.outputs.y.data[0], r.own])).toEqual([
      ['fan-1', expect.closeTo(Math.log(3), 6), undefined],
      ['fan-2', expect.closeTo(0, 6), undefined],
      ['fan-1', expect.closeTo(Math.log(28), 6), undefined],
      ['fan-2', expect.closeTo(Math.log(2), 6), undefined],
    ]);
    expect(reasons).toEqual([expect.stringMatching(/^fan-1: its own fp32 \(abababababab\) rolled back to the shared variant on probation: it failed window 1 of a batch: .*out of data bounds/)]);
    expect(devices.get('fan-1')).toBeUndefined();
    await expect.poll(() => mine.session.disposed).toBe(true);
  });

  it('should roll back a device whose variant gives a non-finite output, at any time, not only on probation', async () => {
    const devices = new DeviceVariants('y', 4);
    const reasons: string[] = [];
    devices.set(await own('fan-1'), 1, (r) => reasons.push(r));
    const batches: WindowResult[][] = [];
    const s = scheduler(devices, batches);
    s.submit([w('fan-1', 5, 0)]);
    await s.drain();
    expect(devices.probation('fan-1')).toBe(0);
    s.submit([w('fan-1', 19, 1)]);
    await s.drain();
    expect(batches[1][0].outcome.ok && batches[1][0].outcome.outputs.y.data[0]).toBeCloseTo(Math.log(17), 6);
    expect(reasons).toEqual(["fan-1: its own fp32 (abababababab) rolled back to the shared variant: output 'y' of window 0 of the batch is NaN"]);
  });

  it('should fail only the shared part of a mixed batch whose shared run fails, the device\'s results kept', async () => {
    const devices = new DeviceVariants('y', 4);
    devices.set(await own('fan-1'), 1, () => expect.unreachable());
    const batches: WindowResult[][] = [];
    const s = scheduler(devices, batches);
    // A window of the wrong shape fails its own run on the shared session, per window.
    s.submit([w('fan-1', 5, 0), { ...w('fan-2', 3, 0), features: Float32Array.of(1, 2), dims: [2] }]);
    await s.drain();
    expect(batches[0].map((r) => r.outcome.ok)).toEqual([true, false]);
    expect(batches[0][0].own?.device).toBe('fan-1');
    const failed = batches[0][1].outcome;
    expect(!failed.ok && failed.error.code).toBe('E_INPUT_SHAPE');
    // The window's fault, not the variant's: the device keeps its own.
    expect(devices.get('fan-1')).toBeDefined();
  });

  it('should refuse a device past the bound, a bad probation and a closed set, each in one line', async () => {
    const devices = new DeviceVariants('y', 1);
    const a = await own('fan-1');
    const b = await own('fan-2');
    devices.set(a, 1, () => undefined);
    expect(devices.hasRoom('fan-1')).toBe(true);
    expect(devices.hasRoom('fan-2')).toBe(false);
    expect(() => devices.set(b, 1, () => undefined)).toThrow(new EdgeInferError('E_CONFLICT', "fan-2: 1 devices already have a model of their own for 'speed', the most one model may have (one session each); clear one first"));
    expect(() => devices.set(a, 0, () => undefined)).toThrow('healthBatches: expected a whole number ≥ 1, got 0');
    expect(() => new DeviceVariants('y', 0)).toThrow('max device variants: expected a whole number ≥ 1, got 0');
    // Replacing a device's variant lets the old session go.
    const a2 = await own('fan-1');
    devices.set(a2, 1, () => undefined);
    await expect.poll(() => a.session.disposed).toBe(true);
    expect(devices.sessions()).toEqual([a2.session]);
    devices.close();
    expect(() => devices.set(b, 1, () => undefined)).toThrow(/the pipeline is closed/);
    await a2.session.dispose();
    await b.session.dispose();
  });

  it('should name the first window a run failed, and not a window refused for its input', () => {
    const run = new EdgeInferError('E_RUN', 'the model failed while running');
    const input = new EdgeInferError('E_INPUT_SHAPE', 'bad shape');
    expect(runFailure([{ ok: false, error: input }, { ok: false, error: run }])).toBe('it failed window 1 of a batch: the model failed while running');
    expect(runFailure([{ ok: false, error: input }])).toBeNull();
  });
});

describe('signatureMismatch', () => {
  const t = (name: string, shape: Array<number | string | null> | null, type: 'float32' | 'int64' = 'float32') => ({ name, type, shape });
  it('should match dynamic sizes to dynamic sizes and name what differs', () => {
    expect(signatureMismatch('input', [t('x', ['batch', 1])], [t('x', ['N', 1])])).toBeNull();
    expect(signatureMismatch('input', [t('x', ['batch', 1])], [t('x', [null, 1])])).toBeNull();
    expect(signatureMismatch('input', [t('x', ['batch', 3, 64])], [t('x', ['batch', 3, 32])])).toBe("its input 'x' float32 [batch, 3, 32] is not the shared model's 'x' float32 [batch, 3, 64]");
    expect(signatureMismatch('output', [t('y', ['batch'])], [t('y', ['batch'], 'int64')])).toBe("its output 'y' int64 [batch] is not the shared model's 'y' float32 [batch]");
    expect(signatureMismatch('input', [t('x', ['batch', 1])], [t('x', ['batch', 1]), t('z', [1])])).toBe("it has 2 input(s) ('x' float32 [batch, 1], 'z' float32 [1]), the shared model 1 ('x' float32 [batch, 1])");
    expect(signatureMismatch('input', [t('x', ['batch', 1])], [t('y', ['batch', 1])])).toMatch(/^its input 'y'/);
    expect(signatureMismatch('input', [t('x', ['batch', 1])], [t('x', [4, 1])])).toMatch(/is not the shared model's/);
  });
});
