import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { type ResultRecord, type ResultStore } from '../../runtime/store';
import { MIGRATIONS, migrate } from '../../runtime/store/schema';
import { connectionOf, dbPath, openStore, peek, result } from './helpers';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = 1_699_999_200_000; // a whole number of hours since the epoch

interface Bucket { device: string; model: string; bucket_ms: number; count: number; sum: number; min: number; max: number; max_label: string | null; anomalies: number; rms_count: number; rms_sum: number | null; rms_min: number | null; rms_max: number | null }

/** What the rollup tables should hold, computed from the raw results with GROUP BY. */
function expectedRollups(db: Database.Database, unit: number): Bucket[] {
  return db.prepare(`SELECT device, model, (time_ms / ${unit}) * ${unit} AS bucket_ms, COUNT(*) AS count, SUM(score) AS sum, MIN(score) AS min, MAX(score) AS max,
      (SELECT label FROM results x WHERE x.device = r.device AND x.model = r.model AND x.time_ms / ${unit} = r.time_ms / ${unit} ORDER BY score DESC LIMIT 1) AS max_label, SUM(anomaly) AS anomalies,
      COUNT(rms) AS rms_count, SUM(rms) AS rms_sum, MIN(rms) AS rms_min, MAX(rms) AS rms_max
    FROM results r GROUP BY device, model, bucket_ms ORDER BY device, model, bucket_ms`).all() as Bucket[];
}
const rollups = (db: Database.Database, table: string): Bucket[] => db.prepare(`SELECT * FROM ${table} ORDER BY device, model, bucket_ms`).all() as Bucket[];

function expectSame(actual: Bucket[], expected: Bucket[]): void {
  expect(actual.map(({ sum, rms_sum, ...b }) => b)).toEqual(expected.map(({ sum, rms_sum, ...b }) => b));
  actual.forEach((b, i) => {
    expect(b.sum).toBeCloseTo(expected[i].sum, 9);
    if (expected[i].rms_sum === null) expect(b.rms_sum).toBeNull();
    else expect(b.rms_sum).toBeCloseTo(expected[i].rms_sum!, 9);
  });
}

/** A deterministic stream of distinct scores in [0.2, 0.8), so every bucket has one maximum. */
const scoreOf = (i: number): number => 0.2 + ((i * 7919) % 100_003) / 100_003 * 0.6;

/** Commits results in batches of `batch`, through the writer, and waits for them. */
async function commitAll(store: ResultStore, records: ResultRecord[], batch = 1000): Promise<void> {
  const pending: Array<Promise<void>> = [];
  for (let i = 0; i < records.length; i += batch) pending.push(store.commit({ results: records.slice(i, i + batch) }));
  await store.flush();
  await Promise.all(pending);
}

describe('rollups', () => {
  it('should equal a GROUP BY over the raw results after batches of several devices, out of time order', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchRows: 500, batchMs: 1 });
    const records: ResultRecord[] = [];
    for (let i = 0; i < 3000; i++) {
      const device = `press-${i % 3}`;
      const model = i % 2 ? 'vibration-anomaly' : 'fault-classifier';
      // Times jump back and forth over three hours; each batch touches many minutes and devices.
      const t = T0 + ((i * 7_777_777) % (3 * HOUR));
      // Every fifth result carries no RMS (logged before it was computed, or by a caller that has none).
      records.push(result(t, { device, model, score: scoreOf(i), label: model === 'fault-classifier' ? `class-${i % 4}` : null, anomaly: i % 13 === 0, rms: i % 5 === 0 ? null : scoreOf(i + 17) * 3 }));
    }
    await commitAll(store, records.slice(0, 1700), 170); // units of 170 results, several per batch
    await commitAll(store, records.slice(1700).reverse(), 1300); // one unit, newest first
    peek(file, (db) => {
      expectSame(rollups(db, 'result_minutes'), expectedRollups(db, MIN));
      expectSame(rollups(db, 'result_hours'), expectedRollups(db, HOUR));
    });
  });

  it('should leave out a unit that failed, and keep the rest of its batch', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchRows: 10_000, batchMs: 60_000 });
    const good = store.commit({ results: [result(T0, { score: 0.3 }), result(T0 + 1000, { score: 0.4 })] });
    const bad = store.commit({ results: [result(T0 + 2000, { score: 0.9 }), result(T0 + 3000, { anomaly: 'yes' as unknown as boolean })] });
    await store.flush();
    await good;
    await expect(bad).rejects.toThrow(/results\[1\]/);
    peek(file, (db) => {
      expect(rollups(db, 'result_minutes')).toMatchObject([{ device: 'press-1', model: 'vibration-anomaly', bucket_ms: T0, count: 2, min: 0.3, max: 0.4, max_label: null, anomalies: 0 }]);
      expectSame(rollups(db, 'result_minutes'), expectedRollups(db, MIN));
      expectSame(rollups(db, 'result_hours'), expectedRollups(db, HOUR));
    });
  });

  it('should keep the first label committed when a later result ties the maximum', async () => {
    const store = openStore({ batchMs: 1 });
    await store.commit({ results: [result(T0, { score: 0.9, label: 'first' })] });
    await store.commit({ results: [result(T0 + 1, { score: 0.9, label: 'second' }), result(T0 + 2, { score: 0.8, label: 'third' })] });
    expect(connectionOf(store).prepare('SELECT max_label FROM result_minutes').pluck().all()).toEqual(['first']);
  });

  it('should outlive the raw results under retention, minutes for minuteRollupDays and hours for hourRollupDays', async () => {
    const now = Date.now();
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 1, retention: { maxAgeDays: 7, minuteRollupDays: 30, hourRollupDays: 90, everyMs: 0 } });
    const at = (daysAgo: number, i: number) => result(now - daysAgo * DAY + i * 1000, { score: 0.1 + i / 100, processedMs: now - daysAgo * DAY });
    await store.commit({ results: [...Array.from({ length: 50 }, (_, i) => at(10, i)), ...Array.from({ length: 5 }, (_, i) => at(60, i)), at(200, 0), at(1, 0)] });
    expect(store.applyRetention()).toEqual({ deleted: 56 });
    expect(store.counts().results).toBe(1);
    peek(file, (db) => {
      const days = (table: string) => (db.prepare(`SELECT bucket_ms FROM ${table}`).pluck().all() as number[]).map((b) => Math.round((now - b) / DAY)).sort((a, b) => a - b);
      expect(new Set(days('result_minutes'))).toEqual(new Set([1, 10]));
      expect(new Set(days('result_hours'))).toEqual(new Set([1, 10, 60]));
    });
    // The chart of those ten-day-old results still shows them, from the rollups.
    const chart = store.chart({ device: 'press-1', model: 'vibration-anomaly', fromMs: now - 11 * DAY, toMs: now, maxPoints: 100 });
    expect(chart.source).toBe('hour');
    expect(chart.points.reduce((n, p) => n + p.count, 0)).toBe(51);
    expect(Math.max(...chart.points.map((p) => p.max))).toBeCloseTo(0.59, 9);
  });

  it('should refuse rollup retention that is not a number of days > 0, naming the option', () => {
    expect(() => openStore({ retention: { minuteRollupDays: 0 } })).toThrow('store option retention.minuteRollupDays: expected a number > 0, got 0');
    expect(() => openStore({ retention: { hourRollupDays: -1 } })).toThrow('store option retention.hourRollupDays: expected a number > 0, got -1');
  });

  it('should delete no rollups when raw results are kept forever', async () => {
    const now = Date.now();
    const store = openStore({ batchMs: 1, retention: { everyMs: 0, minuteRollupDays: 1, hourRollupDays: 1 } });
    await store.commit({ results: [result(now - 400 * DAY)] });
    expect(store.applyRetention()).toEqual({ deleted: 0 });
    expect(connectionOf(store).prepare('SELECT (SELECT COUNT(*) FROM result_minutes) + (SELECT COUNT(*) FROM result_hours)').pluck().get()).toBe(2);
  });

  it('should be filled from the results already logged when migration 9 runs', () => {
    const file = dbPath();
    const db = new Database(file);
    try {
      migrate(db, file, MIGRATIONS.slice(0, 8));
      const insert = db.prepare(`INSERT INTO results (time_ms, device, model, variant, score, label, anomaly, outputs, latency_ms, window_start_ms, window_end_ms, message_keys, processed_ms) VALUES (?, ?, 'm', 'int8', ?, ?, ?, '[]', 1, 0, 0, '[]', 0)`);
      db.transaction(() => {
        for (let i = 0; i < 5000; i++) insert.run(T0 + ((i * 7_777_777) % (5 * HOUR)), `pump-${i % 2}`, scoreOf(i), `c${i % 3}`, i % 11 === 0 ? 1 : 0);
      })();
      db.prepare(`INSERT INTO result_streams SELECT DISTINCT device, model FROM results`).run();
    } finally {
      db.close();
    }
    const store = openStore({ path: file });
    const db2 = connectionOf(store);
    expect(rollups(db2, 'result_minutes').length).toBeGreaterThan(100);
    expectSame(rollups(db2, 'result_minutes'), expectedRollups(db2, MIN));
    expectSame(rollups(db2, 'result_hours'), expectedRollups(db2, HOUR));
  });
});

describe('chart()', () => {
  const base = { device: 'press-1', model: 'vibration-anomaly' };

  it('should give the raw results, with count 1, when no more than maxPoints fall in the range', async () => {
    const store = openStore({ batchMs: 1 });
    await store.commit({ results: Array.from({ length: 10 }, (_, i) => result(T0 + i * 1000, { score: i / 10, anomaly: i === 3 })) });
    const c = store.chart({ ...base, fromMs: T0 + 2000, toMs: T0 + 9000, maxPoints: 8 });
    expect(c.source).toBe('raw');
    expect(c.bucketMs).toBe(0);
    expect(c.points.map((p) => p.timeMs)).toEqual(Array.from({ length: 8 }, (_, i) => T0 + (2 + i) * 1000));
    expect(c.points[1]).toEqual({ timeMs: T0 + 3000, score: 0.3, label: null, min: 0.3, max: 0.3, mean: 0.3, count: 1, anomalies: 1 });
    // A range that starts before the device's first result, in the same minute, is still raw.
    expect(store.chart({ ...base, fromMs: T0 - 30_000, toMs: T0 + 9000, maxPoints: 10 }).source).toBe('raw');
  });

  it('should answer an empty range, an unknown device and an unknown model with no points', async () => {
    const store = openStore({ batchMs: 1 });
    await store.commit({ results: [result(T0)] });
    for (const maxPoints of [1, 1000]) {
      expect(store.chart({ ...base, fromMs: T0 + 1, toMs: T0 + 30 * DAY, maxPoints }).points).toEqual([]);
      expect(store.chart({ ...base, device: 'no-such-press', fromMs: 0, toMs: T0 + DAY, maxPoints }).points).toEqual([]);
      expect(store.chart({ ...base, model: 'no-such-model', fromMs: 0, toMs: T0 + DAY, maxPoints }).points).toEqual([]);
    }
    expect(store.chart({ ...base, fromMs: T0 - DAY, toMs: T0 + DAY, maxPoints: 1000, source: 'hour' }).points).toHaveLength(1);
  });

  it('should refuse bad ranges and bounds, naming the argument', () => {
    const store = openStore();
    const c = (o: Partial<Parameters<ResultStore['chart']>[0]>) => () => store.chart({ ...base, fromMs: T0, toMs: T0 + DAY, maxPoints: 100, ...o });
    expect(c({ toMs: T0 - 1 })).toThrow(`toMs: expected ≥ fromMs (${T0}), got ${T0 - 1}`);
    expect(c({ maxPoints: 0 })).toThrow('maxPoints: expected a whole number ≥ 1, got 0');
    expect(c({ maxPoints: 2.5 })).toThrow('maxPoints: expected a whole number ≥ 1, got 2.5');
    expect(c({ maxPoints: 100_001 })).toThrow('maxPoints: expected at most 100,000, got 100001');
    expect(c({ fromMs: -9e15 })).toThrow('fromMs: expected a time a Date can hold (within ±8,640,000,000,000,000 ms of the epoch), got -9000000000000000');
    expect(c({ toMs: 1e16 })).toThrow(/^toMs: expected a time a Date can hold/);
    expect(c({ fromMs: Number.NaN })).toThrow('fromMs: expected a time in ms since the epoch, got NaN');
    expect(c({ device: '' })).toThrow('device: expected a non-empty string');
    expect(c({ source: 'day' as 'hour' })).toThrow('source: expected one of raw, minute, hour, got day');
  });

  it('should give the same buckets from the rollups as from the raw results when buckets are whole hours', async () => {
    const store = openStore({ batchRows: 1000, batchMs: 1 });
    const records = Array.from({ length: 20_000 }, (_, i) => result(T0 + i * 13_000 + (i % 7) * 1000, { score: scoreOf(i), label: `c${i % 5}`, anomaly: i % 17 === 0 }));
    await commitAll(store, records);
    const range = { ...base, fromMs: T0, toMs: T0 + 72 * HOUR - 1, maxPoints: 36 }; // 2-hour buckets
    const raw = store.chart({ ...range, source: 'raw' });
    for (const source of ['minute', 'hour'] as const) {
      const c = store.chart({ ...range, source });
      expect(c.points.map(({ mean, ...p }) => p)).toEqual(raw.points.map(({ mean, ...p }) => p));
      c.points.forEach((p, i) => expect(p.mean).toBeCloseTo(raw.points[i].mean, 9));
    }
    expect(store.chart(range).source).toBe('hour');
    expect(raw.points).toHaveLength(36);
  });

  it('should read the partial minutes and hours at the edges of a range from finer data, exactly', async () => {
    const store = openStore({ batchRows: 1000, batchMs: 1 });
    await commitAll(store, Array.from({ length: 10_000 }, (_, i) => result(T0 + i * 10_000, { score: scoreOf(i) })));
    // Spikes just inside and just outside a range that starts and ends mid-minute, mid-hour.
    const from = T0 + 5 * HOUR + 17 * MIN + 30_000;
    const to = T0 + 25 * HOUR + 42 * MIN + 20_000;
    await store.commit({ results: [result(from, { score: 5 }), result(from - 1, { score: 9 }), result(to, { score: -5 }), result(to + 1, { score: -9 })] });
    for (const maxPoints of [1, 5, 20, 300, 1000]) {
      const c = store.chart({ ...base, fromMs: from, toMs: to, maxPoints });
      expect(c.points.length).toBeLessThanOrEqual(maxPoints);
      expect(Math.max(...c.points.map((p) => p.max))).toBe(5);
      expect(Math.min(...c.points.map((p) => p.min))).toBe(-5);
      const rows = peek(store.path, (db) => db.prepare('SELECT COUNT(*) FROM results WHERE time_ms >= ? AND time_ms <= ?').pluck().get(from, to) as number);
      expect(c.points.reduce((n, p) => n + p.count, 0)).toBe(rows);
    }
  });

  it('should keep a single high spike and a single low dip among 600,000 results (7 days at ~1/s)', async () => {
    const store = openStore({ batchRows: 5000, batchMs: 60_000 });
    const n = 600_000;
    const step = Math.floor((7 * DAY) / n); // 1008 ms
    const spike = 123_457;
    const dip = 456_789;
    const records: ResultRecord[] = [];
    for (let i = 0; i < n; i++) {
      const score = i === spike ? 0.99 : i === dip ? 0.01 : 0.4 + (i % 100) / 1000;
      records.push(result(T0 + i * step, { score, label: i === spike ? 'spike' : 'normal', anomaly: i === spike }));
    }
    await commitAll(store, records, 5000);
    const ranges = [
      [15 * MIN, 'raw'], [6 * HOUR, 'raw'], [2 * DAY, 'minute'], [7 * DAY, 'minute'], [30 * DAY, 'hour'],
    ] as const;
    for (const [span, source] of ranges) {
      for (const at of [spike, dip]) {
        const middle = T0 + at * step;
        const c = store.chart({ ...base, fromMs: middle - span / 2, toMs: middle + span / 2, maxPoints: 600 });
        expect(c.source).toBe(source);
        expect(c.points.length).toBeLessThanOrEqual(600);
        if (at === spike) {
          const p = c.points.find((q) => q.max === 0.99)!;
          expect(p).toMatchObject({ score: 0.99, label: 'spike' });
          expect(p.anomalies).toBe(1);
        } else {
          expect(c.points.some((q) => q.min === 0.01)).toBe(true);
        }
      }
    }
  }, 120_000);
});
