import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelSession } from '../../runtime/engine';
import { DataType, decodeModel, tensorValues } from '../../runtime/onnx';
import { packageRoot } from '../../runtime/paths';
import { cli, expectOneLine } from '../helpers/cli';
import { fixtureNamed } from '../helpers/exporter-fixtures';
import { gemmModel } from '../helpers/models';

let dir: string;
let gemm: string;
/** A log-mel front end whose input is [batch, samples]. */
let mel: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edge-infer-quantize-'));
  gemm = path.join(dir, 'gemm.onnx');
  await fs.writeFile(gemm, gemmModel());
  mel = path.join(dir, 'mel.onnx');
  await fs.writeFile(mel, fixtureNamed('mel-dynamic-length').bytes());
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

  it('should refuse dynamic int8 of a model with a dynamic input length on one line naming the input, the dimension and --shape, writing nothing', async () => {
    const out = path.join(dir, 'mel.int8.onnx');
    const r = await cli('quantize', mel, '--to', 'int8-dynamic', '-o', out, '--no-html');
    expect(r.code).toBe(1);
    expectOneLine(r.err, /^edge-infer: input 'audio' has a dynamic dimension 'samples' \(axis 1\): give its size with --shape audio=1,<samples>$/);
    await expect(fs.access(out)).rejects.toThrow();
  });

  it('should quantize and check it with --shape, timing it on windows of that length', async () => {
    const out = path.join(dir, 'mel.int8-shaped.onnx');
    const r = await cli('quantize', mel, '--to', 'int8-dynamic', '--shape', 'audio=1,600', '-o', out, '--no-html', '--backend', 'wasm');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/agreement\s+top-1 [\d.]+ %, cosine 0\.99\d+.* on 256 held-out windows/);
    expect(r.out).toMatch(/latency .* per run of 32 windows/);
    expect(graphOps(await fs.readFile(out))).toContain('ConvInteger');
  });

  it('should write weight-only FP8 of that model without --shape, saying why it was not compared with fp32, and the file runs', async () => {
    const out = path.join(dir, 'mel.fp8.onnx');
    const r = await cli('quantize', mel, '--to', 'fp8-e4m3', '-o', out, '--backend', 'wasm');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/size\s+152\.\d kB → \d+\.\d kB \(2\d\.\d % of fp32\)/);
    expect(r.out).toMatch(/agreement\s+not compared with fp32: input 'audio' has a dynamic dimension 'samples' \(axis 1\): give its size with --shape audio=1,<samples>/);
    expect(await fs.readdir(dir)).not.toContain('mel.fp8.report.html');
    const session = await ModelSession.load(await fs.readFile(out), { backend: 'wasm', warmupRuns: 0 });
    try {
      const y = (await session.run({ audio: { type: 'float32', data: Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i / 7)), dims: [1, 1000] } })).outputs.logits;
      expect(y.dims).toEqual([1, 10]);
    } finally {
      await session.dispose();
    }
  });

  it('should refuse a --shape that names no input, does not fit one, or is no number, on one line each', async () => {
    const cases: Array<[string, string, RegExp]> = [
      [mel, 'wav=1,100', /--shape names 'wav', which is not an input of the model \(it takes 'audio'\)/],
      [mel, 'audio=100', /--shape audio=100: input 'audio' has 2 dimensions \[batch, samples\], not 1/],
      [gemm, 'x=1,3', /--shape x=1,3: axis 1 of input 'x' is fixed at 2, not 3/],
      [mel, 'audio=1,-5', /--shape 'audio=1,-5': '-5' is not a whole number ≥ 1/],
    ];
    for (const [model, shape, pattern] of cases) {
      const r = await cli('quantize', model, '--to', 'int8-dynamic', '--shape', shape, '-o', path.join(dir, 'bad.onnx'), '--no-html');
      expect(r.code, shape).toBe(1);
      expectOneLine(r.err, pattern);
    }
  });

  it("should say in its own words, with onnxruntime's reason after, when the model cannot run at the given length", async () => {
    const r = await cli('quantize', mel, '--to', 'int8-dynamic', '--shape', 'audio=1,100', '-o', path.join(dir, 'short.onnx'), '--no-html', '--backend', 'wasm');
    expect(r.code).toBe(1);
    expectOneLine(r.err, /^edge-infer: checking int8-dynamic against fp32: the fp32 model cannot run held-out windows of audio \[100\] \(onnxruntime: Conv node '\/stft\/Conv': Invalid input shape: \{100\}\)$/);
  });

  it("should keep onnxruntime's own log of that failure off the terminal, on both backends (the command as a user runs it)", () => {
    // onnxruntime's C++ logger writes to the process's stderr directly, past what `cli` captures.
    for (const backend of ['wasm', 'native']) {
      const r = spawnSync(process.execPath, [path.join(packageRoot(), 'bin', 'edge-infer.js'), 'quantize', mel, '--to', 'int8-dynamic', '--shape', 'audio=1,100', '-o', path.join(dir, 'short.onnx'), '--no-html', '--backend', backend], { encoding: 'utf8' });
      expect(r.status, backend).toBe(1);
      expectOneLine(r.stderr, /^edge-infer: checking int8-dynamic against fp32: the fp32 model cannot run held-out windows of audio \[100\] \(onnxruntime: Conv node '\/stft\/Conv': Invalid input shape: \{100\}\)$/);
    }
  });
});

function graphOps(bytes: Uint8Array): string[] {
  return (decodeModel(bytes).graph?.node ?? []).map((n) => n.op_type ?? '');
}
