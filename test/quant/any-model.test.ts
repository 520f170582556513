// Quantizing models as a new user brings them: dynamic int8 for convolutions (ConvInteger),
// fp16 storage for biases, norms and embeddings, shapes for inputs with dynamic dimensions, and
// onnxruntime's failures in our words. The four exported-model fixtures run on both backends.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EdgeInferError } from '../../runtime/errors';
import { signatureOf } from '../../runtime/engine';
import { DataType, GraphBuilder, type ModelProto, decodeModel, encodeModel, float, makeTensor, tensorSize, tensorValues } from '../../runtime/onnx';
import {
  checkShapes, compactFloatConstants, dequantize, float16ToFloat32, float32ArrayToFp8, fp8ArrayToFloat32, float32ToFloat16, fp16AtLeast, fp16IfExact, parseShapeOption, quantizeDynamic, shortenValueNames, quantizeStatic, quantizeWeight, quantizeWeightsOnly, runQuantizeJob, syntheticHeldOut, windowDims,
} from '../../runtime/quant';
import { GraphEditor } from '../../runtime/quant/graph';
import { narrowInt32Codes } from '../../runtime/quant/qdq';
import { ortFailure, ortReason } from '../../runtime/quant/ort-errors';
import { ANY_MODEL_FIXTURES, fixtureNamed, gaussian } from '../helpers/exporter-fixtures';
import { caught, thrown } from '../helpers/errors';
import { BACKENDS, calibrationWindows, constantBehind, heldOutWindows, opTypes, runOn, stackWindows, worstCosine } from './harness';

const modelOf = (name: string): ModelProto => decodeModel(fixtureNamed(name).bytes());
const initializer = (m: ModelProto, name: string) => m.graph!.initializer!.find((t) => t.name === name);

/** Worst cosine with fp32 over both backends on the fixture's held-out windows. */
async function agreement(name: string, quantized: ModelProto): Promise<number> {
  const f = fixtureNamed(name);
  const feeds = stackWindows(heldOutWindows(f));
  let worst = 1;
  for (const backend of BACKENDS) worst = Math.min(worst, worstCosine(await runOn(f.bytes(), backend, feeds), await runOn(encodeModel(quantized), backend, feeds)));
  return worst;
}

describe('dynamic int8 of convolutions', () => {
  it('should turn every Conv of the TensorFlow-style CNN into ConvInteger on a DynamicQuantizeLinear input, agreeing with fp32 on wasm and native', async () => {
    const q = quantizeDynamic(modelOf('tf-conv'));
    const ops = opTypes(q.model);
    expect(ops).not.toContain('Conv');
    expect(q.model.graph!.node!.filter((n) => n.op_type === 'ConvInteger')).toHaveLength(3);
    expect(q.notices.filter((n) => n.startsWith('Conv'))).toEqual([]);
    // int8 weights [M, C, kh, kw], one scale per output channel shaped to broadcast over [N, M, H, W].
    const conv = q.model.graph!.node!.find((n) => n.op_type === 'ConvInteger')!;
    expect(initializer(q.model, conv.input![1])!.data_type).toBe(DataType.INT8);
    const constants = q.model.graph!.node!.filter((n) => n.op_type === 'Mul').flatMap((n) => n.input!).map((i) => constantBehind(q.model, i)).filter((c) => c !== undefined);
    const convScales = constants.filter((c) => c.tensor.dims!.length === 3);
    expect(convScales.map((c) => c.tensor.dims!.map(Number))).toEqual([[32, 1, 1], [64, 1, 1], [64, 1, 1]]);
    // Stored as fp16 (each scale is one fp16 holds), read as float.
    for (const c of convScales) expect(c).toMatchObject({ storedAs: DataType.FLOAT16, dataType: DataType.FLOAT });
    expect(await agreement('tf-conv', q.model)).toBeGreaterThanOrEqual(0.995);
  });

  it('should quantize a model whose only weights are convolutions, with a computed bias reshaped at run time, where it used to refuse it', async () => {
    const g = new GraphBuilder('conv_only');
    const x = g.input('x', 'float32', ['batch', 2, 12]);
    const w = Float32Array.from({ length: 4 * 2 * 3 }, (_, i) => Math.sin(i * 1.7));
    const bias = g.op1('Identity', [g.weight('b', [4], [0.1, -0.2, 0.3, 0])]);
    g.output(g.op1('Conv', [x, g.weight('w', [4, 2, 3], w), bias], { kernel_shape: [3], pads: [1, 1], strides: [2] }), 'float32', ['batch', 4, 6], 'y');
    const model = g.build();
    const q = quantizeDynamic(model);
    expect(opTypes(q.model)).toEqual(expect.arrayContaining(['DynamicQuantizeLinear', 'ConvInteger', 'Reshape', 'Add']));
    const feeds = { x: { type: 'float32' as const, data: Float32Array.from({ length: 3 * 24 }, (_, i) => Math.cos(i * 0.9)), dims: [3, 2, 12] } };
    for (const backend of BACKENDS) {
      const cosine = worstCosine(await runOn(encodeModel(model), backend, feeds), await runOn(encodeModel(q.model), backend, feeds));
      expect(cosine, backend).toBeGreaterThanOrEqual(0.995);
    }
  });

  it('should keep a depthwise Conv (group = channels) with SAME padding and no bias, and a 1×1 Conv after it, close to fp32', async () => {
    const g = new GraphBuilder('depthwise');
    const x = g.input('x', 'float32', ['batch', 4, 9, 9]);
    let h = g.op1('Conv', [x, g.weight('dw', [4, 1, 3, 3], Float32Array.from({ length: 36 }, (_, i) => Math.sin(i * 1.3))), g.weight('b', [4], [0.1, 0.2, -0.1, 0])], { group: 4, kernel_shape: [3, 3], auto_pad: 'SAME_UPPER', strides: [2, 2] });
    h = g.op1('Conv', [h, g.weight('pw', [6, 4, 1, 1], Float32Array.from({ length: 24 }, (_, i) => Math.cos(i)))], { kernel_shape: [1, 1] });
    g.output(h, 'float32', ['batch', 6, 5, 5], 'y');
    const model = g.build();
    const q = quantizeDynamic(model).model;
    expect(q.graph!.node!.filter((n) => n.op_type === 'ConvInteger')).toHaveLength(2);
    const feeds = { x: { type: 'float32' as const, data: Float32Array.from({ length: 2 * 324 }, (_, i) => Math.sin(i * 0.31) + 0.2), dims: [2, 4, 9, 9] } };
    for (const backend of BACKENDS) expect(worstCosine(await runOn(encodeModel(model), backend, feeds), await runOn(encodeModel(q), backend, feeds)), backend).toBeGreaterThanOrEqual(0.999);
  });

  it('should still refuse a model with no weights at all, naming Conv among what it looks for', () => {
    expect(thrown(() => quantizeDynamic(modelOf('no-weights'))).message).toMatch(/no MatMul, Gemm or Conv with a constant float weight/);
  });
});

describe('fp16 storage of biases, norms and embeddings', () => {
  it('should round-trip fp16 bits, and refuse a tensor with a value beyond fp16 naming it', () => {
    for (const x of [0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8]) expect(float16ToFloat32(float32ToFloat16(x))).toBe(x);
    expect(float16ToFloat32(0x7c00)).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(float16ToFloat32(0x7e00))).toBe(true);
    const ok = fp16IfExact(Float32Array.of(0.1, -3, 1e-9));
    expect('half' in ok && Array.from(ok.half, float16ToFloat32)[1]).toBe(-3);
    expect(fp16IfExact(Float32Array.of(1, 70000))).toEqual({ reason: 'value 70000 at 1 overflows fp16 (largest 65504)' });
  });

  it('should store BatchNorm, Conv and Gemm biases of the PyTorch CNN as fp16 behind a Cast, and leave a weight-only FP8 file under 30 % of fp32', () => {
    const f = fixtureNamed('pytorch-cnn1d');
    const q = quantizeWeightsOnly(decodeModel(f.bytes()), { format: 'e4m3fn' }).model;
    const nodes = q.graph!.node!;
    const read = [
      ...nodes.filter((n) => n.op_type === 'BatchNormalization').flatMap((n) => n.input!.slice(1)),
      ...nodes.filter((n) => n.op_type === 'Conv' || n.op_type === 'Gemm').map((n) => n.input![2]),
    ];
    expect(read).toHaveLength(4 + 3 + 2);
    // All but fc2's bias: its 8 values would save less than the Cast costs.
    const stored = read.map((name) => constantBehind(q, name)!);
    expect(stored.filter((c) => c.storedAs === DataType.FLOAT16 && c.dataType === DataType.FLOAT).map((c) => tensorSize(c.tensor))).toEqual([32, 32, 32, 32, 32, 64, 64, 32]);
    expect(stored.filter((c) => c.storedAs === DataType.FLOAT).map((c) => tensorSize(c.tensor))).toEqual([8]);
    expect(encodeModel(q).length / f.bytes().length).toBeLessThan(0.3);
  });

  it('should keep fp32 a factor that is tiny as a whole (1e-7 per element: fp16 would round it by up to a fifth), and store one with a few tiny values among large ones', () => {
    const g = new GraphBuilder('factors');
    const x = g.input('x', 'float32', ['batch', 64]);
    const tiny = Float32Array.from({ length: 64 }, (_, i) => (1 + i / 64) * 1e-7);
    const mixed = Float32Array.from({ length: 64 }, (_, i) => (i === 3 ? 1e-7 : 0.5 + i / 64));
    g.output(g.op1('Mul', [g.op1('Mul', [x, g.weight('tiny', [64], tiny)]), g.weight('mixed', [64], mixed)]), 'float32', ['batch', 64], 'y');
    const editor = new GraphEditor(g.build());
    expect(compactFloatConstants(editor)).toBe(1);
    expect(constantBehind(editor.model, 'tiny')!.storedAs).toBe(DataType.FLOAT);
    expect(constantBehind(editor.model, 'mixed')!.storedAs).toBe(DataType.FLOAT16);
  });

  it('should keep fp32 a norm bias that overflows fp16, tensors too small to gain, and inputs that are weights or scales', () => {
    const g = new GraphBuilder('norms');
    const x = g.input('x', 'float32', ['batch', 32]);
    const big = Float32Array.from({ length: 32 }, (_, i) => (i === 5 ? 1e5 : i / 32));
    const h = g.op1('LayerNormalization', [x, g.weight('gamma', [32], new Float32Array(32).fill(1.5)), g.weight('beta', [32], big)], { axis: -1, epsilon: float(1e-5) });
    g.output(g.op1('Add', [g.op1('MatMul', [h, g.weight('w', [32, 32], new Float32Array(1024).fill(0.01))]), g.weight('tiny', [2], [1, 2])]), 'float32', ['batch', 32], 'y');
    const editor = new GraphEditor(g.build());
    expect(compactFloatConstants(editor)).toBe(1);
    const types = Object.fromEntries(editor.graph.initializer!.map((t) => [t.name, t.data_type]));
    expect(types).toEqual({ 'gamma.h': DataType.FLOAT16, beta: DataType.FLOAT, w: DataType.FLOAT, tiny: DataType.FLOAT });
  });
});

describe('scales and bias codes in fewer bytes', () => {
  it("should round a scale up to the least value fp16 holds, by at most 2⁻¹⁰ of it, and leave values outside fp16's normal range alone", () => {
    for (const x of [1, 0.5, 65504, 2 ** -14]) expect(fp16AtLeast(x)).toBe(x);
    for (const x of [0.1, 1 / 127, 6.2e-5, 65000.5]) {
      const up = fp16AtLeast(x);
      expect(up, String(x)).toBeGreaterThanOrEqual(x);
      expect(float16ToFloat32(float32ToFloat16(up)), String(x)).toBe(up);
      expect(up - x, String(x)).toBeLessThanOrEqual(x * 2 ** -10);
    }
    // Below fp16's smallest normal its steps are coarse: a scale there keeps its float32 value.
    for (const x of [3.3e-5, 1e-7, 2 ** -24, 70000, 0]) expect(fp16AtLeast(x), String(x)).toBe(x);
  });

  it('should quantize a model in raw sensor units (weights of 1e-7 per pascal) as well as the same model in units near 1, its tiny scales kept in float32', async () => {
    // The same model twice: weights × 1e-7 reading inputs of 1e5, and weights × 1 reading inputs of 1e-2.
    const made = (unit: number) => {
      const g = new GraphBuilder('units');
      const x = g.input('x', 'float32', ['batch', 64]);
      const w = Float32Array.from({ length: 64 * 64 }, (_, i) => Math.sin(i * 0.71) * unit);
      g.output(g.op1('MatMul', [x, g.weight('w', [64, 64], w)]), 'float32', ['batch', 64], 'y');
      return { model: g.build(), feeds: { x: { type: 'float32' as const, data: Float32Array.from({ length: 4 * 64 }, (_, i) => (1e5 + 2e4 * Math.cos(i)) * (1e-7 / unit)), dims: [4, 64] } } };
    };
    const raw = made(1e-7);
    const near1 = made(1);
    const methods = [(m: ModelProto) => quantizeWeightsOnly(m, { format: 'int8' }).model, (m: ModelProto) => quantizeWeightsOnly(m, { format: 'e4m3fn' }).model, (m: ModelProto) => quantizeDynamic(m).model];
    for (const [i, quantize] of methods.entries()) {
      for (const backend of BACKENDS) {
        const cosine = async (c: typeof raw) => worstCosine(await runOn(encodeModel(c.model), backend, c.feeds), await runOn(encodeModel(quantize(c.model)), backend, c.feeds));
        const [a, b] = [await cosine(raw), await cosine(near1)];
        expect(b, `method ${i} on ${backend}, units near 1`).toBeGreaterThan(0.95);
        // FP8 codes differ a little: scales near 1 are rounded to fp16 values, tiny ones are not.
        expect(Math.abs(a - b), `method ${i} on ${backend}: raw units ${a}, near 1 ${b}`).toBeLessThan(0.01);
      }
    }
  });

  it("should store a DequantizeLinear's scales as fp16 behind a Cast only when fp16 holds every one exactly", () => {
    const g = new GraphBuilder('scales');
    const x = g.input('x', 'float32', ['batch', 32]);
    const dq = (name: string, scales: number[]) => g.op1('DequantizeLinear', [g.initializer(makeTensor(`${name}.q`, DataType.INT8, [32, 32], Int8Array.from({ length: 1024 }, (_, i) => (i % 255) - 127))), g.weight(`${name}.s`, [32], scales)], { axis: 1 });
    const exact = Array.from({ length: 32 }, (_, i) => fp16AtLeast(0.001 * (i + 1)));
    const inexact = Array.from({ length: 32 }, (_, i) => 0.001 * (i + 1) + 1e-9);
    g.output(g.op1('MatMul', [g.op1('MatMul', [x, dq('a', exact)]), dq('b', inexact)]), 'float32', ['batch', 32], 'y');
    const editor = new GraphEditor(g.build());
    expect(compactFloatConstants(editor)).toBe(1);
    expect(constantBehind(editor.model, 'a.s')).toMatchObject({ storedAs: DataType.FLOAT16, dataType: DataType.FLOAT });
    expect(Array.from((tensorValues(constantBehind(editor.model, 'a.s')!.tensor) as Uint16Array), float16ToFloat32)).toEqual(exact.map(Math.fround));
    // Within fp16's rounding, but not exact: the codes were rounded against these scales.
    expect(constantBehind(editor.model, 'b.s')!.storedAs).toBe(DataType.FLOAT);
  });

  it('should store int32 codes a DequantizeLinear reads as int16 behind a Cast where all fit, and leave the rest', async () => {
    const g = new GraphBuilder('codes');
    const x = g.input('x', 'float32', ['batch', 64]);
    const codes = (name: string, values: number[]) => g.initializer(makeTensor(name, DataType.INT32, [64], Int32Array.from(values)));
    const small = Array.from({ length: 64 }, (_, i) => (i - 32) * 1000);
    const large = small.map((v, i) => (i === 7 ? 40000 : v));
    const bias = (name: string, values: number[]) => g.op1('DequantizeLinear', [codes(name, values), g.weight(`${name}.s`, [], [0.001])]);
    g.output(g.op1('Add', [g.op1('Add', [x, bias('fits', small)]), bias('too_large', large)]), 'float32', ['batch', 64], 'y');
    const model = g.build();
    const editor = new GraphEditor(decodeModel(encodeModel(model)));
    expect(narrowInt32Codes(editor)).toBe(1);
    expect(constantBehind(editor.model, 'fits')).toMatchObject({ storedAs: DataType.INT16, dataType: DataType.INT32 });
    expect(constantBehind(editor.model, 'too_large')!.storedAs).toBe(DataType.INT32);
    const feeds = { x: { type: 'float32' as const, data: Float32Array.from({ length: 128 }, (_, i) => i / 7), dims: [2, 64] } };
    for (const backend of BACKENDS) expect(await runOn(encodeModel(editor.model), backend, feeds), backend).toEqual(await runOn(encodeModel(model), backend, feeds));
  });

  it('should store a small constant once however many times it is added, and add it again once it is gone', () => {
    const g = new GraphBuilder('shared');
    g.output(g.op1('Relu', [g.input('x', 'float32', ['batch', 4])]), 'float32', ['batch', 4], 'y');
    const editor = new GraphEditor(g.build());
    const zero = () => editor.addSharedInitializer(makeTensor('z', DataType.INT8, [4], new Int8Array(4)));
    const first = zero();
    expect(zero()).toBe(first);
    expect(editor.addSharedInitializer(makeTensor('z', DataType.INT8, [4], Int8Array.of(0, 0, 0, 1)))).not.toBe(first);
    expect(editor.addSharedInitializer(makeTensor('z', DataType.UINT8, [4], new Uint8Array(4)))).not.toBe(first);
    // Large constants are never shared: comparing them costs more than it saves.
    const big = () => editor.addSharedInitializer(makeTensor('w', DataType.INT8, [512], new Int8Array(512)));
    expect(big()).not.toBe(big());
    editor.removeInitializer(first);
    const again = zero();
    expect(editor.initializers.has(again)).toBe(true);
  });
});

describe("what a quantized file carries besides its weights", () => {
  it('should give the tensors between nodes and the small constants short names and keep those of inputs, outputs, weights and nodes, computing the same', async () => {
    const f = fixtureNamed('pytorch-transformer');
    const fp32 = decodeModel(f.bytes());
    const renamed = decodeModel(f.bytes());
    const before = new Set(renamed.graph!.node!.flatMap((n) => n.output ?? []));
    const n = shortenValueNames(renamed);
    expect(n).toBeGreaterThan(50);
    const nodes = renamed.graph!.node!;
    expect(nodes.map((x) => x.name)).toEqual(fp32.graph!.node!.map((x) => x.name));
    expect(renamed.graph!.input!.map((i) => i.name)).toEqual(['features']);
    expect(renamed.graph!.output!.map((o) => o.name)).toEqual(['logits']);
    const outputs = nodes.flatMap((x) => x.output ?? []);
    // Weights and tables (64 values or more) keep their names; shapes and literals do not.
    const fp32Names = new Set(fp32.graph!.initializer!.map((t) => t.name));
    const [large, small] = [renamed.graph!.initializer!.filter((t) => tensorSize(t) >= 64), renamed.graph!.initializer!.filter((t) => tensorSize(t) < 64)];
    expect(large.length).toBeGreaterThan(10);
    for (const t of large) expect(fp32Names.has(t.name), t.name!).toBe(true);
    expect(small.length).toBeGreaterThan(5);
    for (const t of small) expect(t.name).toMatch(/^t[0-9a-z]+$/);
    expect(outputs.filter((o) => !before.has(o)).length + small.length).toBe(n);
    for (const o of outputs.filter((x) => !before.has(x))) expect(o).toMatch(/^t[0-9a-z]+$/);
    // Every input is still produced by a node or is a graph input or initializer.
    const known = new Set([...outputs, 'features', ...renamed.graph!.initializer!.map((t) => t.name!)]);
    for (const x of nodes) for (const i of x.input ?? []) if (i) expect(known.has(i), i).toBe(true);
    expect(encodeModel(renamed).length).toBeLessThan(f.bytes().length - 2000);
    const feeds = stackWindows(heldOutWindows(f));
    for (const backend of BACKENDS) expect(worstCosine(await runOn(f.bytes(), backend, feeds), await runOn(encodeModel(renamed), backend, feeds))).toBe(1);
    // A weight's stored codes keep the weight's name; what its DequantizeLinear gives does not need it.
    const q = quantizeWeightsOnly(fp32, { format: 'e4m3fn' }).model;
    const dq = q.graph!.node!.find((x) => x.op_type === 'DequantizeLinear' && x.input![0] === 'layers.0.linear1.weight.q')!;
    expect(dq.output![0]).toMatch(/^t[0-9a-z]+$/);
  });

  it('should not take a short name another tensor has, rename value_info with its tensor, and leave a graph with subgraphs as it is', () => {
    const g = new GraphBuilder('names');
    const x = g.input('t0', 'float32', ['batch', 4]);
    const long = g.op1('Relu', [x], {}, { name: 'relu' });
    g.output(g.op1('Neg', [long], {}, { name: 'neg' }), 'float32', ['batch', 4], 'y');
    const model = g.build();
    model.graph!.value_info = [{ name: 'relu_out' }];
    // relu_out and neg_out; t0 is the input's name, and y the output's stays.
    expect(shortenValueNames(model)).toBe(2);
    expect(model.graph!.node!.map((n) => `${n.input!.join(',')}→${n.output!.join(',')}`)).toEqual(['t0→t1', 't1→t2', 't2→y']);
    expect(model.graph!.value_info![0].name).toBe('t1');
    const withIf: ModelProto = {
      ...model,
      graph: { ...model.graph!, node: [...model.graph!.node!, { op_type: 'If', name: 'if', input: ['t1'], output: ['z'], attribute: [{ name: 'then_branch', type: 5, g: { name: 'then', node: [], output: [{ name: 't1' }] } }] }] },
    };
    const names = JSON.stringify(withIf.graph!.node);
    expect(shortenValueNames(withIf)).toBe(0);
    expect(JSON.stringify(withIf.graph!.node)).toBe(names);
  });

  it('should store an embedding table that Gather reads as int8 with one scale per row in int8 variants, and share one zero point across dynamic MatMuls', () => {
    const dyn = quantizeDynamic(modelOf('pytorch-transformer')).model;
    const table = initializer(dyn, 'pos_embedding.weight.q')!;
    expect(table.data_type).toBe(DataType.INT8);
    expect(table.dims!.map(Number)).toEqual([32, 64]);
    const dq = dyn.graph!.node!.find((n) => n.op_type === 'DequantizeLinear' && n.input![0] === 'pos_embedding.weight.q')!;
    expect(constantBehind(dyn, dq.input![1])!.tensor.dims!.map(Number)).toEqual([32]);
    const zeroPoints = new Set(dyn.graph!.node!.filter((n) => n.op_type === 'MatMulInteger').map((n) => n.input![3]));
    expect(zeroPoints.size).toBe(1);
    expect(initializer(dyn, [...zeroPoints][0])!.dims ?? []).toEqual([]);
    // FP8 keeps the table exact in fp16: an 8-bit float's 3 mantissa bits are no place for it.
    const fp8 = quantizeWeightsOnly(modelOf('pytorch-transformer'), { format: 'e4m3fn' }).model;
    expect(initializer(fp8, 'pos_embedding.weight.h')!.data_type).toBe(DataType.FLOAT16);
  });
});

describe('E5M2 scales', () => {
  it('should choose per channel the scale within an octave below max|w| / 57344 with the least squared error, never more than that of max|w| / 57344', () => {
    const next = gaussian(5);
    const dims = [16, 64];
    const w = Float32Array.from({ length: 16 * 64 }, next);
    const q = quantizeWeight(w, dims, 'e5m2', 0);
    const back = dequantize(q.data, q.dataType, dims, q.scale, q.scaleDims, undefined, 0);
    let moved = 0;
    for (let c = 0; c < 16; c++) {
      const row = w.subarray(c * 64, (c + 1) * 64);
      // As the quantizer stores it: rounded up to a value fp16 holds.
      const plain = Math.fround(fp16AtLeast(row.reduce((a, x) => Math.max(a, Math.abs(x)), 0) / 57344));
      expect(q.scale[c]).toBeLessThanOrEqual(plain);
      expect(q.scale[c]).toBeGreaterThan(plain / 2);
      if (q.scale[c] < plain) moved++;
      // What max|w| / 57344 (so rounded) alone would have given.
      const own = fp8ArrayToFloat32(float32ArrayToFp8(row.map((x) => x / plain), 'e5m2', true), 'e5m2').map((x) => x * plain);
      const err = (xs: Float32Array): number => xs.reduce((a, x, i) => a + (x - row[i]) ** 2, 0);
      expect(err(back.subarray(c * 64, (c + 1) * 64))).toBeLessThanOrEqual(err(own) * (1 + 1e-6));
    }
    expect(moved, 'channels whose scale the search moved').toBeGreaterThan(0);
  });
});

describe('inputs with dynamic dimensions', () => {
  const mel = signatureOf(modelOf('mel-dynamic-length'));

  it('should name the input, the dimension and the --shape to give when a dynamic length is not given', () => {
    const err = thrown(() => windowDims(mel));
    expect(err.code).toBe('E_INPUT_SHAPE');
    expect(err.message).toBe("input 'audio' has a dynamic dimension 'samples' (axis 1): give its size with --shape audio=1,<samples>");
    expect(windowDims(mel, { audio: [1, 4000] })).toEqual({ audio: [4000] });
    // A dynamic batch axis alone needs nothing.
    expect(windowDims(signatureOf(modelOf('tf-conv')))).toEqual({ input_1: [16, 16, 3] });
  });

  it('should parse --shape and refuse a bad one on one line naming what is wrong', () => {
    expect(parseShapeOption('audio=1,16000')).toEqual({ audio: [1, 16000] });
    expect(parseShapeOption('b=2', { a: [1] })).toEqual({ a: [1], b: [2] });
    expect(thrown(() => parseShapeOption('audio')).message).toBe("--shape 'audio': expected name=dim,dim,... (for example audio=1,16000)");
    expect(thrown(() => parseShapeOption('audio=1,0')).message).toBe("--shape 'audio=1,0': '0' is not a whole number ≥ 1");
    expect(thrown(() => parseShapeOption('audio=1,NaN')).message).toMatch(/'NaN' is not a whole number/);
    expect(thrown(() => parseShapeOption('audio=2', { audio: [1] })).message).toMatch(/already given a shape/);
    expect(thrown(() => windowDims(mel, { wav: [1, 10] })).message).toBe("--shape names 'wav', which is not an input of the model (it takes 'audio')");
    expect(thrown(() => windowDims(mel, { audio: [4000] })).message).toBe("--shape audio=4000: input 'audio' has 2 dimensions [batch, samples], not 1");
    const tf = signatureOf(modelOf('tf-conv'));
    expect(thrown(() => windowDims(tf, { input_1: [1, 16, 16, 4] })).message).toBe("--shape input_1=1,16,16,4: axis 3 of input 'input_1' is fixed at 3, not 4");
  });

  it('should make seeded synthetic held-out windows at the given length', () => {
    const a = syntheticHeldOut(mel, 3, { audio: [1, 500] });
    expect(a.windows).toHaveLength(3);
    expect(a.windows[0].audio.dims).toEqual([500]);
    expect(a.source).toMatch(/--shape audio=1,500/);
    expect(syntheticHeldOut(mel, 1, { audio: [1, 500] }).windows[0].audio.data).toEqual(a.windows[0].audio.data);
    // Long windows come fewer, within the bound on their values together (2²⁶ by default).
    expect(syntheticHeldOut(mel, 256, { audio: [1, 1000] }, 10_500).windows).toHaveLength(10);
    expect(thrown(() => windowDims(mel, { audio: [1, 2 ** 24 + 1] })).message).toBe("--shape audio=1,16777217: a window of 16,777,217 values is more than the quantizer feeds (16,777,216)");
  });
});

describe('onnxruntime failures in our words', () => {
  it('should keep the node and the reason of a node failure, on one line, after what we were doing', () => {
    const raw = new EdgeInferError('E_RUN', "fp32: the model failed while running: Non-zero status code returned while running Conv node. Name:'/stft/Conv' Status Message: Invalid input shape: {1}");
    expect(ortReason(raw)).toBe("Conv node '/stft/Conv': Invalid input shape: {1}");
    const wrapped = ortFailure('calibration: the fp32 model cannot run windows of audio [64, 1]', raw);
    expect(wrapped.message).toBe("calibration: the fp32 model cannot run windows of audio [64, 1] (onnxruntime: Conv node '/stft/Conv': Invalid input shape: {1})");
    expect(ortReason(new Error('onnxruntime cannot load the model: first line\n  at somewhere'))).toBe('first line');
    // Our own errors about bad input are not onnxruntime's and pass as they are.
    const ours = new EdgeInferError('E_INPUT_VALUE', 'value at [0] is NaN');
    expect(ortFailure('calibration', ours)).toBe(ours);
  });
});

describe('the four exported models', () => {
  for (const f of ANY_MODEL_FIXTURES) {
    // Weights are over 90 % of each of these files: the goal is 30 % of fp32 (35 % otherwise).
    it(`should quantize ${f.name} with dynamic and static int8, FP8 E4M3 per channel and in blocks of 32 to ≤ 30 % of fp32, agreeing with it (cosine ≥ 0.995) on wasm and native`, async () => {
      const model = decodeModel(f.bytes());
      const made = [
        ['dynamic int8', quantizeDynamic(model).model],
        ['static int8', (await quantizeStatic(model, { windows: calibrationWindows(f).slice(0, 64), method: 'minmax' })).model],
        ['fp8 e4m3', quantizeWeightsOnly(model, { format: 'e4m3fn' }).model],
        ['fp8 e4m3 blocks of 32', quantizeWeightsOnly(model, { format: 'e4m3fn', blockSize: 32 }).model],
      ] as const;
      for (const [id, q] of made) {
        expect(encodeModel(q).length / f.bytes().length, `${id}: share of fp32's size`).toBeLessThanOrEqual(0.3);
        expect(await agreement(f.name, q), `${id}: cosine`).toBeGreaterThanOrEqual(0.995);
      }
    });
  }

  it('should leave the final Softmax of the TensorFlow CNN in fp32 in static int8, so that every class keeps its score on native', async () => {
    const f = fixtureNamed('tf-conv');
    const q = await quantizeStatic(decodeModel(f.bytes()), { windows: calibrationWindows(f).slice(0, 64), method: 'minmax' });
    const softmax = q.model.graph!.node!.find((n) => n.op_type === 'Softmax')!;
    expect(q.model.graph!.node!.some((n) => n.op_type === 'QuantizeLinear' && n.input![0] === softmax.output![0])).toBe(false);
    expect(await agreement('tf-conv', q.model)).toBeGreaterThanOrEqual(0.995);
  });
});

describe('runQuantizeJob without held-out windows', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-unchecked-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const f = fixtureNamed('mel-dynamic-length');
  const reason = "input 'audio' has a dynamic dimension 'samples' (axis 1): give its size with --shape audio=1,<samples>";
  const job = { model: decodeModel(f.bytes()), bytes: f.bytes(), card: null, method: 'minmax' as const, load: 'fast' as const, backend: 'wasm' as const, html: true, noHeldOutReason: reason };

  it('should write weight-only FP8 unchecked, with the reason, and no report to show', async () => {
    const output = path.join(dir, 'mel.fp8.onnx');
    const r = await runQuantizeJob({ ...job, to: 'fp8-e5m2', output });
    expect(r.comparison).toBeUndefined();
    expect('unchecked' in r && r.unchecked).toBe(`not compared with fp32: ${reason}`);
    expect(existsSync(output)).toBe(true);
    expect(r.reportFile).toBeUndefined();
    expect(r.sizeBytes / f.bytes().length).toBeLessThan(0.3);
  });

  it('should refuse every other method with the reason, writing nothing', async () => {
    for (const to of ['int8-dynamic', 'int8'] as const) {
      const output = path.join(dir, `mel.${to}.onnx`);
      const err = await caught(() => runQuantizeJob({ ...job, to, output }));
      expect(err, to).toMatchObject({ code: 'E_ARGUMENT', message: `${to}: cannot check the variant against fp32: ${reason}` });
      expect(existsSync(output)).toBe(false);
    }
  });

  it('should check --shape against the declared shapes before any work, whatever the dynamic dimensions', () => {
    expect(() => checkShapes(signatureOf(modelOf('mel-dynamic-length')), {})).not.toThrow();
    expect(thrown(() => checkShapes(signatureOf(modelOf('tf-conv')), { input_1: [1, 16, 16] })).message).toMatch(/has 4 dimensions \[batch, 16, 16, 3\], not 3/);
  });
});
