import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { type ResultRecord, type ResultStore } from '../../runtime/store';
import { MIGRATIONS, SCHEMA_VERSION, migrate } from '../../runtime/store/schema';
import { connectionOf, dbPath, openStore, peek, result } from './helpers';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = 1_699_999_200_000; // a whole number of hours since the epoch
const base = { device: 'press-1', model: 'vibration-anomaly' };

async function commitAll(store: ResultStore, records: ResultRecord[], batch = 1000): Promise<void> {
  const pending: Array<Promise<void>> = [];
  for (let i = 0; i < records.length; i += batch) pending.push(store.commit({ results: records.slice(i, i + batch) }));
  await store.flush();
  await Promise.all(pending);
}

describe('migration 10', () => {
  it('should add the alert marks, results.rms and the rollups\' rms columns, keeping the rows of a version 9 file', () => {
    const file = dbPath();
    const db = new Database(file);
    try {
      migrate(db, file, MIGRATIONS.slice(0, 9));
      db.prepare(`INSERT INTO results (time_ms, device, model, variant, score, label, anomaly, outputs, latency_ms, window_start_ms, window_end_ms, message_keys, processed_ms)
        VALUES (?, 'press-1', 'vibration-anomaly', 'int8', 0.7, NULL, 1, '[0.7]', 1.5, ?, ?, '["k1"]', ?)`).run(T0, T0 - 1000, T0, T0 + 3);
      db.prepare(`INSERT INTO result_streams VALUES ('press-1', 'vibration-anomaly')`).run();
      db.prepare(`INSERT INTO result_minutes VALUES ('press-1', 'vibration-anomaly', ?, 1, 0.7, 0.7, 0.7, NULL, 1)`).run(T0);
      db.prepare(`INSERT INTO result_hours VALUES ('press-1', 'vibration-anomaly', ?, 1, 0.7, 0.7, 0.7, NULL, 1)`).run(T0);
      db.prepare(`INSERT INTO alerts (time_ms, device, model, variant, kind, label, score, threshold, message, processed_ms) VALUES (?, 'press-1', 'vibration-anomaly', 'int8', 'anomaly', NULL, 0.7, 0.5, 'over', ?)`).run(T0, T0 + 3);
    } finally {
      db.close();
    }
    const store = openStore({ path: file });
    expect(SCHEMA_VERSION).toBe(MIGRATIONS[MIGRATIONS.length - 1].version);
    expect(connectionOf(store).pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(store.latestPerDevice()).toMatchObject([{ timeMs: T0, score: 0.7, anomaly: true, messageKeys: ['k1'], processedMs: T0 + 3, rms: null }]);
    expect(store.alerts()).toMatchObject([{ kind: 'anomaly', score: 0.7, ackedBy: null, ackedMs: null, clearedBy: null, clearedMs: null }]);
    for (const table of ['result_minutes', 'result_hours']) {
      expect(connectionOf(store).prepare(`SELECT * FROM ${table}`).all()).toEqual([
        { device: 'press-1', model: 'vibration-anomaly', bucket_ms: T0, count: 1, sum: 0.7, min: 0.7, max: 0.7, max_label: null, anomalies: 1, rms_count: 0, rms_sum: null, rms_min: null, rms_max: null },
      ]);
    }
    // The score chart reads the old rows; an RMS chart of them is empty, not an error.
    expect(store.chart({ ...base, fromMs: T0 - HOUR, toMs: T0 + HOUR, maxPoints: 10 }).points).toHaveLength(1);
    expect(store.chart({ ...base, fromMs: T0 - HOUR, toMs: T0 + HOUR, maxPoints: 10, field: 'rms' }).points).toEqual([]);
  });
});

describe('rms in the log', () => {
  it('should store each result\'s RMS, null when it has none, and fold it into the rollups', async () => {
    const store = openStore({ batchMs: 1 });
    await store.commit({ results: [result(T0, { rms: 2 }), result(T0 + 1000, { rms: 4 }), result(T0 + 2000, { rms: null }), result(T0 + 3000)] });
    const rows = connectionOf(store).prepare('SELECT rms FROM results ORDER BY time_ms').pluck().all();
    expect(rows).toEqual([2, 4, null, null]);
    // A later batch touching the same minute: the rollup's rms folds both, and a batch without RMS keeps it.
    await store.commit({ results: [result(T0 + 4000, { rms: 1 })] });
    await store.commit({ results: [result(T0 + 5000)] });
    expect(connectionOf(store).prepare('SELECT count, rms_count, rms_sum, rms_min, rms_max FROM result_minutes').get()).toEqual({ count: 6, rms_count: 3, rms_sum: 7, rms_min: 1, rms_max: 4 });
    expect(connectionOf(store).prepare('SELECT count, rms_count, rms_sum, rms_min, rms_max FROM result_hours').get()).toEqual({ count: 6, rms_count: 3, rms_sum: 7, rms_min: 1, rms_max: 4 });
  });

  it('should reject a unit whose RMS is not a finite number, naming the record, and commit the rest of its batch', async () => {
    const store = openStore({ batchRows: 10_000, batchMs: 60_000 });
    const good = store.commit({ results: [result(T0, { rms: 1.5 })] });
    const bad = store.commit({ results: [result(T0 + 1000, { rms: 1 }), result(T0 + 2000, { rms: Number.NaN })] });
    await store.flush();
    await good;
    await expect(bad).rejects.toThrow('unit not committed: results[1]: rms: expected a finite number or null, got NaN');
    expect(connectionOf(store).prepare('SELECT rms_count, rms_sum FROM result_minutes').get()).toEqual({ rms_count: 1, rms_sum: 1.5 });
  });
});

describe('rms under retention', () => {
  it('should chart the RMS of results retention deleted from the rollups that outlive them', async () => {
    const now = Date.now();
    const store = openStore({ batchMs: 1, retention: { maxAgeDays: 7, minuteRollupDays: 30, hourRollupDays: 90, everyMs: 0 } });
    const at = (daysAgo: number, i: number, rms: number | null) => result(now - daysAgo * DAY + i * 1000, { rms, processedMs: now - daysAgo * DAY });
    await store.commit({ results: [...Array.from({ length: 20 }, (_, i) => at(10, i, i === 7 ? 9 : i % 4 ? 1 : null)), at(1, 0, 2)] });
    expect(store.applyRetention()).toEqual({ deleted: 20 });
    const chart = store.chart({ ...base, fromMs: now - 11 * DAY, toMs: now, maxPoints: 100, field: 'rms' });
    expect(chart.source).toBe('hour');
    // 15 of the 20 old results carried an RMS, and the recent one: from the hour rollups and the raw row.
    expect(chart.points.reduce((n, p) => n + p.count, 0)).toBe(16);
    expect(Math.max(...chart.points.map((p) => p.max))).toBe(9);
  });
});

describe('chart({ field: \'rms\' })', () => {
  it('should chart the raw RMS, skipping results without one, with no labels or anomalies', async () => {
    const store = openStore({ batchMs: 1 });
    await store.commit({ results: Array.from({ length: 10 }, (_, i) => result(T0 + i * 1000, { score: i / 10, label: 'x', anomaly: true, rms: i % 3 === 0 ? null : i })) });
    const c = store.chart({ ...base, fromMs: T0, toMs: T0 + 9000, maxPoints: 6, field: 'rms' });
    expect(c.source).toBe('raw');
    expect(c.points.map((p) => p.timeMs)).toEqual([1, 2, 4, 5, 7, 8].map((i) => T0 + i * 1000));
    expect(c.points[0]).toEqual({ timeMs: T0 + 1000, score: 1, label: null, min: 1, max: 1, mean: 1, count: 1, anomalies: 0 });
    // Five points asked for: the six RMS values are bucketed, each bucket with its min, max and mean.
    const b = store.chart({ ...base, fromMs: T0, toMs: T0 + 9000, maxPoints: 5, field: 'rms' });
    expect(b.bucketMs).toBe(1801);
    expect(b.points.reduce((n, p) => n + p.count, 0)).toBe(6);
    expect(b.points.map((p) => [p.min, p.max])).toEqual([[1, 1], [2, 2], [4, 5], [7, 7], [8, 8]]);
    // The score chart of the same range is unchanged by the RMS.
    expect(store.chart({ ...base, fromMs: T0, toMs: T0 + 9000, maxPoints: 20 }).points).toHaveLength(10);
  });

  it('should count RMS values among a few rows per point only: raw when they fit, buckets past that, none for results without RMS', async () => {
    const store = openStore({ batchMs: 1 });
    // 1,000 results a second apart, every tenth with an RMS; then 5,000 logged before results carried one.
    await store.commit({ results: Array.from({ length: 1000 }, (_, i) => result(T0 + i * 1000, { rms: i % 10 === 0 ? i : null })) });
    await store.commit({ results: Array.from({ length: 5000 }, (_, i) => result(T0 + 2_000_000 + i * 1000, { rms: null })) });
    // 300 points asked for: the 1,000 rows are within 4 × 301, their 100 values fit, raw.
    const fits = store.chart({ ...base, fromMs: T0, toMs: T0 + 999_000, maxPoints: 300, field: 'rms' });
    expect(fits.source).toBe('raw');
    expect(fits.bucketMs).toBe(0);
    expect(fits.points).toHaveLength(100);
    // 100 asked for: more rows than 4 × 101 are not read to count; buckets, every value still in one.
    const bucketed = store.chart({ ...base, fromMs: T0, toMs: T0 + 999_000, maxPoints: 100, field: 'rms' });
    expect(bucketed.bucketMs).toBeGreaterThan(0);
    expect(bucketed.points.length).toBeLessThanOrEqual(100);
    expect(bucketed.points.reduce((n, p) => n + p.count, 0)).toBe(100);
    expect(Math.max(...bucketed.points.map((p) => p.max))).toBe(990);
    // Results without RMS: no points, and no error.
    expect(store.chart({ ...base, fromMs: T0 + 2_000_000, toMs: T0 + 6_999_000, maxPoints: 100, field: 'rms' }).points).toEqual([]);
  });

  it('should give the same RMS buckets from the rollups as from the raw results', async () => {
    const store = openStore({ batchRows: 1000, batchMs: 1 });
    const records = Array.from({ length: 20_000 }, (_, i) => result(T0 + i * 13_000, { rms: i % 4 === 0 ? null : 1 + ((i * 7919) % 1009) / 100 }));
    await commitAll(store, records);
    const range = { ...base, fromMs: T0, toMs: T0 + 72 * HOUR - 1, maxPoints: 36, field: 'rms' as const };
    const raw = store.chart({ ...range, source: 'raw' });
    expect(raw.points).toHaveLength(36);
    for (const source of ['minute', 'hour'] as const) {
      const c = store.chart({ ...range, source });
      expect(c.points.map(({ mean, ...p }) => p)).toEqual(raw.points.map(({ mean, ...p }) => p));
      c.points.forEach((p, i) => expect(p.mean).toBeCloseTo(raw.points[i].mean, 9));
    }
    expect(store.chart({ ...range, source: undefined }).source).toBe('hour');
  });

  it('should refuse a field other than score or rms, naming it', () => {
    const store = openStore();
    expect(() => store.chart({ ...base, fromMs: T0, toMs: T0 + DAY, maxPoints: 100, field: 'temperature' as 'rms' })).toThrow('field: expected one of score, rms, got temperature');
  });

  it('should keep a single-sample RMS spike among 600,000 results (7 days at ~1/s) at every range', async () => {
    const store = openStore({ batchRows: 5000, batchMs: 60_000 });
    const n = 600_000;
    const step = Math.floor((7 * DAY) / n);
    const spike = 234_567;
    const records: ResultRecord[] = [];
    for (let i = 0; i < n; i++) records.push(result(T0 + i * step, { score: 0.4, rms: i === spike ? 42 : 1 + (i % 100) / 1000 }));
    await commitAll(store, records, 5000);
    const middle = T0 + spike * step;
    for (const [span, source] of [[15 * MIN, 'raw'], [6 * HOUR, 'raw'], [2 * DAY, 'minute'], [7 * DAY, 'minute'], [30 * DAY, 'hour']] as const) {
      const c = store.chart({ ...base, fromMs: middle - span / 2, toMs: middle + span / 2, maxPoints: 600, field: 'rms' });
      expect(c.source).toBe(source);
      expect(c.points.length).toBeLessThanOrEqual(600);
      expect(c.points.filter((p) => p.max === 42)).toHaveLength(1);
      expect(Math.max(...c.points.map((p) => p.max))).toBe(42);
    }
    // The whole week in 600 points: the spike is in one bucket's max; the others stay near 1.
    const week = store.chart({ ...base, fromMs: T0, toMs: T0 + 7 * DAY, maxPoints: 600, field: 'rms' });
    expect(week.points.filter((p) => p.max > 2)).toHaveLength(1);
    expect(peek(store.path, (db) => db.prepare('SELECT MAX(rms_max) FROM result_hours').pluck().get())).toBe(42);
  }, 120_000);
});
