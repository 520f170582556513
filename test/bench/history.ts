// A long history for the chart benchmarks: machines at one result a second for days, built the
// fast way (one transaction, one prepared statement) at schema version 8; opening the file with
// the store runs the later migrations, 9 filling the rollups from the results.
import Database from 'better-sqlite3';
import { ResultStore } from '../../runtime/store';
import { MIGRATIONS, migrate } from '../../runtime/store/schema';

export const DAY = 86_400_000;
/** The history's first second: a whole number of days since the epoch. */
export const HISTORY_T0 = 1_700_006_400_000;
/** The model the history's results are of, and its machines' names. */
export const HISTORY_MODEL = 'fault-classifier';
export const historyDevice = (d: number): string => `press-${d}`;

/** Builds the log: `devices` machines (press-0, press-1, …) at one result a second for `days` days from HISTORY_T0. */
export function buildHistory(file: string, devices: number, days: number): { rows: number; buildMs: number; migrateMs: number } {
  const t0 = performance.now();
  const db = new Database(file);
  migrate(db, file, MIGRATIONS.slice(0, 8));
  db.pragma('synchronous = OFF');
  const insert = db.prepare(`INSERT INTO results (time_ms, device, model, variant, score, label, anomaly, outputs, latency_ms, window_start_ms, window_end_ms, message_keys, processed_ms)
    VALUES (?, ?, '${HISTORY_MODEL}', 'int8', ?, ?, ?, '{"probabilities":[0.9,0.1]}', 1.5, ?, ?, '["k"]', ?)`);
  const seconds = (days * DAY) / 1000;
  let rows = 0;
  db.transaction(() => {
    for (let s = 0; s < seconds; s++) {
      const t = HISTORY_T0 + s * 1000;
      for (let d = 0; d < devices; d++) {
        // A slow wave with noise, and now and then a one-sample fault.
        const fault = (s * 31 + d * 7) % 50_021 === 0;
        const score = fault ? 0.97 : 0.3 + 0.1 * Math.sin(s / 3600) + ((s * 7919 + d) % 1000) / 10_000;
        insert.run(t, historyDevice(d), score, fault ? 'bearing' : 'normal', fault ? 1 : 0, t - 1000, t, t + 3);
        rows++;
      }
    }
    for (let d = 0; d < devices; d++) db.prepare(`INSERT INTO result_streams VALUES (?, '${HISTORY_MODEL}')`).run(historyDevice(d));
  })();
  db.close();
  const built = performance.now();
  ResultStore.open({ path: file }).close(); // migrations 9 and on: the rollups from the results
  return { rows, buildMs: built - t0, migrateMs: performance.now() - built };
}
