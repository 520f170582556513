// Weight-only (int8, FP8 E4M3 per channel and per block, E5M2) and dynamic int8 on the graph
// patterns PyTorch's and TensorFlow's exporters write. Static int8 is in methods-static.test.ts.
import { describe, expect, it } from 'vitest';
import { isEdgeInferError } from '../../runtime/errors';
import { type ModelProto, type NodeProto, decodeModel, encodeModel, opsetOf, tensorDims, toNumber } from '../../runtime/onnx';
import { quantizeDynamic, quantizeModel, quantizeWeightsOnly } from '../../runtime/quant';
import { fixtureNamed } from '../helpers/exporter-fixtures';
import { caught } from '../helpers/errors';
import { BLOCK_SIZE, STATIC_METHODS, WEIGHT_ONLY_METHODS, calibrationWindows, constantBehind, fp32WeightReaders, heldOutWindows, runOn, stackWindows, worstCosine } from './harness';
import { describeMethodMatrix } from './matrix';

const modelOf = (name: string): ModelProto => decodeModel(fixtureNamed(name).bytes());

function node(model: ModelProto, predicate: (n: NodeProto) => boolean): NodeProto {
  const found = model.graph?.node?.find(predicate);
  if (!found) throw new Error('no such node');
  return found;
}

/** The DequantizeLinear that restores weight `name` from its codes (`name.q`), with its scale's dims and its attributes. */
function dequantizerOf(model: ModelProto, name: string): { axis: number; blockSize: number; scaleDims: number[] } {
  const dq = node(model, (n) => n.op_type === 'DequantizeLinear' && n.input?.[0] === `${name}.q`);
  const scale = constantBehind(model, dq.input![1])!.tensor;
  const attr = (a: string): number => toNumber(dq.attribute?.find((x) => x.name === a)?.i ?? 0);
  return { axis: attr('axis'), blockSize: attr('block_size'), scaleDims: tensorDims(scale) };
}

describe('weight-only and dynamic quantization of exporter graphs', () => {
  describeMethodMatrix(WEIGHT_ONLY_METHODS);
});

describe('exporter patterns', () => {
  it('should refuse the model with no float weights for every method with E_MODEL_UNSUPPORTED, saying it has no weights', async () => {
    const model = modelOf('no-weights');
    const f = fixtureNamed('no-weights');
    for (const method of [...WEIGHT_ONLY_METHODS, ...STATIC_METHODS]) {
      const err = await caught(() => method.quantize(model, f));
      expect(isEdgeInferError(err, 'E_MODEL_UNSUPPORTED'), `${method.id}: got ${String(err)}`).toBe(true);
      expect((err as Error).message, method.id).toMatch(/no .*weight/);
    }
    const viaEntry = await caught(() => quantizeModel({ model, to: 'fp8-e4m3' }));
    expect(isEdgeInferError(viaEntry, 'E_MODEL_UNSUPPORTED')).toBe(true);
  });

  it('should quantize a PyTorch Linear weight [out, in] (Gemm transB=1) with one scale per output row', () => {
    const q = quantizeWeightsOnly(modelOf('pytorch-linear'), { format: 'int8' }).model;
    expect(dequantizerOf(q, 'fc1.weight')).toEqual({ axis: 0, blockSize: 0, scaleDims: [32] });
    expect(dequantizerOf(q, 'fc3.weight')).toEqual({ axis: 0, blockSize: 0, scaleDims: [4] });
  });

  it('should cut block-wise FP8 scales along the reduction axis, ceil(K / block) blocks per output row, at opset 21', () => {
    const q = quantizeWeightsOnly(modelOf('pytorch-linear'), { format: 'e4m3fn', blockSize: BLOCK_SIZE }).model;
    // fc1.weight is [32, 20] with transB: K = 20 on axis 1 → 3 blocks of 8 (the last one 4 wide).
    expect(dequantizerOf(q, 'fc1.weight')).toEqual({ axis: 1, blockSize: BLOCK_SIZE, scaleDims: [32, 3] });
    // A TF Dense kernel is [K, N]: blocks run down axis 0.
    const tf = quantizeWeightsOnly(modelOf('tf-nhwc-dense'), { format: 'e4m3fn', blockSize: BLOCK_SIZE }).model;
    expect(dequantizerOf(tf, 'sequential/dense/kernel')).toEqual({ axis: 0, blockSize: BLOCK_SIZE, scaleDims: [16, 16] });
    expect(opsetOf(q)).toBe(21);
  });

  it('should keep per-channel scales, with a notice naming the weight, where the reduction axis is no longer than a block', () => {
    const out = quantizeWeightsOnly(modelOf('cnn1d-keras'), { format: 'e4m3fn', blockSize: BLOCK_SIZE });
    // conv1d/kernel is [12, 3, 5]: 3 input channels.
    expect(out.notices.join('\n')).toContain("'conv1d/kernel'");
    expect(dequantizerOf(out.model, 'conv1d/kernel')).toEqual({ axis: 0, blockSize: 0, scaleDims: [12] });
    expect(dequantizerOf(out.model, 'conv1d_1/kernel')).toEqual({ axis: 1, blockSize: BLOCK_SIZE, scaleDims: [16, 2, 3] });
  });

  it("should turn the opset-12 Unsqueeze's axes attribute into an input when it raises the opset", () => {
    const q = quantizeWeightsOnly(modelOf('pytorch-flatten-view'), { format: 'int8' }).model;
    const unsqueeze = node(q, (n) => n.op_type === 'Unsqueeze');
    expect(unsqueeze.input).toHaveLength(2);
    expect(unsqueeze.attribute?.some((a) => a.name === 'axes')).toBe(false);
    expect(opsetOf(q)).toBe(13);
  });

  it('should quantize weights held in Constant nodes as it quantizes initializers, for every method', async () => {
    const f = fixtureNamed('pytorch-constant-weights');
    const model = decodeModel(f.bytes());
    const feeds = stackWindows(heldOutWindows(f));
    const reference = await runOn(f.bytes(), 'native', feeds);
    for (const method of [...WEIGHT_ONLY_METHODS, STATIC_METHODS[0]]) {
      const err = await caught(() => method.quantize(model, f));
      expect(err, `${method.id} refused: ${String(err)}`).toBeUndefined();
      const out = await method.quantize(model, f);
      expect(fp32WeightReaders(out.model).map((n) => `${n.op_type} '${n.name}'`), `${method.id} left fp32 weights`).toEqual([]);
      expect(worstCosine(reference, await runOn(encodeModel(out.model), 'native', feeds))).toBeGreaterThanOrEqual(method.cosine);
    }
  });

  it('should name a Gemm with alpha ≠ 1 once in dynamic mode, with alpha as the reason, and no advice about convolutions', () => {
    const { notices } = quantizeDynamic(modelOf('pytorch-linear'));
    const aboutFc2 = notices.filter((n) => n.includes('/fc2/Gemm'));
    expect(aboutFc2).toHaveLength(1);
    expect(aboutFc2[0]).toMatch(/alpha/);
    expect(aboutFc2[0]).not.toMatch(/convolution/);
  });

  it('should rewrite transB Gemms into MatMuls over [in, out] int8 weights in dynamic mode', () => {
    const q = quantizeDynamic(modelOf('gelu-erf')).model;
    const ops = q.graph!.node!.map((n) => n.op_type);
    expect(ops).not.toContain('Gemm');
    expect(ops.filter((o) => o === 'MatMulInteger')).toHaveLength(2);
    // fc1.weight [32, 16] is transposed to [16, 32]: one scale per output feature.
    const integer = node(q, (n) => n.op_type === 'MatMulInteger');
    const w = q.graph!.initializer!.find((t) => t.name === integer.input![1])!;
    expect(tensorDims(w)).toEqual([16, 32]);
  });
});

describe('quantizeModel', () => {
  it('should make the same bytes as the method it stands for', async () => {
    const model = modelOf('cnn2d');
    const viaEntry = await quantizeModel({ model, to: 'fp8-e4m3', blockSize: BLOCK_SIZE });
    expect(Buffer.compare(encodeModel(viaEntry.model), encodeModel(quantizeWeightsOnly(model, { format: 'e4m3fn', blockSize: BLOCK_SIZE }).model))).toBe(0);
    expect(viaEntry.method).toMatch(/per block of 8/);
    const dynamic = await quantizeModel({ model, to: 'int8-dynamic' });
    expect(Buffer.compare(encodeModel(dynamic.model), encodeModel(quantizeDynamic(model).model))).toBe(0);
  });

  it('should refuse static int8 without calibration windows and block sizes for int8', async () => {
    const model = modelOf('cnn2d');
    const f = fixtureNamed('cnn2d');
    expect(isEdgeInferError(await caught(() => quantizeModel({ model, to: 'int8' })), 'E_ARGUMENT')).toBe(true);
    expect(isEdgeInferError(await caught(() => quantizeModel({ model, to: 'int8-dynamic', blockSize: 8 })), 'E_ARGUMENT')).toBe(true);
    const ok = await quantizeModel({ model, to: 'int8', calibration: { windows: calibrationWindows(f), source: 'test', method: 'minmax' } });
    expect(ok.method).toMatch(/minmax/);
  });
});
