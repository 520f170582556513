// The quantizer's parts on their own: weight codecs, activation parameters, calibration,
// opset upgrades, how FP8 weights are loaded, and the report.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ModelSession, type TensorMap } from '../../runtime/engine';
import { isEdgeInferError } from '../../runtime/errors';
import { AttributeType, DataType, type GraphProto, GraphBuilder, type ModelProto, decodeModel, encodeModel, float, opsetOf, tensorSize, tensorValues, valueInfo } from '../../runtime/onnx';
import {
  type CalibrationMethod, type VariantComparison, activationParams, calibrateRanges, compareWithFp32, dequantize, entropyThreshold, errorHistogram, fp16AtLeast,
  htmlReport, loadOptionsFor, quantizeModel, quantizeWeight, quantizeWeightsOnly, reduceRangeFor, upgradeOpset,
} from '../../runtime/quant';
import { GraphEditor, cloneModel } from '../../runtime/quant/graph';
import { fixtureNamed, gaussian } from '../helpers/exporter-fixtures';
import { caught } from '../helpers/errors';
import { BLOCK_SIZE, calibrationWindows, heldOutWindows, runOn, stackWindows, worstCosine } from './harness';

function randomWeights(n: number, seed: number, sd = 0.3): Float32Array {
  const next = gaussian(seed);
  return Float32Array.from({ length: n }, () => next() * sd);
}

describe('quantizeWeight and dequantize', () => {
  it('should round-trip per-channel int8 within half a step of its channel', () => {
    const dims = [6, 10];
    const w = randomWeights(60, 1);
    for (const axis of [0, 1]) {
      const q = quantizeWeight(w, dims, 'int8', axis);
      expect(q.scaleDims).toEqual([dims[axis]]);
      expect(q.axis).toBe(axis);
      const back = dequantize(q.data, q.dataType, dims, q.scale, q.scaleDims, new Int8Array(q.scale.length), axis);
      for (let i = 0; i < w.length; i++) {
        const channel = axis === 0 ? Math.floor(i / 10) : i % 10;
        expect(Math.abs(back[i] - w[i]), `element ${i}`).toBeLessThanOrEqual((q.scale[channel] / 2) * (1 + 1e-6));
      }
      // The largest weight of every channel lands on ±127 (symmetric, -128 unused).
      const codes = Array.from(q.data as Int8Array);
      expect(Math.min(...codes)).toBeGreaterThanOrEqual(-127);
      expect(Math.max(...codes.map(Math.abs))).toBe(127);
    }
  });

  it('should give blocked scales the weight rank, ceil(K / block) along the blocked axis, one per channel and block', () => {
    const dims = [4, 20];
    const w = randomWeights(80, 2);
    const q = quantizeWeight(w, dims, 'e4m3fn', 0, { axis: 1, size: BLOCK_SIZE });
    expect(q.scaleDims).toEqual([4, 3]);
    expect(q.axis).toBe(1);
    expect(q.blockSize).toBe(BLOCK_SIZE);
    expect(q.dataType).toBe(DataType.FLOAT8E4M3FN);
    for (let row = 0; row < 4; row++) {
      for (let block = 0; block < 3; block++) {
        const slice = Array.from(w.subarray(row * 20 + block * 8, row * 20 + Math.min(20, block * 8 + 8)), Math.abs);
        // max|w| / 448, rounded up to a value fp16 holds (by at most 2⁻¹⁰ of it).
        const exact = Math.max(...slice) / 448;
        expect(q.scale[row * 3 + block]).toBe(Math.fround(fp16AtLeast(exact)));
        expect(q.scale[row * 3 + block]).toBeGreaterThanOrEqual(exact);
        expect(q.scale[row * 3 + block]).toBeLessThanOrEqual(exact * (1 + 2 ** -10));
      }
    }
    const back = dequantize(q.data, q.dataType, dims, q.scale, q.scaleDims, undefined, q.axis, q.blockSize);
    for (let i = 0; i < w.length; i++) {
      const s = q.scale[Math.floor(i / 20) * 3 + Math.floor((i % 20) / 8)];
      // E4M3 rounds to 3 mantissa bits (≤ 1/16 relative) above 2^-6, to steps of 2^-9 below.
      expect(Math.abs(back[i] - w[i]), `element ${i}`).toBeLessThanOrEqual(Math.abs(w[i]) / 16 + s * 2 ** -10 + 1e-12);
    }
  });

  it('should give an all-zero channel scale 1 and zero codes, and bring it back as zeros', () => {
    const w = Float32Array.from([0, 0, 0, 0.5, -1, 0.25]);
    for (const format of ['int8', 'e4m3fn', 'e5m2'] as const) {
      const q = quantizeWeight(w, [2, 3], format, 0);
      expect(q.scale[0], format).toBe(1);
      expect(Array.from(q.data.subarray(0, 3)), format).toEqual([0, 0, 0]);
      const back = dequantize(q.data, q.dataType, [2, 3], q.scale, q.scaleDims, format === 'int8' ? new Int8Array(2) : undefined, 0);
      expect(Array.from(back.subarray(0, 3)), format).toEqual([0, 0, 0]);
      // Within its scale's fp16 rounding (2⁻¹⁰) and the format's own.
      expect(back[4], format).toBeCloseTo(-1, 2);
    }
  });

  it('should refuse values that do not fill the dims, an axis outside the weight and a block size below 1', async () => {
    const w = randomWeights(6, 3);
    expect(isEdgeInferError(await caught(() => quantizeWeight(w, [2, 4], 'int8', 0)), 'E_ARGUMENT')).toBe(true);
    expect(isEdgeInferError(await caught(() => quantizeWeight(w, [2, 3], 'int8', 2)), 'E_ARGUMENT')).toBe(true);
    expect(isEdgeInferError(await caught(() => quantizeWeight(w, [2, 3], 'e4m3fn', 0, { axis: 1, size: 0 })), 'E_ARGUMENT')).toBe(true);
  });
});

describe('activationParams', () => {
  it('should stretch the range to include 0 and put zero exactly on a code', () => {
    const cases = [
      { r: { min: -1, max: 3 }, lo: -1, hi: 3 },
      { r: { min: 2, max: 5 }, lo: 0, hi: 5 },
      { r: { min: -4, max: -1 }, lo: -4, hi: 0 },
    ];
    for (const { r, lo, hi } of cases) {
      const { scale, zeroPoint } = activationParams(r);
      expect(scale).toBeCloseTo((hi - lo) / 255, 12);
      expect(Number.isInteger(zeroPoint)).toBe(true);
      expect(zeroPoint).toBeGreaterThanOrEqual(0);
      expect(zeroPoint).toBeLessThanOrEqual(255);
      // Zero point within half a step of where 0 falls: the code zeroPoint dequantizes to exactly 0.
      expect(Math.abs(zeroPoint - -lo / scale)).toBeLessThanOrEqual(0.5);
    }
    expect(activationParams({ min: 2, max: 5 }).zeroPoint).toBe(0);
    expect(activationParams({ min: -4, max: -1 }).zeroPoint).toBe(255);
  });

  it('should give a finite scale and zero point 0 for a degenerate range', () => {
    expect(activationParams({ min: 0, max: 0 })).toEqual({ scale: 1, zeroPoint: 0 });
    const constant = activationParams({ min: 3, max: 3 });
    expect(constant.scale).toBeCloseTo(3 / 255, 12);
    expect(constant.zeroPoint).toBe(0);
  });
});

/** A histogram of |x| over [0, amax] in `bins` bins. */
function absHistogram(values: ArrayLike<number>, bins = 2048): { counts: Float64Array; amax: number } {
  let amax = 0;
  for (let i = 0; i < values.length; i++) amax = Math.max(amax, Math.abs(values[i]));
  const counts = new Float64Array(bins);
  for (let i = 0; i < values.length; i++) counts[Math.min(bins - 1, Math.floor((Math.abs(values[i]) / amax) * bins))]++;
  return { counts, amax };
}

/**
 * TensorRT's entropy calibration as onnxruntime's calibrate.py writes it, level by level: the
 * reference distribution P is the first t bins with the rest folded into the last; `nonzeros` marks
 * where P has mass; each of the 128 levels takes the summed observed counts of its bins and spreads
 * them evenly over its nonzero bins (Q is 0 where P is). With entropyThreshold's own choices:
 * the first bin capped at its neighbour, thresholds keeping under half the values skipped, no
 * smoothing but 50 × p where Q is empty and P is not.
 */
function referenceEntropyThreshold(histogram: Float64Array, amax: number, levels = 128): number {
  const bins = histogram.length;
  const counts = Array.from(histogram);
  counts[0] = Math.min(counts[0], counts[1]);
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  const all = sum(counts);
  let best = bins;
  let bestKl = Infinity;
  for (let t = levels; t <= bins; t++) {
    const sliced = counts.slice(0, t);
    if (sum(sliced) < all / 2) continue;
    const p = [...sliced];
    p[t - 1] += sum(counts.slice(t));
    const nonzeros = p.map((x) => (x !== 0 ? 1 : 0));
    const q = new Array<number>(t).fill(0);
    const per = t / levels;
    for (let level = 0; level < levels; level++) {
      const start = Math.floor(level * per);
      const end = Math.min(t, Math.floor((level + 1) * per));
      const norm = sum(nonzeros.slice(start, end));
      if (norm !== 0) for (let b = start; b < end; b++) q[b] = sum(sliced.slice(start, end)) / norm;
    }
    for (let b = 0; b < t; b++) if (p[b] === 0) q[b] = 0;
    const pTotal = sum(p);
    const qTotal = sum(q);
    let kl = 0;
    for (let b = 0; b < t; b++) {
      if (p[b] === 0) continue;
      const pb = p[b] / pTotal;
      const qb = q[b] / qTotal;
      kl += qb > 0 ? pb * Math.log(pb / qb) : pb * 50;
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = t;
    }
  }
  return (best / bins) * amax;
}

describe('entropyThreshold', () => {
  it('should clip a Gaussian with a few far outliers well below the outliers and above its bulk', () => {
    const next = gaussian(4);
    const values = [...Array.from({ length: 20_000 }, next), 40, -45, 50];
    const { counts, amax } = absHistogram(values);
    const t = entropyThreshold(counts, amax);
    expect(t).toBeGreaterThan(2.5);
    expect(t).toBeLessThan(8);
  });

  it("should spread each level's mass over the bins where P has mass, the folded tail's bin included, as TensorRT does, on sparse tails", () => {
    // Activations whose tails thin out into scattered values: beyond the bulk most bins are empty,
    // so for most candidate thresholds the last bin holds only the folded tail.
    const laplace = (seed: number): number[] => {
      const next = gaussian(seed);
      return Array.from({ length: 20_000 }, () => Math.sign(next()) * -Math.log(Math.abs(next()) / 4 + 1e-9));
    };
    const cases = [
      { name: 'gaussian, seed 1', values: Array.from({ length: 20_000 }, gaussian(1)) },
      { name: 'gaussian, seed 3', values: Array.from({ length: 20_000 }, gaussian(3)) },
      { name: 'laplace, seed 2', values: laplace(2) },
    ];
    for (const { name, values } of cases) {
      const { counts, amax } = absHistogram(values);
      expect(entropyThreshold(counts, amax), name).toBe(referenceEntropyThreshold(counts, amax));
    }
  });

  it('should not put the threshold at the smallest value of a distribution that stays away from zero', () => {
    // |x| uniform over [0.5, 1] (a gate or a variance): clipping at its smallest value saturates it all.
    const counts = new Float64Array(2048);
    for (let b = 1024; b < 2048; b++) counts[b] = 10;
    expect(entropyThreshold(counts, 1)).toBeGreaterThanOrEqual(0.75);
  });
});

/** x [batch, 64] → doubled = 2x → h = doubled + 1 → gate = Sigmoid(x / 2) → y = h + gate. */
function probeModel(): ModelProto {
  const g = new GraphBuilder('probe');
  const x = g.input('x', 'float32', ['batch', 64]);
  const doubled = g.op1('Mul', [x, g.scalar('two', 2)], {}, { output: 'doubled' });
  const h = g.op1('Add', [doubled, g.scalar('one', 1)], {}, { output: 'h' });
  const gate = g.op1('Sigmoid', [g.op1('Mul', [x, g.scalar('half', 0.5)])], {}, { output: 'gate' });
  g.output(g.op1('Add', [h, gate]), 'float32', ['batch', 64], 'y');
  return g.build();
}

function probeWindows(count: number, seed: number, outlier?: number): TensorMap[] {
  const next = gaussian(seed);
  return Array.from({ length: count }, (_, i) => {
    const data = Float32Array.from({ length: 64 }, next);
    if (outlier !== undefined && i === 3) data[17] = outlier;
    return { x: { type: 'float32', data, dims: [64] } };
  });
}

describe('calibrateRanges', () => {
  it('should give minmax the exact extremes of a tensor, computed here by hand', async () => {
    const windows = probeWindows(8, 5);
    const ranges = await calibrateRanges(probeModel(), ['h'], windows, { method: 'minmax' });
    let min = Infinity;
    let max = -Infinity;
    for (const w of windows) for (const x of w.x.data as Float32Array) {
      const h = Math.fround(Math.fround(2 * x) + 1);
      min = Math.min(min, h);
      max = Math.max(max, h);
    }
    expect(ranges.get('h')).toEqual({ min, max });
  });

  it('should let percentile clip an injected outlier that minmax keeps', async () => {
    const windows = probeWindows(64, 6, 100);
    const minmax = (await calibrateRanges(probeModel(), ['h'], windows, { method: 'minmax' })).get('h')!;
    const percentile = (await calibrateRanges(probeModel(), ['h'], windows, { method: 'percentile', percentile: 99.9 })).get('h')!;
    expect(minmax.max).toBe(201);
    expect(percentile.max).toBeLessThan(12);
    expect(percentile.max).toBeGreaterThan(4);
    expect(percentile.min).toBeGreaterThanOrEqual(minmax.min);
  });

  it('should give percentile 100 exactly the minmax range', async () => {
    const windows = probeWindows(16, 12, -30);
    for (const tensor of ['h', 'gate']) {
      const minmax = (await calibrateRanges(probeModel(), [tensor], windows, { method: 'minmax' })).get(tensor);
      const all = (await calibrateRanges(probeModel(), [tensor], windows, { method: 'percentile', percentile: 100 })).get(tensor);
      expect(all, tensor).toEqual(minmax);
    }
  });

  it('should put 99.99th percentile bounds within a fraction of a histogram bin of the true quantiles, low side and high side alike', async () => {
    // x takes 65536 evenly spaced values (exact in float32), so 'doubled' = 2x has known quantiles:
    // 0.005 % of 65536 is 3.3 values in from each end, about a tenth of one of the 2048 bins.
    const n = 65536;
    const xs = Float32Array.from({ length: n }, (_, k) => (k - n / 2) / 4096);
    const windows: TensorMap[] = Array.from({ length: n / 64 }, (_, w) => ({ x: { type: 'float32', data: xs.slice(w * 64, w * 64 + 64), dims: [64] } }));
    const r = (await calibrateRanges(probeModel(), ['doubled'], windows, { method: 'percentile', percentile: 99.99 })).get('doubled')!;
    const doubled = Float32Array.from(xs, (x) => 2 * x);
    const tail = (1 - 0.9999) / 2;
    const trueLow = doubled[Math.floor(tail * n)];
    const trueHigh = doubled[Math.ceil((1 - tail) * n) - 1];
    const bin = (doubled[n - 1] - doubled[0]) / 2048;
    expect(Math.abs(r.min - trueLow) / bin, `low ${r.min} vs ${trueLow}`).toBeLessThan(0.25);
    expect(Math.abs(r.max - trueHigh) / bin, `high ${r.max} vs ${trueHigh}`).toBeLessThan(0.25);
    // A symmetric distribution gets symmetric bounds.
    expect(Math.abs(r.min + r.max) / bin).toBeLessThan(0.25);
  });

  it('should keep the entropy range of a one-sided tensor (a Sigmoid gate) around its values', async () => {
    const windows = probeWindows(32, 7);
    const r = (await calibrateRanges(probeModel(), ['gate'], windows, { method: 'entropy' })).get('gate')!;
    expect(r.min).toBeLessThanOrEqual(r.max);
    let outside = 0;
    let total = 0;
    for (const w of windows) for (const x of w.x.data as Float32Array) {
      const v = 1 / (1 + Math.exp(-x / 2));
      total++;
      if (v > r.max + 1e-6 || v < r.min - 1e-6) outside++;
    }
    expect(outside / total, `range [${r.min}, ${r.max}] clips`).toBeLessThanOrEqual(0.05);
  });

  it('should report progress over both passes of the histogram methods', async () => {
    const calls: Array<[number, number]> = [];
    await calibrateRanges(probeModel(), ['h'], probeWindows(8, 8), { method: 'percentile', batch: 4, onProgress: (d, t) => calls.push([d, t]) });
    expect(calls).toEqual([[4, 16], [8, 16], [12, 16], [16, 16]]);
  });

  it('should stop with E_CANCELLED when its signal is aborted, before or between runs', async () => {
    const before = new AbortController();
    before.abort();
    const early = await caught(() => calibrateRanges(probeModel(), ['h'], probeWindows(8, 9), { method: 'minmax', signal: before.signal }));
    expect(isEdgeInferError(early, 'E_CANCELLED'), String(early)).toBe(true);

    const during = new AbortController();
    const late = await caught(() =>
      calibrateRanges(probeModel(), ['h'], probeWindows(8, 9), { method: 'entropy', batch: 1, signal: during.signal, onProgress: (done) => done === 2 && during.abort() }),
    );
    expect(isEdgeInferError(late, 'E_CANCELLED'), String(late)).toBe(true);
    expect((late as Error).message).toMatch(/after 2 of 16 windows/);
  });

  it('should refuse an unknown method by naming the known ones, and an empty window list', async () => {
    const bad = await caught(() => calibrateRanges(probeModel(), ['h'], probeWindows(2, 1), { method: 'kl' as CalibrationMethod }));
    expect(isEdgeInferError(bad, 'E_ARGUMENT')).toBe(true);
    expect((bad as Error).message).toMatch(/minmax, percentile, entropy.*'kl'/);
    expect(isEdgeInferError(await caught(() => calibrateRanges(probeModel(), ['h'], [], { method: 'minmax' })), 'E_ARGUMENT')).toBe(true);
  });
});

describe('upgradeOpset', () => {
  it("should turn ReduceMean's axes attribute into an input at opset 18, and the model should compute the same", async () => {
    const f = fixtureNamed('layernorm-decomposed');
    const editor = new GraphEditor(cloneModel(decodeModel(f.bytes())));
    upgradeOpset(editor, 18);
    const means = editor.nodes.filter((n) => n.op_type === 'ReduceMean');
    expect(means).toHaveLength(2);
    for (const n of means) {
      expect(n.attribute?.some((a) => a.name === 'axes')).toBe(false);
      expect(n.input).toHaveLength(2);
      expect(Array.from(tensorValues(editor.initializers.get(n.input![1])!) as BigInt64Array)).toEqual([-1n]);
    }
    expect(opsetOf(editor.model)).toBe(18);
    const feeds = stackWindows(heldOutWindows(f));
    const before = await runOn(f.bytes(), 'native', feeds);
    const after = await runOn(encodeModel(editor.model), 'native', feeds);
    for (const [name, v] of Object.entries(before)) for (let i = 0; i < v.length; i++) expect(Math.abs(after[name][i] - v[i])).toBeLessThan(1e-6);
  });

  it('should keep an opset-12 Softmax over axis 1 of a 3-D tensor meaning the same at opset 13', async () => {
    // Softmax-12 flattens everything from `axis` on (default 1); Softmax-13 normalizes along one axis only.
    const g = new GraphBuilder('softmax12');
    const x = g.input('x', 'float32', ['batch', 3, 4]);
    g.output(g.op1('Softmax', [x]), 'float32', ['batch', 3, 4], 'y');
    const model = g.build({ opsets: { '': 12 } });
    const editor = new GraphEditor(cloneModel(model));
    upgradeOpset(editor, 13);
    const feeds: TensorMap = { x: { type: 'float32', data: Float32Array.from({ length: 12 }, (_, i) => i / 3), dims: [1, 3, 4] } };
    const before = await runOn(encodeModel(model), 'native', feeds);
    const after = await runOn(encodeModel(editor.model), 'native', feeds);
    for (let i = 0; i < 12; i++) expect(after.y[i], `element ${i}`).toBeCloseTo(before.y[i], 6);
  });

  it('should rewrite the nodes inside If branches too, and Dropout\'s ratio, so the opset-11 model computes the same at 13', async () => {
    // x [batch, 3, 4]; mode picks the branch. then: Softmax-11 over axis 1 (flattening 3 × 4);
    // else: Squeeze(Unsqueeze(x, [1]), [1]) × ReduceSum(x, [2]) through a Dropout with ratio 0.3.
    const g = new GraphBuilder('branches11');
    const x = g.input('x', 'float32', ['batch', 3, 4]);
    const mode = g.input('mode', 'float32', ['batch', 1]);
    const cond = g.op1('Greater', [g.op1('ReduceSum', [mode], { keepdims: 0 }), g.scalar('zero', 0)]);
    const thenBranch: GraphProto = {
      name: 'then',
      node: [{ op_type: 'Softmax', name: 'then/Softmax', input: [x], output: ['then_out'] }],
      output: [valueInfo('then_out', 'float32', ['batch', 3, 4])],
    };
    const ints = (name: string, v: number[]) => ({ name, type: AttributeType.INTS, ints: v });
    const elseBranch: GraphProto = {
      name: 'else',
      node: [
        { op_type: 'Unsqueeze', name: 'else/Unsqueeze', input: [x], output: ['else_u'], attribute: [ints('axes', [1])] },
        { op_type: 'Squeeze', name: 'else/Squeeze', input: ['else_u'], output: ['else_s'], attribute: [ints('axes', [1])] },
        { op_type: 'ReduceSum', name: 'else/ReduceSum', input: ['else_s'], output: ['else_sum'], attribute: [ints('axes', [2]), { name: 'keepdims', type: AttributeType.INT, i: 1 }] },
        { op_type: 'Dropout', name: 'else/Dropout', input: ['else_sum'], output: ['else_kept'], attribute: [{ name: 'ratio', type: AttributeType.FLOAT, f: 0.3 }] },
        { op_type: 'Mul', name: 'else/Mul', input: ['else_s', 'else_kept'], output: ['else_out'] },
      ],
      output: [valueInfo('else_out', 'float32', ['batch', 3, 4])],
    };
    const chosen = g.op1('If', [cond], { then_branch: { graph: thenBranch }, else_branch: { graph: elseBranch } });
    const dropped = g.op1('Dropout', [chosen], { ratio: float(0.5) });
    g.output(dropped, 'float32', ['batch', 3, 4], 'y');
    const model = g.build({ opsets: { '': 11 } });
    const editor = new GraphEditor(cloneModel(model));
    upgradeOpset(editor, 13);
    expect(opsetOf(editor.model)).toBe(13);
    const inner = [...thenBranch.node!, ...elseBranch.node!].map((n) => n.name);
    const upgraded = editor.nodes.flatMap((n) => n.attribute ?? []).flatMap((a) => (a.g ? a.g.node ?? [] : []));
    expect(inner.every((name) => upgraded.some((n) => n.name === name))).toBe(true);
    // No axes or ratio attribute left; Softmax normalizes its flattened rows, between a Flatten and a Reshape.
    expect(upgraded.flatMap((n) => (n.attribute ?? []).map((a) => `${n.op_type}.${a.name}`)).sort()).toEqual(['Flatten.axis', 'ReduceSum.keepdims', 'Softmax.axis']);
    expect(editor.nodes.filter((n) => n.op_type === 'Dropout').every((n) => n.input!.length === 2 && !n.attribute?.length)).toBe(true);
    const data = Float32Array.from({ length: 2 * 12 }, (_, i) => Math.sin(i) * 2);
    for (const sign of [1, -1]) {
      const feeds: TensorMap = { x: { type: 'float32', data, dims: [2, 3, 4] }, mode: { type: 'float32', data: Float32Array.of(sign, sign), dims: [2, 1] } };
      for (const backend of ['wasm', 'native'] as const) {
        const before = await runOn(encodeModel(model), backend, feeds);
        const after = await runOn(encodeModel(editor.model), backend, feeds);
        for (let i = 0; i < 24; i++) expect(after.y[i], `${backend}, mode ${sign}, element ${i}`).toBeCloseTo(before.y[i], 6);
      }
    }
  });

  it('should refuse to raise an opset-18 GroupNormalization to opset 21, where its scale and bias change meaning, and change nothing', async () => {
    const g = new GraphBuilder('groupnorm18');
    const x = g.input('x', 'float32', ['batch', 4, 6]);
    const normed = g.op1('GroupNormalization', [x, g.weight('gn.scale', [2], [1, 0.5]), g.weight('gn.bias', [2], [0, 0.1])], { num_groups: 2 }, { name: 'gn' });
    g.output(g.op1('MatMul', [normed, g.weight('w', [6, 8], Array.from({ length: 48 }, (_, i) => Math.cos(i)))]), 'float32', ['batch', 4, 8], 'y');
    const model = g.build({ opsets: { '': 18 } });
    const editor = new GraphEditor(cloneModel(model));
    const err = await caught(() => upgradeOpset(editor, 21));
    expect(isEdgeInferError(err, 'E_MODEL_UNSUPPORTED'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/GroupNormalization 'gn'.*per group.*opset 21.*per channel/);
    expect(Buffer.compare(encodeModel(editor.model), encodeModel(model))).toBe(0);
    // Block-wise FP8 needs opset 21: refused the same way; per-channel FP8 (opset 19) is not.
    expect(isEdgeInferError(await caught(() => quantizeWeightsOnly(model, { format: 'e4m3fn', blockSize: BLOCK_SIZE })), 'E_MODEL_UNSUPPORTED')).toBe(true);
    expect(opsetOf(quantizeWeightsOnly(model, { format: 'e4m3fn' }).model)).toBe(19);
  });

  it('should leave a model already at the target alone and refuse models older than opset 11', async () => {
    const f = fixtureNamed('layernorm-fused');
    const model = decodeModel(f.bytes());
    const editor = new GraphEditor(cloneModel(model));
    upgradeOpset(editor, 13);
    expect(Buffer.compare(encodeModel(editor.model), encodeModel(model))).toBe(0);
    const old = new GraphEditor(cloneModel(model));
    old.model.opset_import = [{ domain: '', version: 10 }];
    const err = await caught(() => upgradeOpset(old, 13));
    expect(isEdgeInferError(err, 'E_MODEL_UNSUPPORTED')).toBe(true);
    expect((err as Error).message).toMatch(/opset 10/);
  });
});

describe('the reduced int8 weight range', () => {
  it('should be wanted on x86 with onnxruntime-node and AVX2 or AVX-512 but no VNNI, and nowhere else', () => {
    const x64 = (flags: string[] | null, native = true) => reduceRangeFor({ arch: 'x64', flags, native });
    expect(x64(['sse4_1', 'avx', 'avx2', 'fma'])).toBe(true);
    expect(x64(['avx2', 'avx512f', 'avx512bw'])).toBe(true);
    expect(x64(['avx2', 'avx512bw', 'avx512_vnni'])).toBe(false);
    expect(x64(['avx2', 'avx_vnni'])).toBe(false);
    // SSE-only x86 (Atom-class): onnxruntime's SSE kernels widen to int16 before multiplying.
    expect(x64(['sse2', 'ssse3', 'sse4_1'])).toBe(false);
    expect(x64(null)).toBe(true);
    expect(x64(['avx2'], false)).toBe(false);
    expect(reduceRangeFor({ arch: 'arm64', flags: ['asimd', 'asimddp'], native: true })).toBe(false);
  });

  it('should keep every int8 weight code within ±64 and a pair of uint8 × int8 products within int16', () => {
    const w = randomWeights(600, 31);
    const q = quantizeWeight(w, [20, 30], 'int8', 0, undefined, true);
    const codes = Array.from(q.data as Int8Array);
    expect(Math.max(...codes.map(Math.abs))).toBe(64);
    expect(2 * 255 * Math.max(...codes.map(Math.abs))).toBeLessThanOrEqual(32767);
    const back = dequantize(q.data, q.dataType, [20, 30], q.scale, q.scaleDims, new Int8Array(20), 0);
    for (let i = 0; i < w.length; i++) expect(Math.abs(back[i] - w[i])).toBeLessThanOrEqual((q.scale[Math.floor(i / 30)] / 2) * (1 + 1e-6));
  });

  it('should make static and dynamic int8 models with 7-bit weights that run and agree with fp32, and say so in the method', async () => {
    for (const name of ['cnn1d-keras', 'pytorch-linear']) {
      const f = fixtureNamed(name);
      const model = decodeModel(f.bytes());
      const feeds = stackWindows(heldOutWindows(f));
      const made = [
        await quantizeModel({ model, to: 'int8', calibration: { windows: calibrationWindows(f), source: 'test', method: 'minmax' }, reduceRange: true }),
        await quantizeModel({ model, to: 'int8-dynamic', reduceRange: true }),
      ];
      for (const q of made) {
        expect(q.method).toMatch(/±64/);
        const weights = q.model.graph!.initializer!.filter((t) => t.data_type === DataType.INT8 && tensorSize(t) > 16);
        expect(weights.length, `${name}: ${q.method}`).toBeGreaterThan(0);
        for (const t of weights) expect(Math.max(...Array.from(tensorValues(t) as Int8Array, Math.abs)), t.name).toBeLessThanOrEqual(64);
        for (const backend of ['wasm', 'native'] as const) {
          expect(worstCosine(await runOn(f.bytes(), backend, feeds), await runOn(encodeModel(q.model), backend, feeds)), `${name} ${backend}: ${q.method}`).toBeGreaterThanOrEqual(0.99);
        }
      }
    }
    const fp8 = await caught(() => quantizeModel({ model: decodeModel(fixtureNamed('cnn2d').bytes()), to: 'fp8-e4m3', reduceRange: true }));
    expect(isEdgeInferError(fp8, 'E_ARGUMENT'), String(fp8)).toBe(true);
  });
});

describe('loadOptionsFor', () => {
  it("should load FP8 variants fast with outputs equal to the compact load's on both backends", async () => {
    const cases = [
      { fixture: 'pytorch-linear', precision: 'fp8-e4m3', options: { format: 'e4m3fn' as const, blockSize: BLOCK_SIZE } },
      { fixture: 'cnn2d', precision: 'fp8-e5m2', options: { format: 'e5m2' as const } },
      { fixture: 'tf-nhwc-dense', precision: 'fp8-e4m3', options: { format: 'e4m3fn' as const } },
    ];
    for (const { fixture, precision, options } of cases) {
      const f = fixtureNamed(fixture);
      const bytes = encodeModel(quantizeWeightsOnly(decodeModel(f.bytes()), options).model);
      const feeds = stackWindows(heldOutWindows(f));
      const fast = loadOptionsFor(precision, 'fast');
      expect(fast.sessionConfig, fixture).toBeDefined();
      for (const backend of ['wasm', 'native'] as const) {
        const compact = await runOn(bytes, backend, feeds);
        const session = await ModelSession.load(bytes, { backend, warmupRuns: 0, threads: 1, ...fast });
        const got = (await session.run(feeds)).outputs;
        await session.dispose();
        // The same weights either way (code × scale is exact in float32): only summation order may differ.
        for (const [name, v] of Object.entries(compact)) {
          const w = got[name].data as Float32Array;
          for (let i = 0; i < v.length; i++) expect(Math.abs(w[i] - v[i]), `${fixture} ${backend} ${name}[${i}]`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(v[i])));
        }
      }
    }
  });

  it('should leave int8 variants and compact loads as stored, so QDQ groups reach the integer kernels', () => {
    expect(loadOptionsFor('int8', 'fast')).toEqual({});
    expect(loadOptionsFor('int8', 'compact')).toEqual({});
    expect(loadOptionsFor('fp8-e4m3', 'compact')).toEqual({});
  });
});

describe('errorHistogram', () => {
  it('should count every error once, in the decade quarter it falls in, tiny errors in the first bin', () => {
    const errors = Float32Array.from([0, 1e-9, 1e-4, 2e-4, 0.5, 3]);
    const { log10, counts } = errorHistogram(errors);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(errors.length);
    expect(log10).toHaveLength(counts.length);
    expect(counts[0]).toBe(2);
    // Bins run from 1e-8 to the decade above the largest error, 4 per decade.
    expect(counts).toHaveLength(9 * 4 + 1);
    for (const e of errors.filter((x) => x > 1e-8)) {
      const b = log10.findIndex((edge, i) => i > 0 && Math.log10(e) >= edge && Math.log10(e) < edge + 0.25);
      expect(b, `error ${e}`).toBeGreaterThan(0);
      expect(counts[b], `error ${e}`).toBeGreaterThanOrEqual(1);
    }
    expect(counts.filter((c) => c > 0)).toEqual([2, 1, 1, 1, 1]);
  });

  it('should give an empty histogram of one decade for no errors', () => {
    const { counts } = errorHistogram(new Float32Array(0));
    expect(counts).toEqual([0, 0, 0, 0, 0]);
  });
});

describe('htmlReport', () => {
  it('should be one self-contained HTML document with uPlot inlined and one error chart per variant', async () => {
    const f = fixtureNamed('cnn2d');
    const fp32 = f.bytes();
    const heldOut = { windows: heldOutWindows(f).slice(0, 8), source: 'test windows' };
    const comparisons: VariantComparison[] = [];
    for (const [variant, format] of [['int8 <weights>', 'int8'], ['fp8-e4m3', 'e4m3fn']] as const) {
      const bytes = encodeModel(quantizeWeightsOnly(decodeModel(fp32), { format }).model);
      comparisons.push(await compareWithFp32(fp32, bytes, heldOut, { variant, backend: 'native', batch: 8 }));
    }
    const html = htmlReport('cnn2d & co', comparisons);
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.trimEnd().endsWith('</html>')).toBe(true);
    expect(html).toContain(`<script>${readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8')}</script>`);
    expect(html).not.toMatch(/<script src=|<link /);
    expect(html.match(/<div id="h\d+"><\/div>/g)).toHaveLength(2);
    const charts = JSON.parse(/const charts = (.*);/.exec(html)![1]) as Array<{ id: string; counts: number[] }>;
    expect(charts.map((c) => c.id)).toEqual(['h0', 'h1']);
    charts.forEach((c, i) => expect(c.counts.reduce((a, b) => a + b, 0)).toBe(comparisons[i].errors.length));
    expect(html).toContain('int8 &lt;weights&gt;');
    expect(html).toContain('cnn2d &amp; co');
    expect(html).not.toContain('<weights>');
  });
});
