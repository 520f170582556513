// Chart benchmark: ResultStore.chart() over long ranges, as the dashboard asks for them, read
// from the rollups (what chart() picks) against the same buckets folded from the raw results, in
// one run. Goals: a 7-day chart of one machine at one result a second (604,800 rows) in ≤ 50 ms;
// a 30-day chart with 10.4 M rows in the file (4 machines × 30 days at 1/s) in ≤ 200 ms.
// The logs are built with one transaction and a prepared statement at schema version 8; opening
// them runs migration 9, which fills the rollups from the results (its time is printed too).
// Run: npx tsx test/bench/series.bench.ts   (or: npm run bench series)
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { ResultStore, type SeriesSource } from '../../runtime/store';
import { MIGRATIONS, migrate } from '../../runtime/store/schema';
import { fmt, int, machine, median, table } from './table';

const DAY = 86_400_000;
const T0 = 1_700_006_400_000; // a whole number of days since the epoch
const RUNS = 7;
const RAW_RUNS = 3;

/** Builds a log at schema version 8: `devices` machines at one result a second for `days` days. */
function build(file: string, devices: number, days: number): { rows: number; buildMs: number; migrateMs: number } {
  const t0 = performance.now();
  const db = new Database(file);
  migrate(db, file, MIGRATIONS.slice(0, 8));
  db.pragma('synchronous = OFF');
  const insert = db.prepare(`INSERT INTO results (time_ms, device, model, variant, score, label, anomaly, outputs, latency_ms, window_start_ms, window_end_ms, message_keys, processed_ms)
    VALUES (?, ?, 'fault-classifier', 'int8', ?, ?, ?, '{"probabilities":[0.9,0.1]}', 1.5, ?, ?, '["k"]', ?)`);
  const seconds = (days * DAY) / 1000;
  let rows = 0;
  db.transaction(() => {
    for (let s = 0; s < seconds; s++) {
      const t = T0 + s * 1000;
      for (let d = 0; d < devices; d++) {
        // A slow wave with noise, and now and then a one-sample fault.
        const fault = (s * 31 + d * 7) % 50_021 === 0;
        const score = fault ? 0.97 : 0.3 + 0.1 * Math.sin(s / 3600) + ((s * 7919 + d) % 1000) / 10_000;
        insert.run(t, `press-${d}`, score, fault ? 'bearing' : 'normal', fault ? 1 : 0, t - 1000, t, t + 3);
        rows++;
      }
    }
    for (let d = 0; d < devices; d++) db.prepare(`INSERT INTO result_streams VALUES ('press-${d}', 'fault-classifier')`).run();
  })();
  db.close();
  const built = performance.now();
  ResultStore.open({ path: file }).close(); // migration 9: the rollups from the results
  return { rows, buildMs: built - t0, migrateMs: performance.now() - built };
}

function timeChart(store: ResultStore, q: { fromMs: number; toMs: number; maxPoints: number }, source: SeriesSource | undefined, runs: number): { ms: number; points: number; source: SeriesSource; rows: number } {
  const samples: number[] = [];
  let last = store.chart({ device: 'press-0', model: 'fault-classifier', ...q, source });
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    last = store.chart({ device: 'press-0', model: 'fault-classifier', ...q, source });
    samples.push(performance.now() - t0);
  }
  return { ms: median(samples), points: last.points.length, source: last.source, rows: last.points.reduce((n, p) => n + p.count, 0) };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-series-bench-'));
  const out: Array<Array<string | number>> = [];
  const builds: string[] = [];
  try {
    const logs = [
      { name: '1 machine × 7 days', file: path.join(dir, 'week.db'), devices: 1, days: 7, charts: [{ label: '7 days', span: 7 * DAY, maxPoints: 1000, goal: 50 }, { label: '1 day', span: DAY, maxPoints: 1000, goal: 50 }, { label: '15 min', span: 15 * 60_000, maxPoints: 1000, goal: 50 }] },
      { name: '4 machines × 30 days', file: path.join(dir, 'month.db'), devices: 4, days: 30, charts: [{ label: '30 days', span: 30 * DAY, maxPoints: 1000, goal: 200 }, { label: '30 days', span: 30 * DAY, maxPoints: 500, goal: 200 }, { label: '7 days', span: 7 * DAY, maxPoints: 1000, goal: 200 }] },
    ];
    for (const log of logs) {
      const b = build(log.file, log.devices, log.days);
      builds.push(`${log.name}: ${int(b.rows)} rows built in ${fmt(b.buildMs / 1000, 1)} s (one transaction, one prepared statement); migration 9 filled the rollups in ${fmt(b.migrateMs / 1000, 1)} s`);
      const store = ResultStore.open({ path: log.file });
      try {
        const end = T0 + log.days * DAY - 1;
        for (const c of log.charts) {
          const q = { fromMs: end - c.span + 1, toMs: end, maxPoints: c.maxPoints };
          const auto = timeChart(store, q, undefined, RUNS);
          const raw = auto.source === 'raw' ? auto : timeChart(store, q, 'raw', RAW_RUNS);
          out.push([log.name, c.label, c.maxPoints, int(auto.rows), auto.source, auto.points, fmt(auto.ms, 1), `≤ ${c.goal}`, fmt(raw.ms, 1), auto === raw ? '1.0×' : `${fmt(raw.ms / auto.ms, 0)}×`]);
        }
      } finally {
        await store.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`ResultStore.chart() of one machine (ms, median of ${RUNS} runs; from raw results: median of ${RAW_RUNS})\n`);
  console.log(table(['log', 'range', 'maxPoints', 'results in range', 'source', 'points', 'ms', 'goal ms', 'ms from raw', 'raw / chosen'], out));
  console.log(`\n${builds.join('\n')}\n${machine()}; database on ${os.tmpdir()}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
