// Chart benchmark: ResultStore.chart() over long ranges, as the dashboard asks for them, read
// from the rollups (what chart() picks) against the same buckets folded from the raw results, in
// one run. Goals: a 7-day chart of one machine at one result a second (604,800 rows) in ≤ 50 ms;
// a 30-day chart with 10.4 M rows in the file (4 machines × 30 days at 1/s) in ≤ 200 ms.
// The logs are built by ./history.ts at schema version 8; opening them runs migration 9, which
// fills the rollups from the results (its time is printed too).
// Run: npx tsx test/bench/series.bench.ts   (or: npm run bench series)
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ResultStore, type SeriesSource } from '../../runtime/store';
import { DAY, HISTORY_T0, buildHistory } from './history';
import { fmt, int, machine, median, table } from './table';

const RUNS = 7;
const RAW_RUNS = 3;

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
      const b = buildHistory(log.file, log.devices, log.days);
      builds.push(`${log.name}: ${int(b.rows)} rows built in ${fmt(b.buildMs / 1000, 1)} s (one transaction, one prepared statement); migration 9 filled the rollups in ${fmt(b.migrateMs / 1000, 1)} s`);
      const store = ResultStore.open({ path: log.file });
      try {
        const end = HISTORY_T0 + log.days * DAY - 1;
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
