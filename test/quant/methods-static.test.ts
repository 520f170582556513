// Static int8 (QDQ, calibrated with minmax, percentile and entropy) on the graph patterns
// PyTorch's and TensorFlow's exporters write.
import { describe, expect, it } from 'vitest';
import { DataType, decodeModel } from '../../runtime/onnx';
import { quantizeStatic } from '../../runtime/quant';
import { fixtureNamed } from '../helpers/exporter-fixtures';
import { STATIC_METHODS, calibrationWindows, constantBehind } from './harness';
import { describeMethodMatrix } from './matrix';

describe('static int8 quantization of exporter graphs', () => {
  describeMethodMatrix(STATIC_METHODS);
});

describe('static int8 on exporter patterns', () => {
  it('should calibrate only the float activations of a dynamic flatten, not its int64 Shape → Gather → Unsqueeze → Concat chain', async () => {
    const f = fixtureNamed('pytorch-flatten-view');
    const model = decodeModel(f.bytes());
    const int64 = new Set(model.graph!.node!.filter((n) => ['Shape', 'Gather', 'Unsqueeze', 'Concat', 'Constant'].includes(n.op_type!)).flatMap((n) => n.output!));
    const out = await quantizeStatic(model, { windows: calibrationWindows(f), method: 'minmax' });
    expect([...out.ranges.keys()].filter((t) => int64.has(t))).toEqual([]);
    // Every QuantizeLinear reads a float tensor: none sits on the shape chain.
    const quantized = out.model.graph!.node!.filter((n) => n.op_type === 'QuantizeLinear').map((n) => n.input![0]);
    expect(quantized.filter((t) => int64.has(t))).toEqual([]);
  });

  it('should quantize both activations of the attention score MatMuls and not call them fp32 in a notice', async () => {
    const f = fixtureNamed('attention');
    const out = await quantizeStatic(decodeModel(f.bytes()), { windows: calibrationWindows(f), method: 'minmax' });
    const scores = out.model.graph!.node!.find((n) => n.name === '/attn/MatMul')!;
    const producers = scores.input!.map((i) => out.model.graph!.node!.find((n) => n.output?.includes(i))?.op_type);
    expect(producers).toEqual(['DequantizeLinear', 'DequantizeLinear']);
    expect(out.notices.filter((n) => /'\/attn\/MatMul(_1)?' stays fp32/.test(n))).toEqual([]);
  });

  it('should store Gemm and Conv biases as int32 codes on the input scale × weight scale, the scale computed, not stored', async () => {
    const f = fixtureNamed('cnn1d-keras');
    const out = await quantizeStatic(decodeModel(f.bytes()), { windows: calibrationWindows(f), method: 'minmax' });
    const nodes = out.model.graph!.node!;
    const producer = (t: string) => nodes.find((n) => n.output?.includes(t));
    const readers = nodes.filter((n) => (n.op_type === 'Conv' || n.op_type === 'Gemm') && n.input![2]);
    expect(readers).toHaveLength(3);
    for (const node of readers) {
      const dq = producer(node.input![2])!;
      expect(dq.op_type, node.name!).toBe('DequantizeLinear');
      // Codes: int32 as the kernels read them (int16 behind a Cast where that saves bytes: narrowInt32Codes).
      const codes = constantBehind(out.model, dq.input![0])!;
      expect(codes.dataType, node.name!).toBe(DataType.INT32);
      expect([DataType.INT16, DataType.INT32]).toContain(codes.storedAs);
      // Scale: a Mul of the input's scale (its DequantizeLinear's) and the weight's.
      const mul = producer(dq.input![1])!;
      expect(mul.op_type).toBe('Mul');
      expect(new Set(mul.input)).toEqual(new Set([producer(node.input![0])!.input![1], producer(node.input![1])!.input![1]]));
      // No zero point: int32 bias codes are symmetric.
      expect(dq.input).toHaveLength(2);
    }
    // The fp32 biases are gone.
    const names = new Set(out.model.graph!.initializer!.map((t) => t.name));
    for (const bias of ['conv1d/bias', 'conv1d_1/bias', 'dense.bias']) expect(names.has(bias), `${bias} still fp32`).toBe(false);
    // That onnxruntime still runs them as QLinearConv and QGemm: kernels.test.ts.
  });
});
