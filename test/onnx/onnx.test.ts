import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelSession } from '../../runtime/engine';
import {
  DataType, GraphBuilder, ModelProtoType, decodeModel, elementTypeName, encodeModel, float, floatTensor, graphStats, int64Tensor, irVersionFor,
  makeTensor, metadataOf, opsetList, opsetOf, readModelFile, tensorDims, tensorValues, writeFileAtomic, writeModelFile,
} from '../../runtime/onnx';
import { gemmModel } from '../helpers/models';

describe('decodeModel', () => {
  it('should read back what the builder wrote, with its metadata and opsets', () => {
    const model = decodeModel(gemmModel({ metadata: { owner: 'line 3' } }));
    expect(model.graph?.node?.map((n) => n.op_type)).toEqual(['Gemm', 'Identity']);
    expect(metadataOf(model)).toEqual({ owner: 'line 3' });
    expect(opsetOf(model)).toBe(17);
    expect(opsetList(model)).toEqual([{ domain: 'ai.onnx', version: 17 }]);
  });

  it('should name the source of bytes that are not a model', () => {
    expect(() => decodeModel(new Uint8Array(0), 'a.onnx')).toThrow(/a\.onnx: empty file/);
    expect(() => decodeModel(new TextEncoder().encode('{"not": "onnx"}'), 'b.onnx')).toThrow(/b\.onnx: not (an|a whole) ONNX model/);
  });

  it('should say truncated when the file ends inside a record', () => {
    const bytes = gemmModel();
    expect(() => decodeModel(bytes.subarray(0, bytes.length - 7), 'c.onnx')).toThrow(/c\.onnx: .*truncated/);
  });

  it('should refuse a protobuf that has no graph', () => {
    const bytes = ModelProtoType.encode(ModelProtoType.fromObject({ ir_version: 8, opset_import: [{ domain: '', version: 17 }] })).finish();
    expect(() => decodeModel(bytes, 'd.onnx')).toThrow(/d\.onnx: not an ONNX model \(no graph\)/);
  });
});

describe('tensors', () => {
  it('should read float, int64 and FP8 raw data and typed fields', () => {
    expect(Array.from(tensorValues(floatTensor('w', [2, 2], [1, 2, 3, 4])) as Float32Array)).toEqual([1, 2, 3, 4]);
    expect(Array.from(tensorValues(int64Tensor('s', [2], [0, -1])) as BigInt64Array)).toEqual([0n, -1n]);
    const fp8 = makeTensor('q', DataType.FLOAT8E4M3FN, [3], Uint8Array.from([0x38, 0x40, 0x7e]));
    expect(Array.from(tensorValues(fp8) as Uint8Array)).toEqual([0x38, 0x40, 0x7e]);
    expect(elementTypeName(DataType.FLOAT8E5M2)).toBe('float8e5m2');
    expect(Array.from(tensorValues({ name: 'f', dims: [2], data_type: DataType.FLOAT, float_data: [0.5, 2] }) as Float32Array)).toEqual([0.5, 2]);
    expect(tensorDims({ dims: [3, 4] })).toEqual([3, 4]);
  });

  it('should refuse raw data that does not fill the dims', () => {
    const t = floatTensor('w', [2, 2], [1, 2, 3, 4]);
    expect(() => tensorValues({ ...t, dims: [3, 2] })).toThrow(/tensor 'w' has 16 bytes of raw_data, expected 24 for dims \[3, 2\]/);
    expect(() => tensorValues({ name: 'f', dims: [3], data_type: DataType.FLOAT, float_data: [1] })).toThrow(/tensor 'f' holds 1 values, its dims say 3/);
  });

  it('should refuse tensors whose data lives in another file', () => {
    expect(() => tensorValues({ name: 'big', dims: [1], data_type: DataType.FLOAT, data_location: 1 })).toThrow(/external file/);
  });

  it('should refuse values that do not match the dims or the element width', () => {
    expect(() => makeTensor('w', DataType.FLOAT, [3], new Float32Array(2))).toThrow(/2 values do not fill dims \[3\]/);
    expect(() => makeTensor('w', DataType.FLOAT, [2], new Uint8Array(2))).toThrow(/1-byte elements, float32 takes 4/);
  });
});

describe('GraphBuilder', () => {
  it('should write integer, float, list and tensor attributes with the right types', () => {
    const g = new GraphBuilder('attrs');
    const x = g.input('x', 'float32', ['batch', 4]);
    const y = g.op1('LeakyRelu', [x], { alpha: float(1) });
    const r = g.op1('Reshape', [y, g.int64('shape', [0, 2, 2])]);
    const t = g.op1('Transpose', [r], { perm: [0, 2, 1] });
    g.output(g.op1('Mul', [t, g.scalar('half', 0.5)]), 'float32', ['batch', 2, 2], 'y');
    const node = decodeModel(encodeModel(g.build())).graph!.node!;
    expect(node[0].attribute?.[0]).toMatchObject({ name: 'alpha', type: 1, f: 1 });
    expect(node[2].attribute?.[0]?.ints?.map(Number)).toEqual([0, 2, 1]);
  });

  it('should give shared constants fresh names', () => {
    const g = new GraphBuilder('constants');
    expect(g.scalar('one', 1)).toBe('one');
    expect(g.scalar('one', 1)).not.toBe('one');
  });

  it('should refuse a name used twice, an undefined input and a graph without outputs', () => {
    const g = new GraphBuilder('bad');
    g.input('x', 'float32', [1]);
    expect(() => g.input('x', 'float32', [1])).toThrow(/graph 'bad': the name 'x' is used twice/);
    expect(() => g.op1('Relu', ['nothing'])).toThrow(/Relu reads 'nothing', which nothing defines/);
    expect(() => g.build()).toThrow(/graph 'bad' has no outputs/);
  });

  it('should count operators and parameters, Constant tensors included', () => {
    const g = new GraphBuilder('stats');
    const x = g.input('x', 'float32', ['batch', 2]);
    const c = g.op1('Constant', [], { value: floatTensor('c', [2], [1, 1]) });
    g.output(g.op1('Add', [g.op1('MatMul', [x, g.weight('w', [2, 2], [1, 0, 0, 1])]), c]), 'float32', ['batch', 2], 'y');
    const s = graphStats(g.build());
    expect(s.operators).toEqual({ Constant: 1, MatMul: 1, Add: 1, Identity: 1 });
    expect(s.parameters).toBe(6);
    expect(s.weightBytes).toBe(16);
  });

  it('should count weight bytes at element width whichever field holds the values, subgraph initializers included', () => {
    const g = new GraphBuilder('fields');
    const x = g.input('x', 'float32', ['batch', 3]);
    // Older exporters write float_data and int32_data instead of raw_data.
    const w = g.initializer({ name: 'w', dims: [3, 2], data_type: DataType.FLOAT, float_data: [1, 2, 3, 4, 5, 6] });
    const codes = g.initializer({ name: 'codes', dims: [4], data_type: DataType.INT8, int32_data: [1, -2, 3, -4] });
    const raw = g.initializer(floatTensor('raw', [2], [0.5, 0.25]));
    const branch = { name: 'then', node: [{ op_type: 'Identity', input: ['inner'], output: ['then_out'] }], initializer: [int64Tensor('inner', [3], [1, 2, 3])], output: [] };
    const y = g.op1('Add', [g.op1('MatMul', [x, w]), raw]);
    g.op1('Cast', [codes], { to: DataType.FLOAT });
    g.op1('If', [g.op1('Greater', [g.op1('ReduceSum', [y], { keepdims: 0 }), g.scalar('zero', 0)])], { then_branch: { graph: branch }, else_branch: { graph: branch } });
    g.output(y, 'float32', ['batch', 2], 'y');
    const s = graphStats(decodeModel(encodeModel(g.build())));
    // w 6 × 4, codes 4 × 1, raw 2 × 4, zero 1 × 4, and the branch's int64 [3] twice (both branches) 2 × 3 × 8.
    expect(s.weightBytes).toBe(24 + 4 + 8 + 4 + 48);
    expect(s.parameters).toBe(6 + 4 + 2 + 1 + 6);
  });
});

describe('irVersionFor', () => {
  it("should give each opset the IR version of the ONNX release that introduced it", () => {
    const expected: Record<number, number> = { 1: 3, 8: 3, 9: 4, 10: 5, 11: 6, 12: 7, 14: 7, 15: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10, 23: 11 };
    for (const [opset, ir] of Object.entries(expected)) expect(irVersionFor(Number(opset)), `opset ${opset}`).toBe(ir);
    expect(() => irVersionFor(24)).toThrow(/opsets 1 to 23/);
    expect(() => irVersionFor(0)).toThrow(/opsets 1 to 23/);
  });

  it('should write models that onnxruntime-web and onnxruntime-node load and run at every opset the quantizer writes', async () => {
    for (const opset of [11, 12, 13, 14, 15, 17, 18, 19, 20, 21]) {
      const g = new GraphBuilder(`opset${opset}`);
      const x = g.input('x', 'float32', ['batch', 2]);
      g.output(g.op1('Relu', [g.op1('Add', [x, g.scalar('one', 1)])]), 'float32', ['batch', 2], 'y');
      const bytes = encodeModel(g.build({ opsets: { '': opset } }));
      for (const backend of ['wasm', 'native'] as const) {
        const session = await ModelSession.load(bytes, { backend, name: `opset ${opset}`, warmupRuns: 0, threads: 1 });
        try {
          const { outputs } = await session.run({ x: { type: 'float32', data: Float32Array.of(-3, 0.5), dims: [1, 2] } });
          expect(Array.from(outputs.y.data as Float32Array), `opset ${opset} on ${backend}`).toEqual([0, 1.5]);
        } finally {
          await session.dispose();
        }
      }
    }
  });
});

describe('model files', () => {
  it('should write atomically and read back, leaving no temporary file', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edge-infer-onnx-'));
    const file = path.join(dir, 'm.onnx');
    const bytes = await writeModelFile(file, decodeModel(gemmModel()));
    const { model } = await readModelFile(file);
    expect(Buffer.from(encodeModel(model)).equals(Buffer.from(bytes))).toBe(true);
    expect(await fs.readdir(dir)).toEqual(['m.onnx']);
    await fs.rm(dir, { recursive: true });
  });

  it('should name a file that cannot be written or read', async () => {
    await expect(writeFileAtomic('/nonexistent-dir/m.onnx', 'x')).rejects.toThrow(/\/nonexistent-dir\/m\.onnx: cannot write \(ENOENT\)/);
    await expect(readModelFile('/nonexistent-dir/m.onnx')).rejects.toThrow(/cannot read \(ENOENT\)/);
  });
});

describe('tensors read from a decoded file', () => {
  it('should read exactly the tensor bytes, not the whole buffer they were decoded from', () => {
    const model = decodeModel(Buffer.from(gemmModel()));
    const w = model.graph!.initializer!.find((t) => t.name === 'w')!;
    expect(Array.from(tensorValues(w) as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});
