// `edge-infer bench <model>`: latency percentiles and throughput on synthetic windows.
import { type Command, Option } from 'commander';
import { type BackendChoice, ModelSession, benchmarkSession } from '../engine';
import { backendOption, nonNegativeNumber, positiveNumber, threadsOption, wholeNumber } from './options';
import { print, printJson, rows, thousands } from './output';

interface BenchOptions {
  batch: number;
  threads: number;
  backend: BackendChoice;
  seconds: number;
  warmup: number;
  runs?: number;
  json?: boolean;
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('measure latency (p50, p99) and throughput of a model on synthetic windows')
    .argument('<model>', 'an .onnx file')
    .addOption(new Option('--batch <n>', 'windows per run').argParser(wholeNumber(1, 4096)).default(1))
    .addOption(threadsOption())
    .addOption(backendOption())
    .addOption(new Option('--seconds <s>', 'how long to measure').argParser(positiveNumber).default(3))
    // Steady state: V8 optimizes onnxruntime's WebAssembly kernels only once they have run hot.
    .addOption(new Option('--warmup <s>', 'untimed runs for this long first').argParser(nonNegativeNumber).default(1))
    .addOption(new Option('--runs <n>', 'exactly this many timed runs instead of --seconds').argParser(wholeNumber(1)))
    .option('--json', 'print the result as JSON')
    .action(async (model: string, opts: BenchOptions) => {
      const session = await ModelSession.load(model, { backend: opts.backend, threads: opts.threads, warmupRuns: 0 });
      try {
        const r = await benchmarkSession(session, { batch: opts.batch, seconds: opts.seconds, runs: opts.runs, warmupMs: opts.warmup * 1000 });
        const summary = { model, backend: session.backend, threads: session.threads, warmupS: opts.warmup, ...r };
        if (opts.json) return printJson(summary);
        for (const line of rows([
          ['model', `${model} (${session.backend}, ${session.threads} thread${session.threads > 1 ? 's' : ''})`],
          ['batch', r.batch === opts.batch ? String(r.batch) : `${r.batch} (the model has no dynamic batch axis)`],
          ['runs', thousands(r.runs)],
          ['latency', `p50 ${r.p50Ms.toFixed(3)} ms   p99 ${r.p99Ms.toFixed(3)} ms   mean ${r.meanMs.toFixed(3)} ms per run`],
          ['throughput', `${thousands(r.windowsPerSecond)} windows/s`],
        ])) print(line);
      } finally {
        await session.dispose();
      }
    });
}
