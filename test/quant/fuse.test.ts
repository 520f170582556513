// The rewrites for onnxruntime's WASM kernels (runtime/quant/fuse): each gives the outputs of the
// graph it replaces in real sessions on both backends, leaves a graph without its pattern byte for
// byte as it was, and leaves a pattern alone, saying why, when any part of it is off.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TensorMap } from '../../runtime/engine';
import { MODERATE, featuresOf, outputAgreement, simulatedWindows } from '../../runtime/eval';
import { parseCard } from '../../runtime/model';
import { GraphBuilder, type ModelProto, decodeModel, encodeModel, float, graphStats, metadataOf } from '../../runtime/onnx';
import { bundledModelsDir } from '../../runtime/paths';
import { quantizeDynamic, quantizeModel } from '../../runtime/quant';
import { compactFusedBiases, expandLayerNorm, fuseAttention, fuseFastGelu, fuseTransformer, tensorRanks } from '../../runtime/quant/fuse';
import { GraphEditor, cloneModel } from '../../runtime/quant/graph';
import { isEdgeInferError } from '../../runtime/errors';
import { caught, thrown } from '../helpers/errors';
import { gaussian } from '../helpers/exporter-fixtures';
import { BACKENDS, runOn, stackWindows } from './harness';

const values = (n: number, seed: number, sd = 0.3): Float32Array => {
  const next = gaussian(seed);
  return Float32Array.from({ length: n }, () => next() * sd);
};

const feedsOf = (input: string, dims: number[], seed: number, sd = 1): TensorMap => ({ [input]: { type: 'float32', data: values(dims.reduce((a, b) => a * b, 1), seed, sd), dims } });

const ops = (model: ModelProto): Record<string, number> => graphStats(model).operators;

/** Applies one rewrite to a copy; the copy, what it reported, and whether the input was touched. */
function rewrite(model: ModelProto, pass: (e: GraphEditor) => { fused: number; notices: string[] }): { model: ModelProto; fused: number; notices: string[]; inputChanged: boolean } {
  const before = encodeModel(model);
  const editor = new GraphEditor(cloneModel(model));
  const r = pass(editor);
  return { model: editor.model, ...r, inputChanged: Buffer.compare(before, encodeModel(model)) !== 0 };
}

/** Both models on both backends: every output within `tolerance` (max abs error) of the original's. */
async function expectSameOutputs(original: ModelProto, rewritten: ModelProto, feeds: TensorMap, tolerance: number): Promise<void> {
  for (const backend of BACKENDS) {
    const want = await runOn(encodeModel(original), backend, feeds, `original on ${backend}`);
    const got = await runOn(encodeModel(rewritten), backend, feeds, `rewritten on ${backend}`);
    for (const [name, v] of Object.entries(want)) {
      expect(got[name], `${name} on ${backend}`).toBeDefined();
      // A rewrite that outputs zeros or NaN must not pass: compare values, not only shapes.
      expect(v.some((x) => x !== 0)).toBe(true);
      expect(outputAgreement(v, got[name]).maxAbsError, `${name} on ${backend}`).toBeLessThanOrEqual(tolerance);
    }
  }
}

interface AttentionOptions {
  scale?: 'mul' | 'div' | 'custom' | 'none';
  /** The constant for a 'custom' scale (default 0.2). */
  scaleValue?: number;
  bias?: boolean;
  /** An additive mask between the scores and the Softmax. */
  mask?: boolean;
  /** The query heads also leave the graph as an output. */
  headsReadElsewhere?: boolean;
  /** The key split into other heads than the query's. */
  keyHeads?: [number, number];
  keyPerm?: number[];
  softmaxAxis?: number;
}

const SEQ = 5;
const DIM = 16;

/** Self-attention over [batch, 5, 16] with two heads of 8, as PyTorch exports it, then an output projection. */
function attentionModel(o: AttentionOptions = {}): ModelProto {
  const g = new GraphBuilder('attention');
  const x = g.input('tokens', 'float32', ['batch', SEQ, DIM]);
  let seed = 10;
  const project = (name: string): string => {
    const mm = g.op1('MatMul', [x, g.weight(`${name}.weight`, [DIM, DIM], values(DIM * DIM, seed++))], {}, { name: `${name}.matmul` });
    return o.bias === false ? mm : g.op1('Add', [mm, g.weight(`${name}.bias`, [DIM], values(DIM, seed++, 0.1))]);
  };
  const split = (t: string, name: string, perm: number[], heads = [2, 8]): string => g.op1('Transpose', [g.op1('Reshape', [t, g.int64(`${name}.shape`, [0, 0, ...heads])])], { perm });
  const q = split(project('q'), 'q', [0, 2, 1, 3]);
  const k = split(project('k'), 'k', o.keyPerm ?? [0, 2, 3, 1], o.keyHeads);
  const v = split(project('v'), 'v', [0, 2, 1, 3]);
  let scores = g.op1('MatMul', [q, k], {}, { name: 'scores' });
  const scale = o.scale ?? 'mul';
  if (scale === 'mul') scores = g.op1('Mul', [scores, g.scalar('scale', 1 / Math.sqrt(8))]);
  if (scale === 'div') scores = g.op1('Div', [scores, g.scalar('scale', Math.sqrt(8))]);
  if (scale === 'custom') scores = g.op1('Mul', [scores, g.scalar('scale', o.scaleValue ?? 0.2)]);
  if (o.mask) scores = g.op1('Add', [scores, g.weight('mask', [SEQ, SEQ], Float32Array.from({ length: SEQ * SEQ }, (_, i) => (i % SEQ > Math.floor(i / SEQ) ? -1e4 : 0)))]);
  const context = g.op1('MatMul', [g.op1('Softmax', [scores], { axis: o.softmaxAxis ?? -1 }), v], {}, { name: 'context' });
  const merged = g.op1('Reshape', [g.op1('Transpose', [context], { perm: [0, 2, 1, 3] }), g.int64('merged', [0, 0, DIM])]);
  const out = g.op1('MatMul', [merged, g.weight('out.weight', [DIM, DIM], values(DIM * DIM, seed++))], {}, { name: 'out.matmul' });
  g.output(out, 'float32', ['batch', SEQ, DIM], 'attended');
  if (o.headsReadElsewhere) g.output(q, 'float32', ['batch', 2, SEQ, 8], 'query_heads');
  return g.build();
}

const attentionFeeds = feedsOf('tokens', [3, SEQ, DIM], 77);

describe('fuseAttention', () => {
  it.each([
    ['a Mul by 1/√head size', { scale: 'mul' }],
    ['a Div by √head size', { scale: 'div' }],
    ['a scale of its own', { scale: 'custom' }],
    ['no scale', { scale: 'none' }],
    ['no biases', { bias: false }],
  ] as Array<[string, AttentionOptions]>)('should give the unfused outputs with %s', async (_, o) => {
    const original = attentionModel(o);
    const r = rewrite(original, fuseAttention);
    expect(r.fused).toBe(1);
    expect(r.inputChanged).toBe(false);
    const after = ops(r.model);
    expect(after['com.microsoft.MultiHeadAttention']).toBe(1);
    // The head split and merge, the scores, the softmax and the context are all gone.
    expect([after.Transpose, after.Reshape, after.Softmax, after.Mul, after.Div]).toEqual([undefined, undefined, undefined, undefined, undefined]);
    // The query, key and value biases went into the attention node.
    expect(after.Add).toBeUndefined();
    const node = r.model.graph!.node!.find((n) => n.op_type === 'MultiHeadAttention')!;
    expect(node.input).toHaveLength(o.bias === false ? 3 : 4);
    const scaleAttr = node.attribute!.find((a) => a.name === 'scale');
    // 1/√8 is MultiHeadAttention's default; any other scale must be written down.
    expect(scaleAttr?.f).toBe(o.scale === 'custom' ? Math.fround(0.2) : o.scale === 'none' ? 1 : undefined);
    await expectSameOutputs(original, r.model, attentionFeeds, 1e-5);
  });

  it.each([
    ['a mask is added to the scores', { mask: true }, /no Softmax follows its scores alone/],
    ['the query heads are read elsewhere', { headsReadElsewhere: true }, /its query or key heads are read elsewhere too/],
    ['the key is split into other heads', { keyHeads: [4, 4] }, /split into different heads/],
    ['the key is not transposed for Q·Kᵀ', { keyPerm: [0, 2, 1, 3] }, /key: it is not a Transpose with perm \[0, 2, 3, 1\]/],
    ['the Softmax is over the queries', { softmaxAxis: 2 }, /Softmax is over axis 2/],
    ['the scores are scaled by NaN', { scale: 'custom', scaleValue: NaN }, /scaled by something other than one constant/],
  ] as Array<[string, AttentionOptions, RegExp]>)('should leave the graph as it was when %s, and say why', (_, o, why) => {
    const original = attentionModel(o);
    const r = rewrite(original, fuseAttention);
    expect(r.fused).toBe(0);
    expect(r.notices.join('\n')).toMatch(why);
    expect(r.notices.join('\n')).toMatch(/attention at 'scores' stays unfused/);
    expect(Buffer.compare(encodeModel(r.model), encodeModel(original))).toBe(0);
  });

  it('should leave an attention over tensors of unknown rank alone', () => {
    // Same graph, but the input's shape is not declared: MultiHeadAttention would need [batch, sequence, hidden].
    const model = attentionModel();
    model.graph!.input![0].type!.tensor_type!.shape = undefined;
    const r = rewrite(model, fuseAttention);
    expect(r.fused).toBe(0);
    expect(r.notices.join('\n')).toMatch(/is not known to be \[batch, sequence, hidden\]/);
  });
});

interface GeluOptions {
  form?: 'x·(1+erf)·½' | '(x·½)·(1+erf)' | 'mul 1/√2';
  divisor?: number;
  one?: number;
  bias?: boolean;
  /** erf's output is also a graph output. */
  erfReadElsewhere?: boolean;
}

/** Linear → exact GELU → Linear on [batch, 24]. */
function geluModel(o: GeluOptions = {}): ModelProto {
  const g = new GraphBuilder('gelu');
  const x = g.input('input', 'float32', ['batch', 24]);
  const mm = g.op1('MatMul', [x, g.weight('fc1.weight', [24, 32], values(24 * 32, 1))]);
  const h = o.bias === false ? mm : g.op1('Add', [mm, g.weight('fc1.bias', [32], values(32, 2, 0.5))]);
  const scaled = o.form === 'mul 1/√2' ? g.op1('Mul', [h, g.scalar('inv_sqrt2', Math.SQRT1_2)]) : g.op1('Div', [h, g.scalar('sqrt2', o.divisor ?? Math.SQRT2)]);
  const erf = g.op1('Erf', [scaled]);
  const onePlus = g.op1('Add', [erf, g.scalar('one', o.one ?? 1)]);
  const y = o.form === '(x·½)·(1+erf)' ? g.op1('Mul', [g.op1('Mul', [h, g.scalar('half', 0.5)]), onePlus]) : g.op1('Mul', [g.op1('Mul', [h, onePlus]), g.scalar('half', 0.5)]);
  g.output(g.op1('MatMul', [y, g.weight('fc2.weight', [32, 8], values(32 * 8, 3))]), 'float32', ['batch', 8], 'output');
  if (o.erfReadElsewhere) g.output(erf, 'float32', ['batch', 32], 'erf');
  return g.build();
}

const geluFeeds = feedsOf('input', [16, 24], 5, 2);

describe('fuseFastGelu', () => {
  it.each(['x·(1+erf)·½', '(x·½)·(1+erf)', 'mul 1/√2'] as const)('should rewrite %s with its bias into one FastGelu, within the tanh approximation of the exact outputs', async (form) => {
    const original = geluModel({ form });
    const r = rewrite(original, fuseFastGelu);
    expect(r.fused).toBe(1);
    expect(r.inputChanged).toBe(false);
    const after = ops(r.model);
    // (The Identity names the graph output.)
    expect(after).toEqual({ MatMul: 2, 'com.microsoft.FastGelu': 1, Identity: 1 });
    expect(r.model.graph!.node!.find((n) => n.op_type === 'FastGelu')!.input).toEqual(['matmul_out', 'fc1.bias']);
    // tanh-GELU is within about 5e-4 of the exact one; fc2 sums 32 of them with weights of 0.3.
    await expectSameOutputs(original, r.model, geluFeeds, 5e-3);
  });

  it('should rewrite a GELU without a bias in front of it', async () => {
    const original = geluModel({ bias: false });
    const r = rewrite(original, fuseFastGelu);
    expect(r.fused).toBe(1);
    expect(r.model.graph!.node!.find((n) => n.op_type === 'FastGelu')!.input).toHaveLength(1);
    await expectSameOutputs(original, r.model, geluFeeds, 5e-3);
  });

  it.each([
    ['x is divided by √3', { divisor: Math.sqrt(3) }, /its input is not x \/ √2/],
    ['erf is shifted by 2', { one: 2 }, /no 1 \+ erf\(…\) follows it/],
    ['erf is read elsewhere', { erfReadElsewhere: true }, /no 1 \+ erf\(…\) follows it/],
  ] as Array<[string, GeluOptions, RegExp]>)('should leave the graph as it was when %s, and say why', (_, o, why) => {
    const original = geluModel(o);
    const r = rewrite(original, fuseFastGelu);
    expect(r.fused).toBe(0);
    expect(r.notices.join('\n')).toMatch(why);
    expect(Buffer.compare(encodeModel(r.model), encodeModel(original))).toBe(0);
  });
});

/** LayerNormalization of [batch, 4, 16] tokens. */
function layerNormModel(opset: number, o: { axis?: number; beta?: boolean; meanRead?: boolean } = {}): ModelProto {
  const g = new GraphBuilder('layer_norm');
  const x = g.input('tokens', 'float32', ['batch', 4, 16]);
  const gamma = g.weight('norm.weight', [16], values(16, 8, 0.2).map((v) => 1 + v));
  const inputs = o.beta === false ? [x, gamma] : [x, gamma, g.weight('norm.bias', [16], values(16, 9, 0.2))];
  const [y, mean] = g.op('LayerNormalization', inputs, { axis: o.axis ?? -1, epsilon: float(1e-3) }, { outputs: o.meanRead ? 2 : 1 });
  g.output(y, 'float32', ['batch', 4, 16], 'normalized');
  if (o.meanRead) g.output(mean, 'float32', ['batch', 4, 1], 'mean');
  return g.build({ opsets: { '': opset } });
}

// Rows of different offsets and spreads, so that the mean and the deviation both matter.
const tokens: TensorMap = { tokens: { type: 'float32', data: Float32Array.from(values(5 * 64, 4), (v, i) => v * (1 + (i >> 4)) + (i >> 4)), dims: [5, 4, 16] } };

describe('expandLayerNorm', () => {
  it.each([
    ['opset 17 (ReduceMean axes as an attribute)', 17, {}],
    ['opset 18 (ReduceMean axes as an input)', 18, {}],
    ['no bias', 17, { beta: false }],
    ['axis 2 of a rank-3 input', 17, { axis: 2 }],
  ] as Array<[string, number, { axis?: number; beta?: boolean }]>)('should give the kernel outputs with %s', async (_, opset, o) => {
    const original = layerNormModel(opset, o);
    const r = rewrite(original, expandLayerNorm);
    expect(r.fused).toBe(1);
    expect(r.inputChanged).toBe(false);
    const after = ops(r.model);
    expect(after.LayerNormalization).toBeUndefined();
    expect(after).toMatchObject({ ReduceMean: 2, Sub: 1, Sqrt: 1, Reciprocal: 1, Mul: 3 });
    await expectSameOutputs(original, r.model, tokens, 2e-5);
  });

  /** LayerNormalization → two projections, with biases or without one [and a Relu reading the norm too]. */
  function normThenProjections(o: { unbiased?: boolean; extraReader?: boolean } = {}): ModelProto {
    const g = new GraphBuilder('norm_projections');
    const x = g.input('tokens', 'float32', ['batch', 4, 16]);
    const y = g.op1('LayerNormalization', [x, g.weight('norm.weight', [16], values(16, 8, 0.2).map((v) => 1 + v)), g.weight('norm.bias', [16], values(16, 9, 0.2))], { axis: -1, epsilon: float(1e-5) });
    const a = g.op1('Add', [g.op1('MatMul', [y, g.weight('a.weight', [16, 8], values(128, 10))]), g.weight('a.bias', [8], values(8, 11, 0.1))]);
    const bm = g.op1('MatMul', [y, g.weight('b.weight', [16, 8], values(128, 12))]);
    const b = o.unbiased ? bm : g.op1('Add', [bm, g.weight('b.bias', [8], values(8, 13, 0.1))]);
    g.output(g.op1('Add', [a, b]), 'float32', ['batch', 4, 8], 'projected');
    if (o.extraReader) g.output(g.op1('Relu', [y]), 'float32', ['batch', 4, 16], 'relu');
    return g.build();
  }

  it('should fold γ and β into the weights and biases of the MatMuls that read the norm', async () => {
    const original = normThenProjections();
    const r = rewrite(original, expandLayerNorm);
    expect(r.fused).toBe(1);
    const names = new Set(r.model.graph!.initializer!.map((t) => t.name));
    expect([names.has('norm.weight'), names.has('norm.bias')]).toEqual([false, false]);
    // Only the squares and the division by the deviation are left: γ and β went into a and b.
    expect(ops(r.model).Mul).toBe(2);
    await expectSameOutputs(original, r.model, tokens, 2e-5);
  });

  it.each([
    ['a projection has no bias to take β', { unbiased: true }],
    ['another operator reads the norm', { extraReader: true }],
  ])('should keep γ and β when %s', async (_, o) => {
    const original = normThenProjections(o);
    const r = rewrite(original, expandLayerNorm);
    expect(r.fused).toBe(1);
    expect(r.model.graph!.initializer!.some((t) => t.name === 'norm.weight')).toBe(true);
    expect(ops(r.model).Mul).toBe(3);
    await expectSameOutputs(original, r.model, tokens, 2e-5);
  });

  it.each([
    ['it normalizes another axis than the last', { axis: 1 }, /normalizes axis 1, not the last/],
    ['its mean is read', { meanRead: true }, /its mean or inverse deviation is read/],
  ])('should leave a LayerNormalization alone when %s, and say why', (_, o, why) => {
    const original = layerNormModel(17, o);
    const r = rewrite(original, expandLayerNorm);
    expect(r.fused).toBe(0);
    expect(r.notices.join('\n')).toMatch(why);
    expect(Buffer.compare(encodeModel(r.model), encodeModel(original))).toBe(0);
  });
});

describe('tensorRanks', () => {
  it('should follow ranks from the inputs through reshapes, products and reductions, and know none it cannot tell', () => {
    const g = new GraphBuilder('ranks');
    const x = g.input('x', 'float32', ['batch', 12]);
    const r = g.op1('Reshape', [x, g.int64('shape', [0, 3, 4])]);
    const m = g.op1('MatMul', [r, g.weight('w', [4, 5], values(20, 1))]);
    const pooled = g.op1('ReduceMean', [m], { axes: [1], keepdims: 0 });
    const computed = g.op1('Reshape', [x, g.op1('Shape', [x])]);
    g.output(pooled, 'float32', ['batch', 5], 'y');
    g.output(computed, 'float32', ['batch', 12], 'z');
    const ranks = tensorRanks(new GraphEditor(g.build()));
    expect([ranks.get(x), ranks.get(r), ranks.get(m), ranks.get(pooled)]).toEqual([2, 3, 3, 2]);
    // A Reshape by a computed shape has no rank it can tell; the declared output behind it has.
    expect(ranks.get(computed)).toBeUndefined();
    expect(ranks.get('z')).toBe(2);
  });
});

describe('fuseTransformer', () => {
  const modelsDir = bundledModelsDir();
  const load = (id: string, variant: string): ModelProto => decodeModel(readFileSync(path.join(modelsDir, id, `${id}.${variant}.onnx`)));

  it('should give back a model without these patterns byte for byte, and int8-dynamic no word of fusions', async () => {
    const classifier = load('fault-classifier', 'fp32');
    const f = fuseTransformer(classifier);
    expect(f.fused).toEqual({ attention: 0, fastGelu: 0, layerNorm: 0 });
    expect(f.notices).toEqual([]);
    expect(Buffer.compare(encodeModel(f.model), encodeModel(classifier))).toBe(0);
    const q = await quantizeModel({ model: classifier, to: 'int8-dynamic', reduceRange: false });
    expect(q.method).not.toMatch(/rewritten/);
    expect(Buffer.compare(encodeModel(q.model), encodeModel(quantizeDynamic(classifier, { reduceRange: false }).model))).toBe(0);
  });

  it('should make the example transformer int8 on MultiHeadAttention and FastGelu, agreeing with fp32 and across backends', async () => {
    const fp32 = load('fault-transformer', 'fp32');
    const q = await quantizeModel({ model: fp32, to: 'int8-dynamic', reduceRange: false });
    expect(q.method).toMatch(/2 attention cores as MultiHeadAttention, 2 exact GELU as FastGelu \(tanh approximation\), 5 LayerNormalization as vectorized elementwise operators/);
    const after = ops(q.model);
    expect(after['com.microsoft.MultiHeadAttention']).toBe(2);
    expect(after['com.microsoft.FastGelu']).toBe(2);
    expect([after.LayerNormalization, after.Erf, after.Softmax, after.Transpose]).toEqual([undefined, undefined, 1, 1]);
    // Every bias the fused kernels read is stored int8 behind a DequantizeLinear, as the other biases are.
    const editor = new GraphEditor(q.model);
    const biases = editor.nodes.filter((n) => n.domain === 'com.microsoft').map((n) => n.input![n.op_type === 'FastGelu' ? 1 : 3]);
    expect(biases.map((b) => editor.producer(b)?.op_type)).toEqual(['DequantizeLinear', 'DequantizeLinear', 'DequantizeLinear', 'DequantizeLinear']);

    const card = parseCard(JSON.parse(metadataOf(fp32)['edge-infer.card']), 'fault-transformer');
    const windows = simulatedWindows(card.input, { count: 48, seed: 606060, severity: MODERATE });
    const feeds = stackWindows(featuresOf(card.input, windows).map((f) => ({ vibration: { type: 'float32', data: f, dims: [3, 1024] } })));
    const reference = await runOn(encodeModel(fp32), 'wasm', feeds, 'fp32');
    const wasm = await runOn(encodeModel(q.model), 'wasm', feeds, 'fused int8 on wasm');
    const native = await runOn(encodeModel(q.model), 'native', feeds, 'fused int8 on native');
    // The bar for int8 against fp32.
    expect(outputAgreement(reference.probabilities, wasm.probabilities).cosine).toBeGreaterThanOrEqual(0.995);
    // Same kernels on both backends: the same probabilities within float rounding.
    expect(outputAgreement(wasm.probabilities, native.probabilities).maxAbsError).toBeLessThanOrEqual(1e-4);
  });

  it('should be skipped by quantizeModel when asked (fuse: false), and refuse a model without a graph in one line', async () => {
    const model = attentionModel();
    const plain = await quantizeModel({ model, to: 'int8-dynamic', reduceRange: false, fuse: false });
    const fused = await quantizeModel({ model, to: 'int8-dynamic', reduceRange: false });
    expect(ops(plain.model)['com.microsoft.MultiHeadAttention']).toBeUndefined();
    expect(ops(fused.model)['com.microsoft.MultiHeadAttention']).toBe(1);
    expect(fused.method).toMatch(/1 attention core as MultiHeadAttention/);
    const wrongMethod = await caught(() => quantizeModel({ model, to: 'fp8-e4m3', fuse: true }));
    expect(isEdgeInferError(wrongMethod, 'E_ARGUMENT') && wrongMethod.message).toBe('the transformer rewrites are for int8-dynamic, not fp8-e4m3');
    const err = thrown(() => fuseTransformer({ ir_version: 8, opset_import: [{ domain: '', version: 17 }] }));
    expect(err.code).toBe('E_MODEL_CORRUPT');
    expect(err.message).toMatch(/^[^\n]*no graph[^\n]*$/);
  });

  it('should store the biases of fused kernels int8 and keep their outputs', async () => {
    const original = attentionModel();
    const fused = fuseTransformer(original).model;
    const quantized = quantizeDynamic(fused, { reduceRange: false }).model;
    const before = encodeModel(quantized).length;
    const compacted = cloneModel(quantized);
    // The attention's [48] bias is below the default floor of 64 elements: take every size here.
    expect(compactFusedBiases(compacted, 1)).toBe(1);
    expect(encodeModel(compacted).length).toBeLessThan(before);
    expect(ops(compacted).DequantizeLinear).toBe((ops(quantized).DequantizeLinear ?? 0) + 1);
    await expectSameOutputs(quantized, compacted, attentionFeeds, 0.02);
  });
});
