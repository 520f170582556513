// Low-bit variants against fp32, measured side by side in one run:
//  1. file sizes against fp32 and against an fp16 export of the same model;
//  2. throughput at batch 32 on WASM (and native): int8 static, int8 dynamic, FP8 compact and fast;
//  3. which onnxruntime kernels the quantized graphs reach (integer kernels or not);
//  4. resident memory of FP8 loaded compact vs fast vs fp32, in fresh processes.
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ortNode from 'onnxruntime-node';
import { type BackendName, ModelSession, availableBackends, benchmarkSideBySide } from '../../runtime/engine';
import { ModelRegistry } from '../../runtime/model';
import { GraphBuilder, decodeModel, encodeModel, graphStats, readModelFile } from '../../runtime/onnx';
import { bundledModelsDir } from '../../runtime/paths';
import { float16Export, loadOptionsFor, quantizeWeightsOnly } from '../../runtime/quant';
import { fmt, int, machine, table } from './table';

const pct = (a: number, b: number): string => `${((a / b) * 100).toFixed(1)} %`;

/** Op types onnxruntime actually runs after its graph optimizations (native CPU build; the WASM build runs the same CPU kernels). */
async function optimizedOps(bytes: Uint8Array): Promise<Record<string, number>> {
  const file = path.join(os.tmpdir(), `edge-infer-opt-${process.pid}-${Date.now()}.onnx`);
  const s = await ortNode.InferenceSession.create(bytes, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', optimizedModelFilePath: file, logSeverityLevel: 3 } as ortNode.InferenceSession.SessionOptions);
  await s.release();
  const { model } = await readModelFile(file);
  await fs.rm(file, { force: true });
  return graphStats(model).operators;
}

const INTEGER_KERNELS = /QGemm|QLinear|MatMulInteger|DynamicQuantizeMatMul|ConvInteger|MatMulIntegerToFloat/;

async function main(): Promise<void> {
  const registry = await ModelRegistry.open(bundledModelsDir(), { watch: false });
  const models = registry.models();
  await registry.close();

  // 1. Sizes.
  const sizeRows: Array<Array<string | number>> = [];
  for (const m of models) {
    const fp32 = m.variants.find((v) => v.variant === 'fp32')!;
    const fp16 = encodeModel(float16Export((await readModelFile(fp32.file)).model)).length;
    for (const v of m.variants) sizeRows.push([m.id, v.variant, int(v.sizeBytes), pct(v.sizeBytes, fp32.sizeBytes), pct(v.sizeBytes, fp16)]);
    sizeRows.push([m.id, 'fp16 export', int(fp16), pct(fp16, fp32.sizeBytes), '100.0 %']);
  }
  console.log('File sizes (goal: int8 and FP8 ≤ 27 % of fp32 and ≤ 52 % of fp16)\n');
  console.log(table(['model', 'variant', 'bytes', 'of fp32', 'of fp16'], sizeRows));

  // 2. Throughput, side by side.
  const backends: BackendName[] = availableBackends().includes('native') ? ['wasm', 'native'] : ['wasm'];
  const speedRows: Array<Array<string | number>> = [];
  for (const backend of backends) {
    for (const m of models) {
      const contenders: Array<{ name: string; file: string; fast?: boolean }> = [];
      for (const v of m.variants) {
        contenders.push({ name: v.variant, file: v.file });
        if (v.precision.startsWith('fp8')) contenders.push({ name: `${v.variant} fast`, file: v.file, fast: true });
      }
      const sessions = await Promise.all(contenders.map((c) => ModelSession.load(c.file, { backend, threads: 1, ...loadOptionsFor(c.name.split(' ')[0], c.fast ? 'fast' : 'compact') })));
      const r = await benchmarkSideBySide(sessions, { batch: 32, rounds: 7, runsPerTurn: 10, warmupMs: 1000 });
      const base = r[contenders.findIndex((c) => c.name === 'fp32')].windowsPerSecond;
      contenders.forEach((c, i) => speedRows.push([backend, m.id, c.name, int(r[i].windowsPerSecond), `${fmt(r[i].windowsPerSecond / base)}×`]));
      for (const s of sessions) await s.dispose();
    }
  }
  console.log('\nThroughput at batch 32, 1 thread (goal: best int8 ≥ 2× fp32 on WASM for the classifier and the transformer; FP8 fast within 5 % of fp32)\n');
  console.log(table(['backend', 'model', 'variant', 'windows/s', 'vs fp32'], speedRows));

  // 3. Kernels reached.
  const kernelRows: Array<Array<string | number>> = [];
  for (const m of models) {
    for (const v of m.variants) {
      const ops = await optimizedOps(await fs.readFile(v.file));
      const integer = Object.entries(ops).filter(([op]) => INTEGER_KERNELS.test(op)).map(([op, n]) => `${op.replace('com.microsoft.', '')}×${n}`);
      kernelRows.push([m.id, v.variant, integer.join(' ') || '— (fp32 kernels)']);
    }
  }
  console.log('\nInteger kernels in the graph onnxruntime runs (after its optimizations)\n');
  console.log(table(['model', 'variant', 'integer kernels'], kernelRows));

  // 4. Memory: a model big enough for its weights to dominate a process's resident size.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edge-infer-mem-'));
  const g = new GraphBuilder('memory-probe');
  let h = g.input('x', 'float32', ['batch', 2048]);
  const n = 2048 * 2048;
  for (let l = 0; l < 4; l++) h = g.op1('Relu', [g.op1('MatMul', [h, g.weight(`w${l}`, [2048, 2048], Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + l) * 0.02))])]);
  g.output(h, 'float32', ['batch', 2048], 'y');
  const fp32 = g.build();
  await fs.writeFile(path.join(dir, 'fp32.onnx'), encodeModel(fp32));
  await fs.writeFile(path.join(dir, 'fp8.onnx'), encodeModel(quantizeWeightsOnly(decodeModel(encodeModel(fp32)), { format: 'e4m3fn' }).model));
  const probe = path.join(__dirname, 'memory-probe.ts');
  const memRows: Array<Array<string | number>> = [];
  for (const backend of backends) {
    const measure = (file: string, mode: string): { rssMb: number; ms: number } =>
      JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', probe, file, file.endsWith('fp8.onnx') ? 'fp8-e4m3' : 'fp32', mode, backend], { encoding: 'utf8' }).trim().split('\n').pop()!);
    const base = measure(path.join(dir, 'fp32.onnx'), 'compact');
    const compact = measure(path.join(dir, 'fp8.onnx'), 'compact');
    const fast = measure(path.join(dir, 'fp8.onnx'), 'fast');
    memRows.push([backend, 'fp32', fmt(base.rssMb, 1), '100.0 %', fmt(base.ms, 2)]);
    memRows.push([backend, 'fp8-e4m3 compact', fmt(compact.rssMb, 1), pct(compact.rssMb, base.rssMb), fmt(compact.ms, 2)]);
    memRows.push([backend, 'fp8-e4m3 fast', fmt(fast.rssMb, 1), pct(fast.rssMb, base.rssMb), fmt(fast.ms, 2)]);
  }
  await fs.rm(dir, { recursive: true, force: true });
  console.log(`\nResident memory added by loading a 4 × 2048 × 2048 MLP (${int(4 * n)} weights, ${fmt((16 * n) / 1e6, 1)} MB in fp32), fresh process each (goal: compact ≤ 30 % of fp32)\n`);
  console.log(table(['backend', 'variant', 'MB resident', 'of fp32', 'ms per window'], memRows));
  console.log(`\n${machine()}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
