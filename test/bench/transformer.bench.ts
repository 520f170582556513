// The example transformer's int8 variants against its fp32 model, measured side by side in one run
// (goal: best int8 ≥ 2× fp32 on WASM at batch 32, 1 thread):
//  1. throughput on WASM and native: fp32, fp32 with the same rewrites, dynamic int8 without and
//     with the rewrites of runtime/quant/fuse, and each rewrite alone on top of dynamic int8;
//  2. the kernels each variant runs on WASM and their share of its time, from onnxruntime's own
//     profile (enableProfiling). onnxruntime-web prints the profile to the process's stdout, so
//     each profile is taken in a child process that hands back a summary.
import { execFileSync } from 'node:child_process';
import { closeSync, promises as fs, openSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type BackendName, ModelSession, availableBackends, syntheticFeeds, timeSideBySide } from '../../runtime/engine';
import { type ModelProto, encodeModel, readModelFile } from '../../runtime/onnx';
import { bundledModelsDir } from '../../runtime/paths';
import { quantizeDynamic, quantizeModel } from '../../runtime/quant';
import { compactFusedBiases, expandLayerNorm, fuseAttention, fuseFastGelu, fuseTransformer } from '../../runtime/quant/fuse';
import { GraphEditor, cloneModel } from '../../runtime/quant/graph';
import { fmt, int, machine, median, table } from './table';

const BATCH = 32;
const ROUNDS = 15;
const RUNS_PER_TURN = 8;

/** Child mode: profile one model on WASM and print {op: [count, µs per run]} as one JSON line. */
async function profileChild(file: string): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ort = require('onnxruntime-web') as typeof import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(await fs.readFile(file), { executionProviders: ['wasm'], graphOptimizationLevel: 'all', enableProfiling: true, logSeverityLevel: 3 });
  const x = new ort.Tensor('float32', Float32Array.from({ length: BATCH * 3 * 1024 }, (_, i) => Math.sin(i * 0.013) + Math.cos(i * 0.0031)), [BATCH, 3, 1024]);
  for (let i = 0; i < 25; i++) await session.run({ vibration: x });
  // The profile goes to stdout, one event per line, between the markers.
  console.log('--profile--');
  session.endProfiling();
  console.log('--end--');
}

/** The op types a model runs on WASM after onnxruntime's optimizations, with counts and median µs per run. */
function profile(file: string): Record<string, { count: number; us: number }> {
  // Into a file, not a pipe: onnxruntime-web writes with writeSync, which a full pipe refuses (EAGAIN).
  const log = `${file}.profile.txt`;
  const fd = openSync(log, 'w');
  try {
    execFileSync(process.execPath, ['--import', 'tsx', __filename, '--profile', file], { stdio: ['ignore', fd, 'inherit'] });
  } finally {
    closeSync(fd);
  }
  const out = readFileSync(log, 'utf8');
  const lines = out.slice(out.indexOf('--profile--'), out.indexOf('--end--')).split('\n');
  const perNode = new Map<string, { op: string; durations: number[] }>();
  for (const line of lines) {
    const json = line.trim().replace(/,$/, '');
    if (!json.startsWith('{"cat" : "Node"')) continue;
    const e = JSON.parse(json) as { name: string; dur: number; args: { op_name?: string } };
    if (!e.name.endsWith('_kernel_time') || !e.args.op_name) continue;
    const entry = perNode.get(e.name) ?? { op: e.args.op_name, durations: [] };
    entry.durations.push(e.dur);
    perNode.set(e.name, entry);
  }
  const ops: Record<string, { count: number; us: number }> = {};
  for (const { op, durations } of perNode.values()) {
    // The first runs pay for first-touch allocations: the median of the last 20 of 25.
    const o = (ops[op] ??= { count: 0, us: 0 });
    o.count++;
    o.us += median(durations.slice(-20));
  }
  return ops;
}

async function main(): Promise<void> {
  const { model: fp32 } = await readModelFile(path.join(bundledModelsDir(), 'fault-transformer', 'fault-transformer.fp32.onnx'));
  const alone = (pass: (e: GraphEditor) => unknown): ModelProto => {
    const editor = new GraphEditor(cloneModel(fp32));
    pass(editor);
    const q = quantizeDynamic(editor.model, { reduceRange: false }).model;
    compactFusedBiases(q);
    return q;
  };
  const variants: Array<{ name: string; model: ModelProto }> = [
    { name: 'fp32', model: fp32 },
    { name: 'fp32, rewritten', model: fuseTransformer(fp32).model },
    { name: 'int8-dynamic, no rewrites', model: (await quantizeModel({ model: fp32, to: 'int8-dynamic', reduceRange: false, fuse: false })).model },
    { name: '+ MultiHeadAttention only', model: alone(fuseAttention) },
    { name: '+ FastGelu only', model: alone(fuseFastGelu) },
    { name: '+ LayerNorm expanded only', model: alone(expandLayerNorm) },
    { name: 'int8-dynamic, all rewrites', model: (await quantizeModel({ model: fp32, to: 'int8-dynamic', reduceRange: false })).model },
  ];
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edge-infer-transformer-'));
  const files = await Promise.all(variants.map(async (v, i) => {
    const file = path.join(dir, `${i}.onnx`);
    await fs.writeFile(file, encodeModel(v.model));
    return file;
  }));

  const sizes = await Promise.all(files.map(async (f) => (await fs.stat(f)).size));

  // 1. Throughput, side by side.
  const backends: BackendName[] = availableBackends().includes('native') ? ['wasm', 'native'] : ['wasm'];
  const rows: Array<Array<string | number>> = [];
  for (const backend of backends) {
    const sessions = await Promise.all(files.map((f, i) => ModelSession.load(f, { backend, threads: 1, name: variants[i].name })));
    const feeds = syntheticFeeds(sessions[0].signature.inputs, BATCH);
    // Beside wall time, the process's CPU time per run: on a loaded machine a run that loses
    // the core waits, which wall time counts and CPU time does not. One thread, so one core's time.
    const cpu = sessions.map(() => [] as number[]);
    const wall = await timeSideBySide(
      sessions.map((s, i) => async () => {
        const c0 = process.cpuUsage();
        await s.run(feeds);
        const d = process.cpuUsage(c0);
        cpu[i].push((d.user + d.system) / 1000);
      }),
      { rounds: ROUNDS, runsPerTurn: RUNS_PER_TURN, warmupMs: 1000 },
    );
    // The timed runs only: the warm-up's come first.
    const cpuMs = cpu.map((c) => median(c.slice(-ROUNDS * RUNS_PER_TURN)));
    variants.forEach((v, i) => rows.push([backend, v.name, int(sizes[i]), int((BATCH * 1000) / wall[i]), `${fmt(wall[0] / wall[i])}×`, `${fmt(wall[2] / wall[i])}×`, `${fmt(cpuMs[0] / cpuMs[i])}×`]));
    for (const s of sessions) await s.dispose();
  }
  console.log(`fault-transformer at batch ${BATCH}, 1 thread, ${ROUNDS} rounds of ${RUNS_PER_TURN} runs each (goal: best int8 ≥ 2× fp32 on WASM)\n`);
  console.log(table(['backend', 'variant', 'bytes', 'windows/s', 'vs fp32', 'vs int8 unrewritten', 'vs fp32, CPU time'], rows));

  // 2. Kernels on WASM, from onnxruntime's profile.
  const kernelRows: Array<Array<string | number>> = [];
  for (const [i, v] of variants.entries()) {
    const ops = profile(files[i]);
    const total = Object.values(ops).reduce((a, o) => a + o.us, 0);
    const listed = Object.entries(ops)
      .sort((a, b) => b[1].us - a[1].us)
      .map(([op, o]) => `${op}×${o.count} ${Math.round((100 * o.us) / total)}%`);
    kernelRows.push([v.name, fmt(total / 1000), listed.join(', ')]);
  }
  console.log(`\nKernels onnxruntime-web runs (after its optimizations) at batch ${BATCH}, with their share of the kernel time (profile, median of 20 runs)\n`);
  console.log(table(['variant', 'kernel ms', 'kernels'], kernelRows));
  await fs.rm(dir, { recursive: true, force: true });
  console.log(`\n${machine()}`);
}

if (process.argv[2] === '--profile') {
  profileChild(process.argv[3]).catch((err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  });
} else {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  });
}
