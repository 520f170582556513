// Store benchmark, measured side by side in one run: batched result inserts per second for
// sync off / normal / full at batch sizes 1, 100 and 1000 (goal: ≥ 200,000 rows/s at normal,
// batch 1000), and a pipeline-like unit (inbound key + result + outbox message) for scale.
// Run: npx tsx test/bench/store.bench.ts
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type CommitUnit, type ResultRecord, ResultStore, type SyncMode } from '../../runtime/store';
import { fmt, int, machine, median, table } from './table';

const ROUNDS = 5;
const ROUND_MS = 150;
const DEVICES = 16;

let seq = 0;
function result(): ResultRecord {
  const i = seq++;
  const t = 1_700_000_000_000 + i;
  return {
    timeMs: t, device: `press-${i % DEVICES}`, model: i % 2 ? 'vibration-anomaly' : 'fault-classifier', variant: 'int8',
    score: (i % 997) / 997, label: i % 2 ? null : 'normal', anomaly: i % 97 === 0, outputs: { probabilities: [0.91, 0.05, 0.03, 0.01] },
    latencyMs: 1.7, windowStartMs: t - 1000, windowEndMs: t, messageKeys: [`m-${i}-a`, `m-${i}-b`], rms: 0.5 + (i % 89) / 100,
  };
}
const resultUnit = (): CommitUnit => ({ results: [result()] });
const pipelineUnit = (): CommitUnit => {
  const r = result();
  return { inbound: [{ topic: `plant/${r.device}/vib`, key: `k-${seq}`, receivedMs: r.timeMs }], results: [r], outbox: [{ topic: `edge/${r.device}/score`, payload: JSON.stringify({ s: r.score }), qos: 1 }] };
};

interface Cell {
  label: string;
  sync: SyncMode;
  batch: number;
  unit: () => CommitUnit;
  rowsPerUnit: number;
  store: ResultStore;
  samples: number[];
}

/** Commits units for about ROUND_MS; returns rows committed per second. */
async function round(c: Cell): Promise<number> {
  const pending: Array<Promise<void>> = [];
  let units = 0;
  const t0 = performance.now();
  // The batch fills at `batch` rows and commits inside commit(), so the clock sees every transaction.
  while (performance.now() - t0 < ROUND_MS) {
    for (let i = 0; i < c.batch; i++) pending.push(c.store.commit(c.unit()));
    units += c.batch;
  }
  await c.store.flush();
  await Promise.all(pending);
  return (units * c.rowsPerUnit * 1000) / (performance.now() - t0);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-store-bench-'));
  const cells: Cell[] = [];
  const open = (label: string, sync: SyncMode, batch: number, unit: () => CommitUnit, rowsPerUnit: number): void => {
    const store = ResultStore.open({ path: path.join(dir, `${label}-${sync}-${batch}.db`), sync, batchRows: batch * rowsPerUnit, batchMs: 60_000 });
    cells.push({ label, sync, batch, unit, rowsPerUnit, store, samples: [] });
  };
  for (const batch of [1, 100, 1000]) for (const sync of ['off', 'normal', 'full'] as const) open('result', sync, batch, resultUnit, 1);
  open('inbound + result + outbox', 'normal', 1000, pipelineUnit, 3);
  try {
    for (const c of cells) await round(c); // warm-up
    for (let r = 0; r < ROUNDS; r++) for (const c of cells) c.samples.push(await round(c));
  } finally {
    for (const c of cells) await c.store.close();
    rmSync(dir, { recursive: true, force: true });
  }

  const rate = (c: Cell): number => median(c.samples);
  const normalAt = (batch: number): number => rate(cells.find((c) => c.label === 'result' && c.sync === 'normal' && c.batch === batch)!);
  const rows = cells.map((c) => [c.label, c.sync, `${c.batch} unit(s)`, int(rate(c)), fmt(1e6 / rate(c), 2), c.label === 'result' ? `${fmt(rate(c) / normalAt(c.batch), 2)}×` : '']);
  console.log(`Batched inserts into runtime/store (rows/s, median of ${ROUNDS} rounds of ${ROUND_MS} ms, taking turns; goal ≥ 200,000 rows/s at sync normal, batch 1000)\n`);
  console.log(table(['unit', 'sync', 'batch', 'rows/s', 'µs/row', 'vs normal'], rows));
  console.log(`\n${machine()}; database on ${os.tmpdir()}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
