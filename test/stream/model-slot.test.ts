// The model slot and the scheduler that takes it batch by batch, on real sessions of
// fault-classifier (fp32 and int8): a swap takes effect between batches, the old session goes only
// after the new one served its probation, and a new variant that fails is rolled back with its
// batch run again, whole, on the old one.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelSession, type WindowOutcome } from '../../runtime/engine';
import { GraphBuilder, encodeModel } from '../../runtime/onnx';
import { type ModelCard, parseCardJson } from '../../runtime/model';
import { bundledModelsDir } from '../../runtime/paths';
import type { ReadyWindow } from '../../runtime/stream/device-windows';
import { ModelSlot, nonFiniteOutput } from '../../runtime/stream/model-slot';
import { Scheduler, type WindowResult } from '../../runtime/stream/scheduler';
import { readFileSync } from 'node:fs';

const dir = path.join(bundledModelsDir(), 'fault-classifier');
const load = (variant: string) => ModelSession.load(path.join(dir, `fault-classifier.${variant}.onnx`), { backend: 'wasm', threads: 1, name: variant });
const card: ModelCard = parseCardJson(readFileSync(path.join(dir, 'fault-classifier.fp32.model.json'), 'utf8'));

let seed = 1;
function window(i: number): ReadyWindow {
  const features = Float32Array.from({ length: 768 }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2);
  return { device: `d${i % 3}`, features, dims: [3, 256], startMs: i * 1000, endMs: i * 1000 + 400, messageKeys: [`k${i}`] };
}

describe('ModelSlot with the scheduler', () => {
  let fp32: ModelSession;

  beforeAll(async () => {
    fp32 = await load('fp32');
  });
  afterAll(async () => {
    await fp32.dispose();
  });

  function scheduler(slot: ModelSlot, batches: WindowResult[][], errors: unknown[] = []): Scheduler {
    return new Scheduler(slot, card, async (r) => void batches.push(r), { maxBatch: 4, maxWaitMs: 0, maxQueue: 64 }, (err) => errors.push(err));
  }

  it('should run each batch on one variant, swap between batches, and unload the old one after the probation', async () => {
    const old = await load('fp32');
    const slot = new ModelSlot({ session: old, variant: 'fp32' }, 'probabilities');
    const batches: WindowResult[][] = [];
    const s = scheduler(slot, batches);
    s.submit([0, 1, 2, 3].map(window));
    await s.drain();
    const int8 = await load('int8');
    let firsts = 0;
    const outcome = slot.swap({ session: int8, variant: 'int8' }, 2, () => firsts++);
    expect(slot.swapping).toBe(true);
    expect(slot.sessions()).toEqual([int8, old]);
    s.submit([4, 5, 6, 7].map(window));
    await s.drain();
    expect(firsts).toBe(1);
    // One batch served: the old session is still loaded, for a rollback.
    expect(slot.swapping).toBe(true);
    await expect(old.runWindows([{ spectrum: { type: 'float32', data: window(0).features, dims: [3, 256] } }])).resolves.toHaveLength(1);
    s.submit([8, 9, 10, 11].map(window));
    await s.drain();
    await expect(outcome).resolves.toEqual({ state: 'active' });
    expect(slot.sessions()).toEqual([int8]);
    await new Promise((r) => setTimeout(r, 50));
    await expect(old.runWindows([{ spectrum: { type: 'float32', data: window(0).features, dims: [3, 256] } }])).rejects.toThrow(/disposed/);
    expect(batches.map((b) => [...new Set(b.map((r) => r.variant))])).toEqual([['fp32'], ['int8'], ['int8']]);
    expect(batches.flat().map((r) => r.window.messageKeys[0])).toEqual(Array.from({ length: 12 }, (_, i) => `k${i}`));
    await s.close();
    slot.close();
    await int8.dispose();
  });

  it('should roll back a variant whose run throws and run its batch again on the previous one', async () => {
    const slot = new ModelSlot({ session: fp32, variant: 'fp32' }, 'probabilities');
    const broken = await load('int8');
    await broken.dispose(); // every run now throws E_SESSION_CLOSED
    const batches: WindowResult[][] = [];
    const errors: unknown[] = [];
    const s = scheduler(slot, batches, errors);
    const outcome = slot.swap({ session: broken, variant: 'int8' }, 3);
    s.submit([0, 1, 2, 3, 4, 5].map(window));
    await s.drain();
    const o = await outcome;
    expect(o.state).toBe('rolled-back');
    expect(o.state === 'rolled-back' && o.reason).toMatch(/^int8 rolled back to fp32 on batch 1 of its 3 on probation after the swap: it failed a batch: int8: the session was disposed/);
    expect(errors).toEqual([]);
    expect(batches.flat().map((r) => [r.variant, r.outcome.ok])).toEqual(Array.from({ length: 6 }, () => ['fp32', true]));
    expect(slot.serving.variant).toBe('fp32');
    expect(slot.swapping).toBe(false);
    await s.close();
  });

  it('should give results no variant name when given a bare session (the Node-RED nodes)', async () => {
    const batches: WindowResult[][] = [];
    const s = new Scheduler(fp32, card, async (r) => void batches.push(r), { maxBatch: 4, maxWaitMs: 0 });
    s.submit([window(0)]);
    await s.drain();
    expect(batches[0][0].variant).toBeUndefined();
    expect(s.session).toBe(fp32);
  });
});

describe('ModelSlot.judge, swap and close', () => {
  const fake = (name: string) => ({ name, dispose: async () => undefined }) as unknown as ModelSession;
  const ok = (values: number[]): WindowOutcome => ({ ok: true, outputs: { probabilities: { type: 'float32', data: Float32Array.from(values), dims: [values.length] } }, ms: 1, batch: 1 });

  it('should roll back on a non-finite output within the probation, naming the window and the value', async () => {
    const a = { session: fake('a'), variant: 'a' };
    const b = { session: fake('b'), variant: 'b' };
    const slot = new ModelSlot(a, 'probabilities');
    const outcome = slot.swap(b, 2);
    expect(slot.take()).toBe(b);
    expect(slot.judge(b, { outcomes: [ok([0.5, 0.5])] })).toBeUndefined();
    expect(slot.judge(b, { outcomes: [ok([0.5, 0.5]), ok([NaN, 1])] })).toBe(a);
    await expect(outcome).resolves.toEqual({ state: 'rolled-back', reason: "b rolled back to a on batch 2 of its 2 on probation after the swap: output 'probabilities' of window 1 of the batch is NaN" });
    // Batches of the variant serving outside a probation are not judged.
    expect(slot.judge(a, { outcomes: [ok([Infinity])] })).toBeUndefined();
  });

  it('should roll back a variant that fails a window while running (not a throw), and run its batch again on the previous one; a window refused for its input is not the variant\'s fault', async () => {
    // y = table[x]: x / 10; a Gather out of the table's range fails the run, and the session then
    // runs each window alone, so only that window fails (E_RUN).
    const tableModel = (size: number): Promise<ModelSession> => {
      const g = new GraphBuilder('table');
      const x = g.input('x', 'float32', ['batch', 1]);
      const table = g.weight('table', [size], Array.from({ length: size }, (_, i) => i / 10));
      g.output(g.op1('Gather', [table, g.op1('Cast', [x], { to: 7 })], { axis: 0 }), 'float32', ['batch', 1], 'y');
      return ModelSession.load(encodeModel(g.build()), { backend: 'wasm', threads: 1, name: `table of ${size}` });
    };
    const tableCard = { ...card, id: 'table', input: { ...card.input, tensor: 'x' }, output: { ...card.output, tensor: 'y' } } as ModelCard;
    const at = (x: number, i: number): ReadyWindow => ({ device: 'd', features: Float32Array.of(x), dims: [1], startMs: i * 1000, endMs: i * 1000 + 1000, messageKeys: [`k${i}`] });
    const wide = await tableModel(40);
    const narrow = await tableModel(20);
    const slot = new ModelSlot({ session: wide, variant: 'wide' }, 'y');
    const batches: WindowResult[][] = [];
    const s = new Scheduler(slot, tableCard, async (r) => void batches.push(r), { maxBatch: 4, maxWaitMs: 0, maxQueue: 64 }, () => undefined);
    const outcome = slot.swap({ session: narrow, variant: 'narrow' }, 3);
    s.submit([at(5, 0), at(25, 1), at(7, 2)]);
    await s.drain();
    await expect(outcome).resolves.toEqual({ state: 'rolled-back', reason: expect.stringMatching(/^narrow rolled back to wide on batch 1 of its 3 on probation after the swap: it failed window 1 of a batch: .+/) });
    // The whole batch ran again on the previous variant: no window lost.
    expect(batches).toHaveLength(1);
    expect(batches[0].map((r) => r.outcome.ok && r.outcome.outputs.y.data[0])).toEqual([0.5, 2.5, 0.7].map(Math.fround));
    expect(slot.serving.variant).toBe('wide');
    await expect.poll(() => narrow.disposed).toBe(true);
    // A window of the wrong shape fails on any variant: a swap on probation keeps serving.
    const again = await tableModel(40);
    const kept = slot.swap({ session: again, variant: 'again' }, 1);
    s.submit([{ ...at(1, 3), features: Float32Array.of(1, 2), dims: [2] }, at(3, 4)]);
    await s.drain();
    await expect(kept).resolves.toEqual({ state: 'active' });
    expect(batches[1].map((r) => r.outcome.ok)).toEqual([false, true]);
    await again.dispose();
  });

  it('should refuse a second swap during a probation, a probation of no batches, and a swap after close', async () => {
    const slot = new ModelSlot({ session: fake('a'), variant: 'a' }, 'probabilities');
    await expect(slot.swap({ session: fake('b'), variant: 'b' }, 0)).rejects.toThrow(/healthBatches: expected a whole number ≥ 1, got 0/);
    const first = slot.swap({ session: fake('b'), variant: 'b' }, 5);
    await expect(slot.swap({ session: fake('c'), variant: 'c' }, 1)).rejects.toThrow(/a swap to b is still on probation/);
    slot.close();
    await expect(first).resolves.toEqual({ state: 'active' });
    expect(slot.serving.variant).toBe('b');
    await expect(slot.swap({ session: fake('c'), variant: 'c' }, 1)).rejects.toThrow(/the pipeline is closed/);
  });

  it('should find the first non-finite value of an output, and pass outcomes that failed on their own', () => {
    expect(nonFiniteOutput([ok([1, 2]), ok([1, -Infinity])], 'probabilities')).toBe("output 'probabilities' of window 1 of the batch is -Infinity");
    expect(nonFiniteOutput([{ ok: false, error: new Error('bad window') as never }, ok([1])], 'probabilities')).toBeNull();
  });
});
