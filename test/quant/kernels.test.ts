// Does onnxruntime really run the quantized graphs on integer kernels? onnxruntime-node writes
// the graph it ends up running (optimization level 'all') to a file; its operator histogram
// shows whether the QDQ groups became QLinear*/QGemm kernels and the dynamic MatMuls
// DynamicQuantizeMatMul, or whether they fell back to fp32 with extra (De)QuantizeLinear work.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sessionExtra } from '../../runtime/engine/backends/ort-session';
import { DataType, GraphBuilder, type ModelProto, decodeModel, encodeModel, graphStats } from '../../runtime/onnx';
import { loadOptionsFor, quantizeDynamic, quantizeWeightsOnly } from '../../runtime/quant';
import { fixtureNamed } from '../helpers/exporter-fixtures';
import { BLOCK_SIZE, type Method, STATIC_METHODS, constantBehind } from './harness';

// onnxruntime-node itself, not the engine: only it can write the optimized model out.
const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');

const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-kernels-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;

/** The operator histogram of the graph onnxruntime-node runs for `model`. */
async function optimizedOperators(model: ModelProto, config?: Record<string, string>): Promise<Record<string, number>> {
  const file = path.join(dir, `optimized-${++files}.onnx`);
  const session = await ort.InferenceSession.create(encodeModel(model), {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    optimizedModelFilePath: file,
    logSeverityLevel: 3,
    intraOpNumThreads: 1,
    ...(config ? { extra: sessionExtra(config) } : {}),
  });
  await session.release();
  return graphStats(decodeModel(readFileSync(file), file)).operators;
}

const count = (ops: Record<string, number>, op: string): number => ops[op] ?? 0;

/** The integer kernel each fixture's dynamic MatMuls must fuse into: attention shares one quantized input among Q, K and V. */
const DYNAMIC_KERNEL: Record<string, string> = {
  'pytorch-linear': 'com.microsoft.DynamicQuantizeMatMul',
  'pytorch-constant-weights': 'com.microsoft.DynamicQuantizeMatMul',
  'layernorm-decomposed': 'com.microsoft.DynamicQuantizeMatMul',
  'layernorm-fused': 'com.microsoft.DynamicQuantizeMatMul',
  'gelu-erf': 'com.microsoft.DynamicQuantizeMatMul',
  'gelu-tanh-tf': 'com.microsoft.DynamicQuantizeMatMul',
  'pytorch-flatten-view': 'com.microsoft.DynamicQuantizeMatMul',
  attention: 'com.microsoft.MatMulIntegerToFloat',
  'cnn1d-keras': 'com.microsoft.DynamicQuantizeMatMul',
  cnn2d: 'com.microsoft.DynamicQuantizeMatMul',
  'tf-nhwc-dense': 'com.microsoft.DynamicQuantizeMatMul',
};

/** The integer kernels static int8 must reach, at least this many of each. */
const STATIC_KERNELS: Record<string, Record<string, number>> = {
  // The Gemm with alpha 0.5 is not fused by onnxruntime; it runs in fp32 between its DQ and Q.
  'pytorch-linear': { 'com.microsoft.QGemm': 2 },
  'pytorch-constant-weights': { QLinearMatMul: 1, 'com.microsoft.QGemm': 1 },
  'layernorm-decomposed': { QLinearMatMul: 2 },
  'layernorm-fused': { QLinearMatMul: 2 },
  'gelu-erf': { 'com.microsoft.QGemm': 2 },
  'gelu-tanh-tf': { QLinearMatMul: 2 },
  'pytorch-flatten-view': { QLinearMatMul: 1, 'com.microsoft.QGemm': 1 },
  // Four projections and the two activation × activation MatMuls.
  attention: { QLinearMatMul: 6, 'com.microsoft.QLinearSoftmax': 1 },
  'cnn1d-keras': { 'com.microsoft.QLinearConv': 2, 'com.microsoft.QLinearGlobalAveragePool': 1, 'com.microsoft.QGemm': 1 },
  cnn2d: { 'com.microsoft.QLinearConv': 2, 'com.microsoft.QLinearGlobalAveragePool': 1, 'com.microsoft.QGemm': 1 },
  // Its final Softmax is renamed into the graph output by an Identity: left fp32, not QLinearSoftmax.
  'tf-nhwc-dense': { 'com.microsoft.QLinearConv': 1, QLinearMatMul: 2 },
};

describe('dynamic int8 on onnxruntime-node', () => {
  for (const name of ['cnn1d-keras', 'cnn2d', 'tf-nhwc-dense']) {
    it(`should run every Conv of ${name} as ConvInteger, not fall back to a float Conv`, async () => {
      const quantized = quantizeDynamic(decodeModel(fixtureNamed(name).bytes())).model;
      const written = count(graphStats(quantized).operators, 'ConvInteger');
      const ops = await optimizedOperators(quantized);
      expect(written).toBeGreaterThan(0);
      expect(count(ops, 'ConvInteger'), JSON.stringify(ops)).toBe(written);
      expect(count(ops, 'Conv') + count(ops, 'com.microsoft.FusedConv'), JSON.stringify(ops)).toBe(0);
    });
  }

  for (const [name, kernel] of Object.entries(DYNAMIC_KERNEL)) {
    it(`should fuse every MatMulInteger of ${name} into ${kernel.replace('com.microsoft.', '')}`, async () => {
      const quantized = quantizeDynamic(decodeModel(fixtureNamed(name).bytes())).model;
      const written = count(graphStats(quantized).operators, 'MatMulInteger');
      const ops = await optimizedOperators(quantized);
      expect(written).toBeGreaterThan(0);
      expect(count(ops, kernel), JSON.stringify(ops)).toBeGreaterThan(0);
      expect(count(ops, 'com.microsoft.DynamicQuantizeMatMul') + count(ops, 'com.microsoft.MatMulIntegerToFloat'), JSON.stringify(ops)).toBe(written);
      expect(count(ops, 'MatMulInteger'), 'unfused MatMulInteger').toBe(0);
    });
  }
});

describe('the bias of an integer MatMul', () => {
  it('should stay float (fp16 in the file) so that onnxruntime takes it into DynamicQuantizeMatMul: no Add and no DequantizeLinear of it left', async () => {
    const g = new GraphBuilder('biased');
    const x = g.input('x', 'float32', ['batch', 64]);
    const w = Float32Array.from({ length: 64 * 96 }, (_, i) => Math.sin(i * 0.37) * 0.1);
    const b = Float32Array.from({ length: 96 }, (_, i) => Math.cos(i) * 0.5);
    g.output(g.op1('Relu', [g.op1('Add', [g.op1('MatMul', [x, g.weight('w', [64, 96], w)]), g.weight('b', [96], b)])]), 'float32', ['batch', 96], 'y');
    const quantized = quantizeDynamic(g.build()).model;
    const add = quantized.graph!.node!.find((n) => n.op_type === 'Add')!;
    const bias = add.input!.find((i) => constantBehind(quantized, i))!;
    expect(constantBehind(quantized, bias)).toMatchObject({ storedAs: DataType.FLOAT16, dataType: DataType.FLOAT });
    const ops = await optimizedOperators(quantized);
    expect(count(ops, 'com.microsoft.DynamicQuantizeMatMul'), JSON.stringify(ops)).toBe(1);
    expect(count(ops, 'Add') + count(ops, 'DequantizeLinear'), JSON.stringify(ops)).toBe(0);
  });
});

describe('static int8 on onnxruntime-node', () => {
  const minmax: Method = STATIC_METHODS[0];
  for (const [name, kernels] of Object.entries(STATIC_KERNELS)) {
    it(`should run ${name} on ${Object.keys(kernels).map((k) => k.replace('com.microsoft.', '')).join(', ')}`, async () => {
      const f = fixtureNamed(name);
      const quantized = (await minmax.quantize(decodeModel(f.bytes()), f)).model;
      const ops = await optimizedOperators(quantized);
      for (const [op, n] of Object.entries(kernels)) expect(count(ops, op), `${op} in ${JSON.stringify(ops)}`).toBeGreaterThanOrEqual(n);
    });
  }

  it('should keep every QDQ group when an int8 variant is loaded fast', async () => {
    const f = fixtureNamed('tf-nhwc-dense');
    const quantized = (await minmax.quantize(decodeModel(f.bytes()), f)).model;
    const ops = await optimizedOperators(quantized, loadOptionsFor('int8', 'fast').sessionConfig);
    expect(count(ops, 'com.microsoft.QLinearConv')).toBe(1);
    expect(count(ops, 'QLinearMatMul')).toBe(2);
  });
});

describe('FP8 weight loading on onnxruntime-node', () => {
  const cases = [
    { fixture: 'cnn2d', precision: 'fp8-e4m3', options: { format: 'e4m3fn' as const } },
    { fixture: 'pytorch-linear', precision: 'fp8-e4m3', options: { format: 'e4m3fn' as const, blockSize: BLOCK_SIZE } },
    { fixture: 'tf-nhwc-dense', precision: 'fp8-e5m2', options: { format: 'e5m2' as const } },
  ];
  for (const { fixture, precision, options } of cases) {
    it(`should fold every weight DequantizeLinear of ${fixture} (${precision}${options.blockSize ? ', blocked' : ''}) when loaded fast, and keep them when compact`, async () => {
      const quantized = quantizeWeightsOnly(decodeModel(fixtureNamed(fixture).bytes()), options);
      const compact = await optimizedOperators(quantized.model, loadOptionsFor(precision, 'compact').sessionConfig);
      const fast = await optimizedOperators(quantized.model, loadOptionsFor(precision, 'fast').sessionConfig);
      expect(count(compact, 'DequantizeLinear')).toBe(quantized.weights);
      expect(count(fast, 'DequantizeLinear'), JSON.stringify(fast)).toBe(0);
    });
  }
});
