// What a window costs the main thread, the parts made cheaper, each side by side in one run:
//  1. a window's three 2048-point spectra into band features: a fresh magnitude array per
//     spectrum (as before) against the plan's reused buffer (scratchSpectrum);
//  2. a batch of 64 results into the log's schema: one INSERT per row (the writer's way)
//     against INSERTs of 16 rows, in one transaction each, on a real WAL database file. Tried
//     for the writer and not taken: SQLite re-runs a prepared statement in a transaction faster
//     than it reads a VALUES list of many rows.
// Run: npx tsx test/bench/per-window.bench.ts
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { magnitudeSpectrum, scratchSpectrum } from '../../runtime/stream/spectrum';
import { ResultStore } from '../../runtime/store';
import { fmt, int, machine, median, table } from './table';

const ROUNDS = 7;

/** ops per second of `fn` run `n` times, median of ROUNDS rounds alternated by the caller. */
function time(fn: () => void, n: number): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  return n / ((performance.now() - t0) / 1000);
}

function spectra(): Array<Array<string | number>> {
  const channels = [0, 1, 2].map((k) => Float32Array.from({ length: 2048 }, (_, i) => 0.1 * Math.sin((2 * Math.PI * (24.6 + k) * i) / 5120)));
  const bands = new Float32Array(64);
  // Both sum the spectrum into 64 bands, as the fft-magnitude transform does.
  const fold = (m: Float32Array) => {
    bands.fill(0);
    for (let k = 0; k < m.length; k++) bands[k & 63] += m[k];
  };
  const fresh = () => channels.forEach((c) => fold(magnitudeSpectrum(c, 5120).magnitudes));
  const reused = () => channels.forEach((c) => fold(scratchSpectrum(c, 5120).magnitudes));
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    a.push(time(fresh, 2000));
    b.push(time(reused, 2000));
  }
  return [
    ['a fresh magnitude array per spectrum', int(median(a)), '1.00'],
    ['the plan\'s reused buffer (scratchSpectrum)', int(median(b)), fmt(median(b) / median(a))],
  ];
}

function inserts(): Array<Array<string | number>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-bench-rows-'));
  try {
    // The log's own schema, through the store, then a second connection for the raw statements.
    const file = path.join(dir, 'log.db');
    void ResultStore.open({ path: file }).close();
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    const cols = '(time_ms, device, model, variant, score, label, anomaly, outputs, latency_ms, window_start_ms, window_end_ms, message_keys, processed_ms, rms)';
    const one = db.prepare(`INSERT INTO results ${cols} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const sixteen = db.prepare(`INSERT INTO results ${cols} VALUES ${Array.from({ length: 16 }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`);
    let t = 1_700_000_000_000;
    const row = (): unknown[] => {
      t++;
      return [t, `m${t % 8}`, 'vibration-anomaly', 'fp32', 0.5, null, 0, '{"score":[0.5]}', 1.2, t - 400, t, '["k1","k2"]', t, 0.07];
    };
    const perRow = db.transaction(() => {
      for (let i = 0; i < 64; i++) one.run(row());
    });
    const perSixteen = db.transaction(() => {
      for (let i = 0; i < 64; i += 16) sixteen.run(Array.from({ length: 16 }, row).flat());
    });
    const a: number[] = [];
    const b: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      a.push(time(perRow, 100) * 64);
      b.push(time(perSixteen, 100) * 64);
    }
    db.close();
    return [
      ['one INSERT per result (the writer)', int(median(a)), '1.00'],
      ['INSERTs of 16 results (tried, not taken)', int(median(b)), fmt(median(b) / median(a))],
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`Spectra of one window (3 channels × 2048 samples) folded into 64 bands, median of ${ROUNDS} alternated rounds\n`);
console.log(table(['how', 'windows/s', 'ratio'], spectra()));
console.log(`\nBatches of 64 results into the log's results table, one transaction each (WAL, synchronous NORMAL), median of ${ROUNDS} alternated rounds\n`);
console.log(table(['how', 'results/s', 'ratio'], inserts()));
console.log(`\n${machine()}; load average at the end ${os.loadavg().map((x) => x.toFixed(1)).join(', ')}`);
