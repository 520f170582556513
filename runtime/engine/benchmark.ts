// Timing a loaded model on synthetic windows: what `edge-infer bench` and the benchmarks report.
import { Random } from '../../devices/random';
import { mean, quantile } from '../stats';
import type { ModelSession } from './session';
import type { TensorSpec } from './signature';
import type { TensorMap } from './tensor';
import { arrayFor, sizeOf } from './tensor';

export interface BenchmarkOptions {
  /** Windows per run, on the dynamic batch axis (default 1). */
  batch?: number;
  /** Exactly this many timed runs (default: as many as fit in `seconds`). */
  runs?: number;
  /** Stop after this much time (default 3 s). */
  seconds?: number;
  /** Untimed runs first (default 3). */
  warmup?: number;
  /** ...and keep warming up until this much time has passed (default 0). */
  warmupMs?: number;
  /** Sizes of other dynamic dimensions, by name (default 1). */
  dims?: Record<string, number>;
}

export interface BenchmarkResult {
  batch: number;
  runs: number;
  /** Per-run latency, milliseconds. */
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** Windows per second (runs × batch / time spent running). */
  windowsPerSecond: number;
}

/**
 * Random inputs of the model's declared shapes, the batch axis set to `batch` where it is
 * dynamic: normal values for float inputs, zeros for the others (indices, masks, raw bits).
 */
export function syntheticFeeds(inputs: readonly TensorSpec[], batch: number, dims: Record<string, number> = {}, seed = 1): TensorMap {
  // Seeded, so that runs are comparable across backends and variants.
  const random = new Random(seed, 'synthetic-feeds');
  const feeds: TensorMap = {};
  for (const spec of inputs) {
    const shape = (spec.shape ?? [batch]).map((d, axis) => (typeof d === 'number' ? d : axis === 0 ? batch : (d !== null && dims[d]) || 1));
    const type = spec.type === 'unknown' ? 'float32' : spec.type;
    const data = arrayFor(type, sizeOf(shape));
    if (data instanceof Float32Array || data instanceof Float64Array) for (let i = 0; i < data.length; i++) data[i] = random.gaussian();
    feeds[spec.name] = { type, data, dims: shape };
  }
  return feeds;
}

/**
 * Untimed runs: at least `runs`, and until `ms` have passed. V8 first compiles WebAssembly with its
 * baseline compiler and optimizes a function only once it has run hot for a while; onnxruntime's
 * kernels of a small model at batch 1 need thousands of runs, not three, to get there.
 */
async function warmUp(run: () => Promise<unknown>, runs: number, ms: number): Promise<void> {
  const until = performance.now() + ms;
  for (let i = 0; i < runs || performance.now() < until; i++) await run();
}

/** Runs the model repeatedly on synthetic inputs and reports latency percentiles and throughput. */
export async function benchmarkSession(session: ModelSession, options: BenchmarkOptions = {}): Promise<BenchmarkResult> {
  // A model without a dynamic batch axis runs one window at a time, whatever was asked for.
  const batch = session.batchable ? (options.batch ?? 1) : 1;
  const feeds = syntheticFeeds(session.signature.inputs, batch, options.dims);
  await warmUp(() => session.run(feeds), options.warmup ?? 3, options.warmupMs ?? 0);
  // A run count, when given, decides alone; otherwise the clock does.
  const deadline = performance.now() + (options.seconds ?? 3) * 1000;
  const maxRuns = options.runs ?? Number.POSITIVE_INFINITY;
  const times: number[] = [];
  while (times.length < maxRuns) {
    times.push((await session.run(feeds)).ms);
    if (options.runs === undefined && performance.now() >= deadline) break;
  }
  const total = times.reduce((a, b) => a + b, 0);
  return {
    batch,
    runs: times.length,
    p50Ms: quantile(times, 0.5),
    p99Ms: quantile(times, 0.99),
    meanMs: mean(times),
    windowsPerSecond: (times.length * batch * 1000) / total,
  };
}

export interface SideBySideOptions {
  batch?: number;
  /** Rounds; in each, every session takes its turn (default 7). */
  rounds?: number;
  /** Runs per turn (default 20). */
  runsPerTurn?: number;
  /** Each session runs untimed at least 3 times and for this long first (default 0). */
  warmupMs?: number;
}

/**
 * Times several ways of running, taking turns round by round, so that whatever else the machine
 * is doing slows them alike; returns each one's median time per run, ms. This is how every
 * speed ratio edge-infer reports is measured.
 */
export async function timeSideBySide(runs: ReadonlyArray<() => Promise<unknown>>, options: Omit<SideBySideOptions, 'batch'> = {}): Promise<number[]> {
  for (const run of runs) await warmUp(run, 3, options.warmupMs ?? 0);
  const samples = runs.map(() => [] as number[]);
  const n = options.runsPerTurn ?? 20;
  for (let r = 0; r < (options.rounds ?? 7); r++) {
    for (let i = 0; i < runs.length; i++) {
      const t0 = performance.now();
      for (let k = 0; k < n; k++) await runs[i]();
      samples[i].push((performance.now() - t0) / n);
    }
  }
  return samples.map((s) => quantile(s, 0.5));
}

/** Times several sessions side by side (see timeSideBySide) on the same synthetic windows. */
export async function benchmarkSideBySide(sessions: readonly ModelSession[], options: SideBySideOptions = {}): Promise<Array<{ msPerRun: number; windowsPerSecond: number }>> {
  const batches = sessions.map((s) => (s.batchable ? (options.batch ?? 1) : 1));
  const feeds = sessions.map((s, i) => syntheticFeeds(s.signature.inputs, batches[i]));
  const ms = await timeSideBySide(
    sessions.map((s, i) => () => s.run(feeds[i])),
    options,
  );
  return ms.map((msPerRun, i) => ({ msPerRun, windowsPerSecond: (batches[i] * 1000) / msPerRun }));
}
