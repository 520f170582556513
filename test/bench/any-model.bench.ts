// "Quantize any exported model": every method of the quantizer on four models as a new user brings
// them (a PyTorch 1-D CNN, a PyTorch transformer encoder, a tf2onnx Keras CNN, a log-mel front end
// with a dynamic input length), measured side by side in one run: the file's size against fp32,
// its agreement with fp32 (worst cosine over both backends) on held-out windows, its throughput
// against fp32 at batch 32 on each backend (timed in turns with fp32, one thread), and the integer
// kernels onnxruntime runs it with.
//
//   npx tsx test/bench/any-model.bench.ts
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ortNode from 'onnxruntime-node';
import { type BackendName, ModelSession, availableBackends, timeSideBySide } from '../../runtime/engine';
import { type ModelProto, decodeModel, encodeModel, graphStats, readModelFile } from '../../runtime/onnx';
import { type QuantizeOutcome, quantizeDynamic, quantizeStatic, quantizeWeightsOnly } from '../../runtime/quant';
import { ANY_MODEL_FIXTURES, type ExporterFixture } from '../helpers/exporter-fixtures';
import { calibrationWindows, heldOutWindows, runOn, stackWindows, worstCosine } from '../quant/harness';
import { fmt, int, machine, table } from './table';

interface Method {
  id: string;
  /** Least cosine with fp32 the goal asks for. */
  goal: number;
  quantize(model: ModelProto, f: ExporterFixture): Promise<QuantizeOutcome>;
}

const METHODS: Method[] = [
  { id: 'int8 dynamic', goal: 0.995, quantize: async (m) => quantizeDynamic(m) },
  { id: 'int8 static QDQ (minmax)', goal: 0.995, quantize: (m, f) => quantizeStatic(m, { windows: calibrationWindows(f), method: 'minmax' }) },
  { id: 'int8 static QDQ (percentile)', goal: 0.995, quantize: (m, f) => quantizeStatic(m, { windows: calibrationWindows(f), method: 'percentile' }) },
  { id: 'int8 weight-only', goal: 0.995, quantize: async (m) => quantizeWeightsOnly(m, { format: 'int8' }) },
  { id: 'fp8 e4m3 weight-only', goal: 0.995, quantize: async (m) => quantizeWeightsOnly(m, { format: 'e4m3fn' }) },
  { id: 'fp8 e4m3 blocks of 32', goal: 0.995, quantize: async (m) => quantizeWeightsOnly(m, { format: 'e4m3fn', blockSize: 32 }) },
  { id: 'fp8 e5m2 weight-only', goal: 0.99, quantize: async (m) => quantizeWeightsOnly(m, { format: 'e5m2' }) },
];

const INTEGER_KERNELS = /QGemm|QLinear|MatMulInteger|DynamicQuantizeMatMul|ConvInteger|MatMulIntegerToFloat/;

/** Share of the fp32 file that is weights of MatMul, Gemm and Conv: over 90 %, the tighter size goal (30 %) applies. */
function weightShare(model: ModelProto, bytes: number): number {
  const graph = model.graph!;
  const weightNames = new Set((graph.node ?? []).filter((n) => ['MatMul', 'Gemm', 'Conv'].includes(n.op_type ?? '')).map((n) => n.input?.[1]));
  const weightBytes = (graph.initializer ?? []).filter((t) => weightNames.has(t.name)).reduce((a, t) => a + (t.raw_data?.length ?? 0), 0);
  return weightBytes / bytes;
}

/** Integer kernels onnxruntime runs after its own graph optimizations (native CPU build). */
async function integerKernels(bytes: Uint8Array): Promise<string> {
  const file = path.join(os.tmpdir(), `edge-infer-any-${process.pid}-${Date.now()}.onnx`);
  const s = await ortNode.InferenceSession.create(bytes, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', optimizedModelFilePath: file, logSeverityLevel: 3 } as ortNode.InferenceSession.SessionOptions);
  await s.release();
  const { model } = await readModelFile(file);
  await fs.rm(file, { force: true });
  const ops = graphStats(model).operators;
  return Object.entries(ops).filter(([op]) => INTEGER_KERNELS.test(op)).map(([op, n]) => `${op.replace('com.microsoft.', '')}×${n}`).join(' ') || '—';
}

async function main(): Promise<void> {
  const backends: BackendName[] = availableBackends().includes('native') ? ['wasm', 'native'] : ['wasm'];
  const rows: Array<Array<string | number>> = [];
  const misses: string[] = [];
  for (const f of ANY_MODEL_FIXTURES) {
    const fp32Bytes = f.bytes();
    const model = decodeModel(fp32Bytes);
    const dominated = weightShare(model, fp32Bytes.length) > 0.9;
    const sizeGoal = dominated ? 0.3 : 0.35;
    const feeds = stackWindows(heldOutWindows(f));
    const reference: Partial<Record<BackendName, Record<string, Float32Array>>> = {};
    for (const b of backends) reference[b] = await runOn(fp32Bytes, b, feeds, `${f.name} fp32`);
    const made: Array<{ id: string; bytes: Uint8Array; goal: number }> = [];
    const refused: Array<Array<string | number>> = [];
    for (const m of METHODS) {
      try {
        made.push({ id: m.id, bytes: encodeModel((await m.quantize(model, f)).model), goal: m.goal });
      } catch (err) {
        refused.push([f.name, m.id, '—', '—', '—', ...backends.map(() => '—'), `refused: ${(err as Error).message.slice(0, 80)}`]);
        misses.push(`${f.name} ${m.id}: refused`);
      }
    }
    // Throughput: every variant and fp32 in turns, on the held-out windows (batch 32).
    const speed: Record<string, number[]> = {};
    for (const b of backends) {
      const sessions = await Promise.all([fp32Bytes, ...made.map((v) => v.bytes)].map((bytes, i) => ModelSession.load(bytes, { backend: b, threads: 1, warmupRuns: 0, name: i === 0 ? 'fp32' : made[i - 1].id })));
      const ms = await timeSideBySide(sessions.map((s) => () => s.run(feeds)), { rounds: 9, runsPerTurn: 5, warmupMs: 500 });
      ms.forEach((t, i) => (speed[i === 0 ? 'fp32' : made[i - 1].id] ??= []).push(ms[0] / t));
      for (const s of sessions) await s.dispose();
    }
    rows.push([f.name, 'fp32', int(fp32Bytes.length), '100.0 %', '1.00000', ...backends.map(() => '1.00×'), `weights ${fmt(weightShare(model, fp32Bytes.length) * 100, 1)} % of the file`]);
    for (const v of made) {
      let cosine = 1;
      for (const b of backends) cosine = Math.min(cosine, worstCosine(reference[b]!, await runOn(v.bytes, b, feeds, `${f.name} ${v.id}`)));
      const share = v.bytes.length / fp32Bytes.length;
      if (cosine < v.goal) misses.push(`${f.name} ${v.id}: cosine ${cosine.toFixed(5)} < ${v.goal}`);
      if (share > sizeGoal) misses.push(`${f.name} ${v.id}: ${fmt(share * 100, 1)} % of fp32 > ${sizeGoal * 100} %`);
      rows.push([f.name, v.id, int(v.bytes.length), `${fmt(share * 100, 1)} %`, cosine.toFixed(5), ...speed[v.id].map((x) => `${fmt(x)}×`), await integerKernels(v.bytes)]);
    }
    rows.push(...refused);
  }
  console.log(`Every method on four exported models: size and worst cosine with fp32 over ${backends.join(' and ')} on 32 held-out windows`);
  console.log('(goal: cosine ≥ 0.995 for int8 and E4M3, ≥ 0.99 for E5M2; size ≤ 35 % of fp32, ≤ 30 % where weights are over 90 % of the file)\n');
  console.log(table(['model', 'method', 'bytes', 'of fp32', 'cosine', ...backends.map((b) => `${b} vs fp32`), 'integer kernels (native, after its optimizations)'], rows));
  console.log(misses.length ? `\nGoals missed:\n${misses.map((m) => `- ${m}`).join('\n')}` : '\nEvery goal met.');
  console.log(`\n${machine()}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
