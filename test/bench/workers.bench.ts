// The windowing, features-and-inference stage alone, side by side in one run: 8 devices' messages
// of 512 samples in turn, windowed on the main thread, the windows of the anomaly model (three
// 2048-point spectra each, then the model) made through the main thread and through worker pools
// of 1 and 2 threads, batches of 64 windows, rounds alternated. It tells what the pool gives the
// stage on this machine, apart from MQTT and SQLite on the main thread.
// Run: npx tsx test/bench/workers.bench.ts
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ModelSession } from '../../runtime/engine';
import { type ModelCard, parseCard } from '../../runtime/model';
import { DeviceWindows, WorkerPool } from '../../runtime/stream';
import { Scheduler } from '../../runtime/stream/scheduler';
import { fmt, int, machine, table } from './table';

const MODEL = path.join(__dirname, '../../models/vibration-anomaly/vibration-anomaly.fp32.onnx');
const card: ModelCard = parseCard(JSON.parse(readFileSync(MODEL.replace(/\.onnx$/, '.model.json'), 'utf8')));
const WINDOWS = 1536;
const ROUNDS = 5;
/** CPU time of the whole process (every thread) per window, µs, per pool (undefined: the main thread). */
const cpuPerWindow = new Map<WorkerPool | undefined, number[]>();

/**
 * Each device's samples, made once before any round: a test signal is not the stage's work. (Made
 * inside the timed part, its 4.7 million sines took 300 ms of a round's 475, and hid what the
 * second thread gives.)
 */
const signals: Array<Record<string, Float32Array>> = Array.from({ length: 8 }, (_, d) => {
  const n = card.input.window + (WINDOWS / 8 - 1) * card.input.hop!;
  const channels: Record<string, Float32Array> = {};
  card.input.channels.forEach((c, k) => (channels[c.name] = Float32Array.from({ length: n }, (_, i) => 0.1 * Math.sin((2 * Math.PI * (24.6 + d + k) * i) / card.input.sampleRate))));
  return channels;
});

/** Samples per message, as the demo plant publishes its vibration. */
const BLOCK = 512;

/**
 * Windows per second through a scheduler (batches of 64) on `pool`, or on this thread. The
 * devices' messages come in turn, as from a broker: each is windowed on this thread (and, without
 * a pool, its windows' features made here), its windows submitted at once, and the event loop
 * turns between messages, so the threads work while this one windows the next messages.
 */
async function rate(session: ModelSession, pool: WorkerPool | undefined): Promise<number> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let done = 0;
  const scheduler = new Scheduler(session, card, async (results) => void (done += results.length), { maxBatch: 64, maxWaitMs: 5, maxQueue: 4096, policy: 'pause', pool: pool && { pool, input: card.input } });
  const devices = signals.map(() => new DeviceWindows(card, { deferFeatures: pool !== undefined }));
  const length = signals[0][card.input.channels[0].name].length;
  const T0 = 1_700_000_000_000;
  let made = 0;
  for (let at = 0; at < length; at += BLOCK) {
    const timestampMs = T0 + (at / card.input.sampleRate) * 1000;
    for (const [d, w] of devices.entries()) {
      const channels = Object.fromEntries(Object.entries(signals[d]).map(([name, x]) => [name, x.subarray(at, at + BLOCK)]));
      const { windows } = w.push(`m${d}`, { device: `m${d}`, channels, timestampMs }, `k${d}-${at}`, timestampMs);
      if (windows.length) {
        made += windows.length;
        await scheduler.room();
        scheduler.submit(windows);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  await scheduler.close();
  if (done !== made || made !== WINDOWS) throw new Error(`${done} of ${made} windows delivered, ${WINDOWS} expected`);
  const cpu = process.cpuUsage(cpu0);
  cpuPerWindow.get(pool)!.push((cpu.user + cpu.system) / made);
  return made / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const session = await ModelSession.load(MODEL, { backend: 'wasm', threads: 1 });
  const pools = [new WorkerPool({ size: 1 }), new WorkerPool({ size: 2 })];
  for (const p of pools) await p.prepare(session, { input: card.input, dims: new DeviceWindows(card).dims, windows: 64 });
  for (const p of [undefined, ...pools]) cpuPerWindow.set(p, []);
  const rates: number[][] = [[], [], []];
  try {
    await rate(session, undefined); // warm-up of this thread's paths
    for (let r = 0; r < ROUNDS; r++) {
      rates[0].push(await rate(session, undefined));
      rates[1].push(await rate(session, pools[0]));
      rates[2].push(await rate(session, pools[1]));
    }
  } finally {
    for (const p of pools) await p.close();
    await session.dispose();
  }
  const best = rates.map((r) => Math.max(...r));
  const cpu = [undefined, ...pools].map((p) => Math.min(...cpuPerWindow.get(p)!.slice(-ROUNDS)));
  console.log(`8 devices' messages of ${BLOCK} samples windowed in turn, then features (3 × 2048-point spectra) and inference of ${int(WINDOWS)} windows of vibration-anomaly fp32, batches of 64, best of ${ROUNDS} alternated rounds\n`);
  console.log(table(['where', 'windows/s', 'vs main thread', 'every round', 'CPU µs per window (all threads)'], [
    ['main thread (workers 0)', int(best[0]), '1.00', rates[0].map(int).join(', '), int(cpu[0])],
    ['worker pool, 1 thread', int(best[1]), fmt(best[1] / best[0]), rates[1].map(int).join(', '), int(cpu[1])],
    ['worker pool, 2 threads', int(best[2]), fmt(best[2] / best[0]), rates[2].map(int).join(', '), int(cpu[2])],
  ]));
  console.log(`\n${machine()}; load average at the end ${os.loadavg().map((x) => x.toFixed(1)).join(', ')}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
