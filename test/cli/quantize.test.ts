import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelSession } from '../../runtime/engine';
import { DataType, decodeModel, tensorValues } from '../../runtime/onnx';
import { cli, expectOneLine } from '../helpers/cli';
import { gemmModel } from '../helpers/models';

let dir: string;
let gemm: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edge-infer-quantize-'));
  gemm = path.join(dir, 'gemm.onnx');
  await fs.writeFile(gemm, gemmModel());
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});


describe('edge-infer quantize', () => {
  it('should make a dynamic int8 variant of a model without a card, checked on synthetic windows, with 7-bit weights when asked', async () => {
    const out = path.join(dir, 'gemm.int8.onnx');
    const r = await cli('quantize', gemm, '--to', 'int8-dynamic', '--reduce-range', '-o', out, '--backend', 'wasm', '--no-html');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/method\s+dynamic int8: int8 weights within ±64/);
    expect(r.out).toMatch(/agreement\s+top-1 [\d.]+ %.* on 256 held-out windows/);
    expect(r.out).toMatch(/card\s+none written/);
    const model = decodeModel(await fs.readFile(out));
    const codes = model.graph!.initializer!.find((t) => t.data_type === DataType.INT8 && t.dims!.length === 2)!;
    expect(Math.max(...Array.from(tensorValues(codes) as Int8Array, Math.abs))).toBe(64);
    const session = await ModelSession.load(await fs.readFile(out), { backend: 'wasm', warmupRuns: 0 });
    try {
      const y = (await session.run({ x: { type: 'float32', data: Float32Array.of(1, 1), dims: [1, 2] } })).outputs.y.data as Float32Array;
      // y = x · Wᵀ + b = [3, 7, 12], within the rounding of 8-bit activations and 7-bit weights.
      for (const [i, v] of Array.from(y).entries()) expect(Math.abs(v - [3, 7, 12][i])).toBeLessThan(0.15);
    } finally {
      await session.dispose();
    }
    expect(await fs.readdir(dir)).not.toContain('gemm.int8.model.json');
  });

  it('should refuse static int8 of a model without a card or --calibrate on one line, before writing anything', async () => {
    const out = path.join(dir, 'static.onnx');
    const r = await cli('quantize', gemm, '--to', 'int8', '-o', out);
    expect(r.code).toBe(1);
    expectOneLine(r.err, /calibrating on the simulator needs the model card.*--calibrate/);
    await expect(fs.access(out)).rejects.toThrow();
  });

  it('should refuse the reduced weight range for FP8 on one line', async () => {
    const r = await cli('quantize', gemm, '--to', 'fp8-e4m3', '--reduce-range', '-o', path.join(dir, 'fp8.onnx'), '--no-html');
    expect(r.code).toBe(1);
    expectOneLine(r.err, /reduced weight range is for int8 and int8-dynamic, not fp8-e4m3/);
  });
});
