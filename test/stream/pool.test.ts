// The worker pool against the real anomaly model on onnxruntime-web: the features and scores a
// thread makes are the ones this thread makes, samples cross without being taken away, a thread
// that dies is replaced and its batches run again, and bad uses fail with a line that says why.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelSession } from '../../runtime/engine';
import { isEdgeInferError } from '../../runtime/errors';
import { type ModelCard, parseCard } from '../../runtime/model';
import { DeviceWindows, WorkerPool, computeFeatures, defaultWorkers } from '../../runtime/stream';
import { MAX_RESTARTS_PER_THREAD } from '../../runtime/stream/pool';
import type { ReadyWindow } from '../../runtime/stream/device-windows';
import { readFileSync } from 'node:fs';

const MODEL = path.join(__dirname, '../../models/vibration-anomaly/vibration-anomaly.fp32.onnx');
const card: ModelCard = parseCard(JSON.parse(readFileSync(MODEL.replace(/\.onnx$/, '.model.json'), 'utf8')));
const T0 = 1_700_000_000_000;

/** Windows of a device streaming sines, as the gateway's windows stage makes them. */
function windows(deferFeatures: boolean, count: number, device = 'press-1'): ReadyWindow[] {
  const w = new DeviceWindows(card, { deferFeatures });
  const n = card.input.window + (count - 1) * card.input.hop;
  const channels: Record<string, Float32Array> = {};
  card.input.channels.forEach((c, k) => (channels[c.name] = Float32Array.from({ length: n }, (_, i) => Math.sin((2 * Math.PI * (50 + 30 * k) * i) / card.input.sampleRate) + 0.01 * ((i * 7919) % 13))));
  return w.push(device, { device, channels, timestampMs: T0 }, 'm1', T0).windows;
}

let session: ModelSession;
let pool: WorkerPool;
beforeAll(async () => {
  session = await ModelSession.load(MODEL, { backend: 'wasm', threads: 1 });
  pool = new WorkerPool({ size: 2 });
});
afterAll(async () => {
  await pool.close();
  await session.dispose();
});

async function inThread(ws: ReadyWindow[]): Promise<number[]> {
  const outcomes = await session.runWindows(ws.map((w) => ({ [card.input.tensor]: { type: 'float32' as const, data: w.features, dims: w.dims } })));
  return outcomes.map((o) => (o.ok ? Array.from(o.outputs[card.output.tensor].data as Float32Array) : [NaN])).flat();
}

describe('WorkerPool', () => {
  it('should size itself one thread per core but one, at least one', () => {
    expect(defaultWorkers()).toBe(Math.max(1, os.availableParallelism() - 1));
  });

  it("should make in a thread the features and outputs this thread makes, leaving the samples with their owner", async () => {
    const here = windows(false, 12);
    const there = windows(true, 12);
    expect(there[0].features.length).toBe(0);
    expect(there[0].samples![0].buffer).toBeInstanceOf(SharedArrayBuffer);
    const outcomes = await pool.run(session, card.input, there);
    expect(outcomes.every((o) => o.ok)).toBe(true);
    there.forEach((w, i) => {
      expect(Array.from(w.features)).toEqual(Array.from(here[i].features));
      // Shared, not transferred: the samples are still readable here (a retry needs them).
      expect(w.samples![0].length).toBe(card.input.window);
      expect(Array.from(computeFeatures(card.input, w.samples!))).toEqual(Array.from(here[i].features));
    });
    const scores = outcomes.map((o) => (o.ok ? Array.from(o.outputs[card.output.tensor].data as Float32Array) : [NaN])).flat();
    const expected = await inThread(here);
    scores.forEach((s, i) => expect(s).toBeCloseTo(expected[i], 5));
  });

  it('should replace a thread that dies and run its batches again, with the same results', async () => {
    const expected = await inThread(windows(false, 40));
    const batches = [0, 1, 2, 3].map(() => windows(true, 40));
    const before = pool.threadIds;
    const runs = batches.map((b) => pool.run(session, card.input, b));
    expect(pool.busy).toBe(4);
    expect(pool.load).toEqual([2, 2]);
    await pool.kill(0);
    const outcomes = await Promise.all(runs);
    expect(pool.restarts).toBe(1);
    expect(pool.threadIds[0]).not.toBe(before[0]);
    expect(pool.threadIds[1]).toBe(before[1]);
    for (const o of outcomes) {
      const scores = o.map((x) => (x.ok ? Array.from(x.outputs[card.output.tensor].data as Float32Array) : [NaN])).flat();
      scores.forEach((s, i) => expect(s).toBeCloseTo(expected[i], 5));
    }
  });

  it('should fail the preparation and a batch of a model whose file is gone, naming the file, and keep serving others', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-pool-'));
    try {
      const file = path.join(dir, 'gone.onnx');
      copyFileSync(MODEL, file);
      const gone = await ModelSession.load(file, { backend: 'wasm', threads: 1 });
      rmSync(file);
      // Ahead of the stream (every thread, with a warm-up batch) as in a batch.
      const early = await pool.prepare(gone, { input: card.input, dims: windows(true, 1)[0].dims, windows: 4 }).catch((e: unknown) => e);
      expect((early as Error).message).toContain(`${file}: cannot read (ENOENT)`);
      const err = await pool.run(gone, card.input, windows(true, 2)).catch((e: unknown) => e);
      expect(isEdgeInferError(err, 'E_MODEL_FILE')).toBe(true);
      expect((err as Error).message).toContain(`${file}: cannot read (ENOENT)`);
      await pool.prepare(session, { input: card.input, dims: windows(true, 1)[0].dims, windows: 4 });
      expect((await pool.run(session, card.input, windows(true, 2))).every((o) => o.ok)).toBe(true);
      await gone.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('should stop replacing threads that keep dying, and say so when a batch finds none', async () => {
    const reports: string[] = [];
    const fragile = new WorkerPool({ size: 1, onError: (e) => reports.push(e.message) });
    try {
      for (let k = 0; k < MAX_RESTARTS_PER_THREAD; k++) await fragile.kill(0);
      expect(fragile.restarts).toBe(MAX_RESTARTS_PER_THREAD);
      await fragile.kill(0);
      expect(fragile.restarts).toBe(MAX_RESTARTS_PER_THREAD);
      expect(reports.at(-1)).toMatch(/is not replaced: its threads died 4 times within 10 s \(last: killed\)$/);
      await expect(fragile.run(session, card.input, windows(true, 1))).rejects.toThrow('the worker pool has no thread left: its threads died 4 times within 10 s (last: killed)');
    } finally {
      await fragile.close();
    }
  });

  it('should refuse bad uses with a line that says what is wrong', async () => {
    expect(() => new WorkerPool({ size: 0 })).toThrow('workers: expected a whole number ≥ 1 of threads, got 0');
    expect(() => new WorkerPool({ size: 1.5 })).toThrow('workers: expected a whole number ≥ 1 of threads, got 1.5');
    await expect(pool.kill(7)).rejects.toThrow('kill: no thread 7 in a pool of 2');
    expect(() => pool.run(session, card.input, windows(false, 1, 'press-9'))).toThrow('window 0 of the batch (press-9) carries no samples for a worker thread');
    const fromBytes = await ModelSession.load(readFileSync(MODEL), { backend: 'wasm', threads: 1, name: 'anomaly-bytes' });
    try {
      expect(() => pool.run(fromBytes, card.input, windows(true, 1))).toThrow('anomaly-bytes: a worker thread loads a model from its file; this one was loaded from bytes');
    } finally {
      await fromBytes.dispose();
    }
    const closed = new WorkerPool({ size: 1 });
    await closed.close();
    await expect(closed.run(session, card.input, windows(true, 1))).rejects.toThrow('the worker pool is closed');
    await expect(closed.prepare(session)).rejects.toThrow('the worker pool is closed');
  });
});
