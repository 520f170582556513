// How the quantizers edit graphs that the exporter fixtures do not show: element types of
// multi-output and type-changing operators, initializers read from inside If branches, constants
// and weights that several nodes share, initializers kept as graph inputs, and opset checks.
// Every model is built here, quantized, and run in real onnxruntime sessions.
import { describe, expect, it } from 'vitest';
import type { TensorMap } from '../../runtime/engine';
import { isEdgeInferError } from '../../runtime/errors';
import { DataType, type GraphProto, GraphBuilder, type ModelProto, type NodeProto, encodeModel, makeTensor, tensorSize, valueInfo } from '../../runtime/onnx';
import { float16Export, quantizeDynamic, quantizeStatic, quantizeWeightsOnly } from '../../runtime/quant';
import { GraphEditor } from '../../runtime/quant/graph';
import { gaussian } from '../helpers/exporter-fixtures';
import { caught } from '../helpers/errors';
import { BACKENDS, COSINE_8BIT, runOn, stackWindows, worstCosine } from './harness';

function values(n: number, seed: number, sd = 0.3): Float32Array {
  const next = gaussian(seed);
  return Float32Array.from({ length: n }, () => next() * sd);
}

/** `count` windows of one input of `dims`, standard normal, seeded. */
function windows(input: string, dims: number[], count: number, seed: number): TensorMap[] {
  const next = gaussian(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  return Array.from({ length: count }, () => ({ [input]: { type: 'float32', data: Float32Array.from({ length: n }, next), dims: [...dims] } }));
}

const nodesOf = (model: ModelProto, op: string): NodeProto[] => (model.graph?.node ?? []).filter((n) => n.op_type === op);

/** Runs fp32 and quantized bytes on both backends; every output must agree within `cosine`. */
async function expectAgreement(fp32: ModelProto, quantized: ModelProto, feeds: TensorMap, cosine = COSINE_8BIT): Promise<void> {
  for (const backend of BACKENDS) {
    const reference = await runOn(encodeModel(fp32), backend, feeds, 'fp32');
    const got = await runOn(encodeModel(quantized), backend, feeds, 'quantized');
    expect(worstCosine(reference, got), backend).toBeGreaterThanOrEqual(cosine);
  }
}

describe('GraphEditor.elementTypes', () => {
  it('should type only the outputs an operator fixes: int64 indices, bool masks, quantized codes, and nothing for If', () => {
    const g = new GraphBuilder('types');
    const x = g.input('x', 'float32', ['batch', 4, 8]);
    const [pooled] = g.op('MaxPool', [x], { kernel_shape: [2], strides: [2] }, { outputs: ['pooled', 'indices'] });
    const [dropped] = g.op('Dropout', [pooled], {}, { outputs: ['dropped', 'mask'] });
    const s = g.scalar('s', 0.1);
    const zp = g.initializer(makeTensor('zp', DataType.INT8, [], Int8Array.of(0)));
    const q = g.op1('QuantizeLinear', [dropped, s, zp], {}, { output: 'q' });
    g.op1('QuantizeLinear', [dropped, s], {}, { output: 'q_default' });
    const dq = g.op1('DequantizeLinear', [q, s, zp], {}, { output: 'dq' });
    const [dynQ, dynScale] = g.op('DynamicQuantizeLinear', [dq], {}, { outputs: ['dyn_q', 'dyn_scale', 'dyn_zp'] });
    const w = g.initializer(makeTensor('w_q', DataType.UINT8, [4, 4], new Uint8Array(16)));
    const integer = g.op1('MatMulInteger', [g.op1('Reshape', [dynQ, g.int64('shape', [-1, 4])]), w], {}, { output: 'integer' });
    const like = g.op1('CastLike', [integer, dynScale], {}, { output: 'like' });
    const cond = g.op1('Greater', [g.op1('ReduceSum', [like], { keepdims: 0 }), g.scalar('zero', 0)], {}, { output: 'cond' });
    const branch = (name: string): GraphProto => ({ name, node: [{ op_type: 'Identity', name: `${name}/Identity`, input: [like], output: [`${name}_out`] }], output: [valueInfo(`${name}_out`, 'float32', [])] });
    const chosen = g.op1('If', [cond], { then_branch: { graph: branch('then') }, else_branch: { graph: branch('else') } }, { output: 'chosen' });
    // Only 'y' is declared: every other type below comes from the operators.
    g.output(chosen, 'float32', [], 'y');
    const types = new GraphEditor(g.build()).elementTypes();
    expect(Object.fromEntries(['pooled', 'indices', 'dropped', 'mask', 'q', 'q_default', 'dq', 'dyn_q', 'dyn_scale', 'dyn_zp', 'integer', 'like', 'cond'].map((t) => [t, types.get(t)]))).toEqual({
      pooled: DataType.FLOAT, indices: DataType.INT64, dropped: DataType.FLOAT, mask: DataType.BOOL, q: DataType.INT8, q_default: DataType.UINT8,
      dq: DataType.FLOAT, dyn_q: DataType.UINT8, dyn_scale: DataType.FLOAT, dyn_zp: DataType.UINT8, integer: DataType.INT32, like: DataType.FLOAT, cond: DataType.BOOL,
    });
    // An If's outputs are whatever its branches make: not guessed from its condition.
    expect(types.has('chosen')).toBe(false);
  });
});

/** x [batch, 4, 16] → Conv → MaxPool (values and int64 indices) → Flatten → Gemm; the indices feed a Cast → ReduceMean output. */
function maxPoolWithIndices(): ModelProto {
  const g = new GraphBuilder('maxpool_indices');
  const x = g.input('signal', 'float32', ['batch', 4, 16]);
  const conv = g.op1('Conv', [x, g.weight('conv.weight', [8, 4, 3], values(96, 1)), g.weight('conv.bias', [8], values(8, 2, 0.1))], { pads: [1, 1] });
  const [pooled, indices] = g.op('MaxPool', [g.op1('Relu', [conv])], { kernel_shape: [2], strides: [2] }, { outputs: ['pooled', 'pool_indices'] });
  const flat = g.op1('Flatten', [pooled]);
  g.output(g.op1('Gemm', [flat, g.weight('fc.weight', [3, 64], values(192, 3, 0.15)), g.weight('fc.bias', [3], values(3, 4, 0.1))], { transB: 1 }), 'float32', ['batch', 3], 'scores');
  const where = g.op1('ReduceMean', [g.op1('Cast', [indices], { to: DataType.FLOAT })], { keepdims: 0 });
  g.output(where, 'float32', [], 'mean_index');
  return g.build({ opsets: { '': 17 } });
}

describe('static int8 with a two-output MaxPool', () => {
  it('should calibrate the pooled values, not the int64 indices, and the model should load and run', async () => {
    const model = maxPoolWithIndices();
    const out = await quantizeStatic(model, { windows: windows('signal', [4, 16], 32, 5), method: 'minmax' });
    expect(out.ranges.has('pooled')).toBe(true);
    expect(out.ranges.has('pool_indices')).toBe(false);
    expect(nodesOf(out.model, 'QuantizeLinear').map((n) => n.input![0])).not.toContain('pool_indices');
    const feeds = stackWindows(windows('signal', [4, 16], 16, 6));
    await expectAgreement(model, out.model, feeds);
  });
});

/**
 * y = Gemm(x, w, b) at the top; z = If(sum(mode) > 0) with branches that read w and b from the
 * graph around them: MatMul(x, w) + b, or MatMul(x, w) × b.
 */
function ifReadsWeights(): ModelProto {
  const g = new GraphBuilder('if_reads_weights');
  const x = g.input('x', 'float32', ['batch', 8]);
  const mode = g.input('mode', 'float32', ['batch', 1]);
  const w = g.weight('w', [8, 4], values(32, 7));
  const b = g.weight('b', [4], values(4, 8, 0.2));
  const y = g.op1('Gemm', [x, w, b], {}, { name: 'fc' });
  const cond = g.op1('Greater', [g.op1('ReduceSum', [mode], { keepdims: 0 }), g.scalar('zero', 0)], {}, { output: 'cond' });
  const branch = (name: string, op: string): GraphProto => ({
    name,
    node: [
      { op_type: 'MatMul', name: `${name}/MatMul`, input: [x, w], output: [`${name}_product`] },
      { op_type: op, name: `${name}/${op}`, input: [`${name}_product`, b], output: [`${name}_out`] },
    ],
    output: [valueInfo(`${name}_out`, 'float32', ['batch', 4])],
  });
  const z = g.op1('If', [cond], { then_branch: { graph: branch('then', 'Add') }, else_branch: { graph: branch('else', 'Mul') } }, { name: 'choose' });
  g.output(y, 'float32', ['batch', 4], 'y');
  g.output(z, 'float32', ['batch', 4], 'z');
  return g.build({ opsets: { '': 17 } });
}

describe('initializers read from inside If branches', () => {
  it('should keep a weight and a bias that a branch reads when every method quantizes them at the top, and the models should run', async () => {
    const model = ifReadsWeights();
    const withMode = (ws: TensorMap[], sign: number): TensorMap[] => ws.map((w) => ({ ...w, mode: { type: 'float32', data: Float32Array.of(sign), dims: [1] } }));
    const made = {
      static: (await quantizeStatic(model, { windows: [...withMode(windows('x', [8], 16, 9), 1), ...withMode(windows('x', [8], 16, 10), -1)], method: 'minmax' })).model,
      dynamic: quantizeDynamic(model).model,
      'weight-only': quantizeWeightsOnly(model, { format: 'int8' }).model,
    };
    const held = windows('x', [8], 16, 11);
    for (const [method, q] of Object.entries(made)) {
      // Still defined for the branches: as an initializer, or as the output of the DequantizeLinear that replaced it.
      const defined = new Set([...(q.graph!.initializer ?? []).map((t) => t.name), ...(q.graph!.node ?? []).flatMap((n) => n.output ?? [])]);
      expect(defined.has('w') && defined.has('b'), `${method} removed what a branch reads`).toBe(true);
      // Each branch in turn: the If takes one for the whole batch.
      for (const sign of [1, -1]) await expectAgreement(model, q, stackWindows(withMode(held, sign)));
    }
  });
});

describe('shared constants and weights', () => {
  it('should store a float constant read by several Add and Mul nodes once, behind one DequantizeLinear, in static int8', async () => {
    const g = new GraphBuilder('shared_constant');
    const x = g.input('x', 'float32', ['batch', 16]);
    const shift = g.weight('shift', [16], values(16, 11, 0.5));
    const h1 = g.op1('Add', [g.op1('MatMul', [x, g.weight('w1', [16, 16], values(256, 12, 0.25))]), shift]);
    const h2 = g.op1('Add', [g.op1('MatMul', [g.op1('Relu', [h1]), g.weight('w2', [16, 16], values(256, 13, 0.25))]), shift]);
    g.output(g.op1('Mul', [h2, shift]), 'float32', ['batch', 16], 'y');
    const model = g.build();
    const q = (await quantizeStatic(model, { windows: windows('x', [16], 32, 14), method: 'minmax' })).model;
    // One uint8 copy of 16 values behind one DequantizeLinear; the fp32 original gone.
    const inits = q.graph!.initializer ?? [];
    expect(inits.some((t) => t.data_type === DataType.FLOAT && tensorSize(t) === 16)).toBe(false);
    const copies = inits.filter((t) => t.data_type === DataType.UINT8 && tensorSize(t) === 16);
    expect(copies).toHaveLength(1);
    const dq = nodesOf(q, 'DequantizeLinear').filter((n) => n.input![0] === copies[0].name);
    expect(dq).toHaveLength(1);
    expect([...nodesOf(q, 'Add'), ...nodesOf(q, 'Mul')].filter((n) => n.input!.includes(dq[0].output![0]))).toHaveLength(3);
    await expectAgreement(model, q, stackWindows(windows('x', [16], 16, 15)));
  });

  it('should transpose and quantize a weight shared by two transB Gemms once in dynamic int8', async () => {
    const g = new GraphBuilder('tied_gemms');
    const a = g.input('a', 'float32', ['batch', 128]);
    const b = g.input('b', 'float32', ['batch', 128]);
    const tied = g.weight('tied.weight', [64, 128], values(8192, 16, 0.1));
    g.output(g.op1('Gemm', [a, tied, g.weight('bias_a', [64], values(64, 17, 0.1))], { transB: 1 }), 'float32', ['batch', 64], 'ya');
    g.output(g.op1('Gemm', [b, tied, g.weight('bias_b', [64], values(64, 18, 0.1))], { transB: 1 }), 'float32', ['batch', 64], 'yb');
    const model = g.build();
    const q = quantizeDynamic(model, { reduceRange: false }).model;
    const integers = nodesOf(q, 'MatMulInteger');
    expect(integers).toHaveLength(2);
    expect(integers[0].input![1]).toBe(integers[1].input![1]);
    const large = (type: DataType) => (q.graph!.initializer ?? []).filter((t) => t.data_type === type && tensorSize(t) >= 8192);
    expect(large(DataType.INT8).map((t) => t.dims!.map(Number))).toEqual([[128, 64]]);
    // No float copy of the weight left, transposed or not: the file is about a quarter of fp32's (two int8 copies made it half).
    expect(large(DataType.FLOAT)).toEqual([]);
    expect(encodeModel(q).length).toBeLessThan(encodeModel(model).length * 0.35);
    const next = gaussian(19);
    const feeds: TensorMap = Object.fromEntries(['a', 'b'].map((name) => [name, { type: 'float32', data: Float32Array.from({ length: 8 * 128 }, next), dims: [8, 128] }]));
    await expectAgreement(model, q, feeds);
  });
});

describe('float16Export', () => {
  it('should drop the graph inputs of initializers it replaces, so a model that lists initializers as inputs loads and runs', async () => {
    const g = new GraphBuilder('initializers_as_inputs');
    const x = g.input('x', 'float32', ['batch', 6]);
    const w = g.weight('w', [6, 5], values(30, 20));
    const bias = g.weight('bias', [5], values(5, 21, 0.1));
    g.output(g.op1('Add', [g.op1('MatMul', [x, w]), bias]), 'float32', ['batch', 5], 'y');
    const model = g.build();
    // What torch.onnx.export(keep_initializers_as_inputs=True) writes: every initializer also a graph input.
    model.graph!.input!.push(valueInfo('w', 'float32', [6, 5]), valueInfo('bias', 'float32', [5]));
    const half = float16Export(model);
    expect(half.graph!.input!.map((i) => i.name)).toEqual(['x']);
    const feeds = stackWindows(windows('x', [6], 8, 22));
    for (const backend of BACKENDS) {
      const ref = await runOn(encodeModel(model), backend, feeds);
      const got = await runOn(encodeModel(half), backend, feeds);
      for (let i = 0; i < ref.y.length; i++) expect(Math.abs(got.y[i] - ref.y[i]), `${backend} y[${i}]`).toBeLessThan(2e-3);
    }
  });
});

describe('dynamic int8 and the opset', () => {
  it('should refuse a model below opset 11, naming its opset, and quantize one at opset 11 that then runs', async () => {
    const build = (opset: number): ModelProto => {
      const g = new GraphBuilder(`opset${opset}`);
      const x = g.input('x', 'float32', ['batch', 8]);
      g.output(g.op1('MatMul', [x, g.weight('w', [8, 4], values(32, 23))]), 'float32', ['batch', 4], 'y');
      return g.build({ opsets: { '': opset } });
    };
    const err = await caught(() => quantizeDynamic(build(10)));
    expect(isEdgeInferError(err, 'E_MODEL_UNSUPPORTED'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/opset 10/);
    const q = quantizeDynamic(build(11)).model;
    expect(nodesOf(q, 'DynamicQuantizeLinear')).toHaveLength(1);
    await expectAgreement(build(11), q, stackWindows(windows('x', [8], 8, 24)));
  });
});

describe('quantizeAddConstants', () => {
  it('should keep a large float constant that a Sub also reads out of int8 (fp16, exact enough), and store one only Adds read in int8', () => {
    const g = new GraphBuilder('add_constants');
    const x = g.input('x', 'float32', ['batch', 64]);
    const h = g.op1('MatMul', [x, g.weight('w', [64, 64], values(4096, 25, 0.1))]);
    const onlyAdd = g.weight('only_add', [64], values(64, 26));
    const shared = g.weight('shared', [64], values(64, 27));
    g.output(g.op1('Sub', [g.op1('Add', [g.op1('Add', [h, onlyAdd]), shared]), shared]), 'float32', ['batch', 64], 'y');
    const q = quantizeWeightsOnly(g.build(), { format: 'int8' }).model;
    const init = (name: string) => q.graph!.initializer!.find((t) => t.name === name);
    expect(init('only_add')).toBeUndefined();
    expect(init('only_add.q')?.data_type).toBe(DataType.INT8);
    expect(init('shared.h')?.data_type).toBe(DataType.FLOAT16);
    expect(init('shared.q')).toBeUndefined();
  });
});
