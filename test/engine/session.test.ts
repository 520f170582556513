import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelSession, benchmarkSession, benchmarkSideBySide, float32, syntheticFeeds, timeSideBySide } from '../../runtime/engine';
import { isEdgeInferError } from '../../runtime/errors';
import { failsOnZerosModel, gatherModel, gemmModel, mixedTypesModel, sumOverTimeModel, twoInputModel } from '../helpers/models';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edge-infer-engine-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function expectCode(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(isEdgeInferError(err), `expected an EdgeInferError, got ${String(err)}`).toBe(true);
  expect((err as { code: string }).code).toBe(code);
  expect((err as Error).message).toMatch(message);
}

describe('ModelSession.load', () => {
  it('should load a model from a file and compute its outputs', async () => {
    const file = path.join(dir, 'gemm.onnx');
    await fs.writeFile(file, gemmModel());
    const s = await ModelSession.load(file, { backend: 'wasm' });
    const { outputs, batch } = await s.run({ x: float32([1, 1, 2, 0], [2, 2]) });
    expect(batch).toBe(2);
    expect(outputs.y.dims).toEqual([2, 3]);
    expect(Array.from(outputs.y.data as Float32Array)).toEqual([3, 7, 12, 2, 6, 11]);
    expect(s.backend).toBe('wasm');
    expect(s.signature.inputs).toEqual([{ name: 'x', type: 'float32', shape: ['batch', 2] }]);
    await s.dispose();
  });

  it('should load a model from bytes', async () => {
    const s = await ModelSession.load(gemmModel(), { backend: 'wasm' });
    expect(s.name).toBe('<bytes>');
    const { outputs } = await s.run({ x: float32([0, 0], [1, 2]) });
    expect(Array.from(outputs.y.data as Float32Array)).toEqual([0, 0, 1]);
    await s.dispose();
  });

  it('should name the file when it does not exist', async () => {
    await expectCode(ModelSession.load(path.join(dir, 'missing.onnx'), { backend: 'wasm' }), 'E_MODEL_FILE', /missing\.onnx: cannot read \(ENOENT\)/);
  });

  it('should refuse a file that is not ONNX, naming it', async () => {
    const file = path.join(dir, 'notes.onnx');
    await fs.writeFile(file, 'these are not the weights you are looking for\n'.repeat(20));
    await expectCode(ModelSession.load(file, { backend: 'wasm' }), 'E_MODEL_CORRUPT', /notes\.onnx: not (an ONNX model|a whole ONNX model)/);
  });

  it('should say a cut-short model is truncated', async () => {
    const bytes = gemmModel();
    const file = path.join(dir, 'truncated.onnx');
    await fs.writeFile(file, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    await expectCode(ModelSession.load(file, { backend: 'wasm' }), 'E_MODEL_CORRUPT', /truncated\.onnx: .*truncated/);
  });

  it('should refuse an empty file', async () => {
    await expectCode(ModelSession.load(new Uint8Array(0), { name: 'empty.onnx', backend: 'wasm' }), 'E_MODEL_CORRUPT', /empty\.onnx: empty file/);
  });

  it('should refuse a model that fails on its warm-up run, naming it', async () => {
    const file = path.join(dir, 'fails-on-zeros.onnx');
    await fs.writeFile(file, failsOnZerosModel());
    await expectCode(ModelSession.load(file, { backend: 'wasm' }), 'E_RUN', /fails-on-zeros\.onnx: the model failed while running: .*Gather/);
    // Without a warm-up it loads, and runs on inputs it can take.
    const s = await ModelSession.load(file, { backend: 'wasm', warmupRuns: 0 });
    expect(Array.from((await s.run({ x: float32([-98], [1, 1]) })).outputs.y.data as Float32Array)).toEqual([20, 21]);
    await s.dispose();
  });

  it('should warm up models whose inputs are not float32', async () => {
    const s = await ModelSession.load(mixedTypesModel(), { backend: 'wasm', warmupRuns: 1 });
    expect(s.signature.inputs.map((i) => i.type)).toEqual(['float64', 'int8', 'int64']);
    await s.dispose();
  });

  it('should refuse bad options with the option named', async () => {
    await expectCode(ModelSession.load(gemmModel(), { threads: 0 }), 'E_ARGUMENT', /threads must be a whole number ≥ 1, got 0/);
    await expectCode(ModelSession.load(gemmModel(), { maxBatch: 1.5 }), 'E_ARGUMENT', /maxBatch/);
    await expectCode(ModelSession.load(gemmModel(), { backend: 'gpu' as never }), 'E_ARGUMENT', /backend must be one of auto, wasm, native, got 'gpu'/);
  });
});

describe('input validation', () => {
  let s: ModelSession;
  let two: ModelSession;
  beforeAll(async () => {
    s = await ModelSession.load(gemmModel(), { backend: 'wasm', name: 'gemm.onnx' });
    two = await ModelSession.load(twoInputModel(), { backend: 'wasm', name: 'two.onnx' });
  });
  afterAll(async () => {
    await s.dispose();
    await two.dispose();
  });

  it('should name a missing input and its expected shape', async () => {
    await expectCode(s.run({}), 'E_INPUT_MISSING', /gemm\.onnx: input 'x' is missing: expected float32 \[batch, 2\]/);
  });
  it('should name an input the model does not have', async () => {
    await expectCode(s.run({ x: float32([1, 2], [1, 2]), z: float32([1]) }), 'E_INPUT_UNKNOWN', /input 'z' is not an input of this model \(it takes 'x'\)/);
  });
  it('should refuse the wrong element type', async () => {
    await expectCode(s.run({ x: { type: 'int32', data: new Int32Array(2), dims: [1, 2] } }), 'E_INPUT_DTYPE', /input 'x': expected float32 \[batch, 2\], got int32 \[1, 2\]/);
  });
  it('should refuse data that cannot hold the declared type', async () => {
    await expectCode(s.run({ x: { type: 'float32', data: new Float64Array(2) as never, dims: [1, 2] } }), 'E_INPUT_DTYPE', /Float64Array, which cannot hold float32/);
  });
  it('should refuse the wrong rank', async () => {
    await expectCode(s.run({ x: float32([1, 2]) }), 'E_INPUT_SHAPE', /expected rank 2 \[batch, 2\], got rank 1 \[2\]/);
  });
  it('should refuse a wrong fixed dimension, naming the axis', async () => {
    await expectCode(s.run({ x: float32([1, 2, 3], [1, 3]) }), 'E_INPUT_SHAPE', /axis 1 must be 2/);
  });
  it('should refuse dims that do not match the data length', async () => {
    await expectCode(s.run({ x: float32([1, 2, 3], [2, 2]) }), 'E_INPUT_SHAPE', /dims \[2, 2\] hold 4 values, the data has 3/);
  });
  it('should refuse NaN and infinite values, naming where', async () => {
    await expectCode(s.run({ x: float32([1, 2, 3, Number.NaN], [2, 2]) }), 'E_INPUT_VALUE', /value at \[1, 1\] is NaN/);
    await expectCode(s.run({ x: float32([Number.POSITIVE_INFINITY, 2], [1, 2]) }), 'E_INPUT_VALUE', /value at \[0, 0\] is Infinity/);
  });
  it('should find a non-finite value wherever it sits: in every lane of the check and in its tail', async () => {
    // 7 windows of 2: three groups of four values and a tail of two.
    for (let at = 0; at < 14; at++) {
      const data = new Float32Array(14).fill(0.5);
      data[at] = at % 2 ? Number.NEGATIVE_INFINITY : Number.NaN;
      const where = new RegExp(`value at \\[${Math.floor(at / 2)}, ${at % 2}\\] is ${at % 2 ? '-Infinity' : 'NaN'}`);
      await expectCode(s.run({ x: float32(data, [7, 2]) }), 'E_INPUT_VALUE', where);
    }
    expect((await s.run({ x: float32(new Float32Array(14).fill(0.5), [7, 2]) })).batch).toBe(7);
  });
  it('should refuse dynamic dimensions that disagree across inputs', async () => {
    await expectCode(two.run({ a: float32(new Float32Array(8), [2, 4]), b: float32(new Float32Array(12), [3, 4]) }), 'E_INPUT_SHAPE', /dimension 'batch' \(axis 0\) is 3, but input 'a' gave it 2/);
  });
  it('should keep working after refusing bad input', async () => {
    const { outputs } = await s.run({ x: float32([1, 1], [1, 2]) });
    expect(Array.from(outputs.y.data as Float32Array)).toEqual([3, 7, 12]);
  });
});

describe('micro-batching', () => {
  it('should stack windows into one run and split the outputs back per window', async () => {
    const s = await ModelSession.load(gemmModel(), { backend: 'wasm', maxBatch: 4 });
    const windows = Array.from({ length: 10 }, (_, i) => ({ x: float32([i, 1]) }));
    const runsBefore = s.stats.runs;
    const out = await s.runWindows(windows);
    expect(s.stats.runs - runsBefore).toBe(3); // 4 + 4 + 2
    out.forEach((o, i) => {
      expect(o.ok).toBe(true);
      if (!o.ok) return;
      expect(o.outputs.y.dims).toEqual([3]);
      expect(Array.from(o.outputs.y.data as Float32Array)).toEqual([i + 2, 3 * i + 4, 5 * i + 7]);
      expect(o.batch).toBe(i < 8 ? 4 : 2);
    });
    await s.dispose();
  });

  it('should give a bad window its own error and still run the others', async () => {
    const s = await ModelSession.load(gemmModel(), { backend: 'wasm' });
    const out = await s.runWindows([{ x: float32([1, 1]) }, { x: float32([Number.NaN, 1]) }, { x: float32([1, 2, 3]) }, { x: float32([0, 0]) }]);
    expect(out.map((o) => o.ok)).toEqual([true, false, false, true]);
    expect(!out[1].ok && out[1].error.message).toMatch(/window 1: input 'x': value at \[0, 0\] is NaN/);
    expect(!out[2].ok && out[2].error.code).toBe('E_INPUT_SHAPE');
    await s.dispose();
  });

  it('should isolate the window that makes the model fail mid-run', async () => {
    const s = await ModelSession.load(gatherModel(), { backend: 'wasm' });
    const out = await s.runWindows([{ x: float32([1]) }, { x: float32([100]) }, { x: float32([3]) }]);
    expect(out.map((o) => o.ok)).toEqual([true, false, true]);
    expect(!out[1].ok && out[1].error.code).toBe('E_RUN');
    expect(out[2].ok && Array.from(out[2].outputs.y.data as Float32Array)).toEqual([30, 31]);
    await s.dispose();
  });

  it('should stack only windows of the same shape when a dynamic axis differs between them', async () => {
    const s = await ModelSession.load(sumOverTimeModel(), { backend: 'wasm' });
    const lengths = [3, 5, 3, 1, 5];
    const windows = lengths.map((n, i) => ({ x: float32(Array.from({ length: n }, () => i + 1), [n]) }));
    const before = s.stats.runs;
    const out = await s.runWindows(windows);
    expect(s.stats.runs - before).toBe(3); // lengths 3, 5 and 1
    out.forEach((o, i) => {
      expect(o.ok && Array.from(o.outputs.y.data as Float32Array), `window ${i}`).toEqual([lengths[i] * (i + 1)]);
    });
    expect(out.map((o) => o.ok && o.batch)).toEqual([2, 2, 2, 1, 2]);
    await s.dispose();
  });

  it('should run windows one at a time when the batch axis is fixed', async () => {
    const s = await ModelSession.load(gemmModel({ batch: 1 }), { backend: 'wasm' });
    expect(s.batchable).toBe(false);
    const before = s.stats.runs;
    const out = await s.runWindows([{ x: float32([1, 0]) }, { x: float32([0, 1]) }]);
    expect(s.stats.runs - before).toBe(2);
    expect(out.every((o) => o.ok && o.batch === 1)).toBe(true);
    await s.dispose();
  });
});

describe('synthetic feeds and benchmarks', () => {
  it('should make seeded feeds of every input type, on the batch asked for', () => {
    const inputs = [
      { name: 'a', type: 'float64', shape: ['batch', 2] },
      { name: 'b', type: 'int8', shape: ['batch', 2] },
      { name: 'c', type: 'float32', shape: ['batch', 'time'] },
    ] as const;
    const feeds = syntheticFeeds(inputs, 4, { time: 3 }, 9);
    expect(feeds.a.data).toBeInstanceOf(Float64Array);
    expect(feeds.b.data).toBeInstanceOf(Int8Array);
    expect(feeds.c.dims).toEqual([4, 3]);
    expect(Array.from(feeds.c.data as Float32Array)).toEqual(Array.from(syntheticFeeds(inputs, 4, { time: 3 }, 9).c.data as Float32Array));
    expect(new Set(feeds.c.data as Float32Array).size).toBe(12);
  });

  it('should count the windows a run really takes', async () => {
    const dynamic = await ModelSession.load(gemmModel(), { backend: 'wasm' });
    const fixed = await ModelSession.load(gemmModel({ batch: 1 }), { backend: 'wasm' });
    expect((await benchmarkSession(dynamic, { batch: 8, runs: 5 })).batch).toBe(8);
    const r = await benchmarkSession(fixed, { batch: 8, runs: 5 });
    expect(r.batch).toBe(1);
    expect(r.runs).toBe(5);
    expect(r.windowsPerSecond).toBeCloseTo(1000 / r.meanMs, 6);
    await dynamic.dispose();
    await fixed.dispose();
  });

  it('should warm up for the time asked before timing', async () => {
    const s = await ModelSession.load(gemmModel(), { backend: 'wasm' });
    const t0 = performance.now();
    const r = await benchmarkSession(s, { runs: 2, warmupMs: 150 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
    expect(r.runs).toBe(2);
    expect(s.stats.runs).toBeGreaterThan(5); // warm-up runs went on past the default three
    await s.dispose();
  });

  it('should time ways of running in turns, after three warm-up runs each, and give each its median', async () => {
    const calls: string[] = [];
    const sleepy = (name: string, ms: number) => async () => {
      calls.push(name);
      await new Promise((r) => setTimeout(r, ms));
    };
    const [fast, slow] = await timeSideBySide([sleepy('a', 0), sleepy('b', 15)], { rounds: 3, runsPerTurn: 2 });
    expect(calls.join('')).toBe('aaabbb' + 'aabb'.repeat(3));
    expect(slow).toBeGreaterThanOrEqual(14);
    expect(fast).toBeLessThan(slow);
  });

  it('should time sessions side by side, each on its own batch, after their warm-up', async () => {
    const dynamic = await ModelSession.load(gemmModel(), { backend: 'wasm' });
    const fixed = await ModelSession.load(gemmModel({ batch: 1 }), { backend: 'wasm' });
    const [d, f] = await benchmarkSideBySide([dynamic, fixed], { batch: 8, rounds: 3, runsPerTurn: 4, warmupMs: 50 });
    expect(d.windowsPerSecond).toBeCloseTo((8 * 1000) / d.msPerRun, 6);
    expect(f.windowsPerSecond).toBeCloseTo(1000 / f.msPerRun, 6);
    // 3 rounds of 4 timed runs each, after at least 3 warm-up runs each.
    expect(dynamic.stats.runs).toBeGreaterThanOrEqual(15);
    expect(fixed.stats.runs).toBeGreaterThanOrEqual(15);
    expect(dynamic.stats.windows - 12 * 8).toBe((dynamic.stats.runs - 12) * 8);
    expect(fixed.stats.windows).toBe(fixed.stats.runs);
    await dynamic.dispose();
    await fixed.dispose();
  });
});

describe('timing, concurrency and dispose', () => {
  it('should time every run and count windows, leaving warm-up out', async () => {
    const s = await ModelSession.load(gemmModel(), { backend: 'wasm', warmupRuns: 3 });
    expect(s.stats).toEqual({ runs: 0, windows: 0, totalMs: 0, lastMs: 0 });
    const r = await s.run({ x: float32(new Float32Array(8), [4, 2]) });
    expect(r.ms).toBeGreaterThan(0);
    expect(s.stats.runs).toBe(1);
    expect(s.stats.windows).toBe(4);
    expect(s.stats.lastMs).toBe(r.ms);
    await s.dispose();
  });

  it('should give every concurrent caller its own outputs', async () => {
    const s = await ModelSession.load(gemmModel(), { backend: 'wasm' });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => s.run({ x: float32([i, 0], [1, 2]) })));
    results.forEach((r, i) => expect((r.outputs.y.data as Float32Array)[0]).toBe(i));
    await s.dispose();
  });

  it('should refuse runs after dispose and let dispose be called twice', async () => {
    const s = await ModelSession.load(gemmModel(), { backend: 'wasm' });
    await s.dispose();
    await s.dispose();
    await expectCode(s.run({ x: float32([1, 1], [1, 2]) }), 'E_SESSION_CLOSED', /disposed/);
    await expectCode(s.runWindows([{ x: float32([1, 1]) }]), 'E_SESSION_CLOSED', /disposed/);
  });

  it('should let runs already queued finish before releasing', async () => {
    const s = await ModelSession.load(gemmModel(), { backend: 'wasm' });
    const pending = s.run({ x: float32([2, 0], [1, 2]) });
    await s.dispose();
    expect(((await pending).outputs.y.data as Float32Array)[0]).toBe(2);
  });
});
