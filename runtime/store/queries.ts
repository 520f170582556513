// Read side: what the dashboard, the publisher and calibration ask of the log. Statements are
// prepared once per shape of query and reused.
import type Database from 'better-sqlite3';
import { EdgeInferError } from '../errors';
import { HOUR_MS, MINUTE_MS, bucketOf } from './rollups';
import type { AggregateRow, AgreementRow, AlertRow, ChartField, ChartPoint, ModelStatsRow, DeadLetterRow, OutboxEntry, ResultRow, SeriesPoint, SeriesResult, SeriesSource, WindowRow } from './types';

interface ResultSql {
  id: number;
  time_ms: number;
  device: string;
  model: string;
  variant: string;
  score: number;
  label: string | null;
  anomaly: number;
  outputs: string;
  latency_ms: number;
  window_start_ms: number;
  window_end_ms: number;
  message_keys: string;
  processed_ms: number | null;
  rms: number | null;
  model_sha256?: string | null;
}

export interface AlertSql {
  id: number;
  time_ms: number;
  device: string;
  model: string;
  variant: string;
  kind: string;
  label: string | null;
  score: number;
  threshold: number | null;
  message: string;
  processed_ms: number | null;
  acked_ms: number | null;
  acked_by: string | null;
  cleared_ms: number | null;
  cleared_by: string | null;
}

interface DeadLetterSql {
  id: number;
  time_ms: number;
  topic: string;
  device: string | null;
  reason: string;
  code: string;
  payload: Buffer;
  payload_bytes: number;
  truncated: number;
}

const resultRow = (r: ResultSql): ResultRow => ({
  id: r.id,
  timeMs: r.time_ms,
  device: r.device,
  model: r.model,
  variant: r.variant,
  score: r.score,
  label: r.label,
  anomaly: r.anomaly === 1,
  outputs: JSON.parse(r.outputs) as ResultRow['outputs'],
  latencyMs: r.latency_ms,
  windowStartMs: r.window_start_ms,
  windowEndMs: r.window_end_ms,
  messageKeys: JSON.parse(r.message_keys) as string[],
  processedMs: r.processed_ms ?? r.time_ms,
  rms: r.rms,
  // Only a device's own variant says which (most rows are the shared variant's).
  ...(r.model_sha256 ? { modelSha256: r.model_sha256 } : {}),
});

export const alertRow = (a: AlertSql): AlertRow => ({
  id: a.id, timeMs: a.time_ms, device: a.device, model: a.model, variant: a.variant, kind: a.kind, label: a.label, score: a.score, threshold: a.threshold, message: a.message, processedMs: a.processed_ms ?? a.time_ms,
  ackedBy: a.acked_by, ackedMs: a.acked_ms, clearedBy: a.cleared_by, clearedMs: a.cleared_ms,
});

const deadLetterRow = (l: DeadLetterSql): DeadLetterRow => ({
  id: l.id, timeMs: l.time_ms, topic: l.topic, device: l.device, reason: l.reason, code: l.code, payload: l.payload, payloadBytes: l.payload_bytes, truncated: l.truncated === 1,
});

/** Results grouped by their message keys, each group oldest first (by window start, then id). */
function groupByKeys(newestFirst: readonly Judged[]): Map<string, Judged[]> {
  const groups = new Map<string, Judged[]>();
  for (let i = newestFirst.length - 1; i >= 0; i--) {
    const r = newestFirst[i];
    const g = groups.get(r.keys);
    if (g) g.push(r);
    else groups.set(r.keys, [r]);
  }
  for (const g of groups.values()) g.sort((a, b) => a.startMs - b.startMs || a.id - b.id);
  return groups;
}

/** Float32 features from a BLOB, copied so the array is aligned and owns its memory. */
function float32Of(blob: Buffer): Float32Array {
  const out = new Float32Array(blob.byteLength / 4);
  new Uint8Array(out.buffer).set(blob);
  return out;
}

// Checks at the public boundary: errors name the argument.
function arg(name: string, expected: string, got: unknown): EdgeInferError {
  return new EdgeInferError('E_ARGUMENT', `${name}: expected ${expected}, got ${typeof got === 'string' ? `'${got}'` : String(got)}`);
}
export function checkTime(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw arg(name, 'a time in ms since the epoch', v);
  return v;
}
/** The furthest a Date reaches either side of the epoch, in ms. */
export const MAX_DATE_MS = 8.64e15;
export function checkDateTime(name: string, v: unknown): number {
  const t = checkTime(name, v);
  if (Math.abs(t) > MAX_DATE_MS) throw arg(name, `a time a Date can hold (within ±${MAX_DATE_MS.toLocaleString('en-US')} ms of the epoch)`, v);
  return t;
}
export function checkCount(name: string, v: unknown, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw arg(name, 'a whole number ≥ 1', v);
  return v;
}
export function checkName(name: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw arg(name, 'a non-empty string', v);
  return v;
}
const optional = <T>(v: unknown, check: (v: unknown) => T): T | undefined => (v === undefined ? undefined : check(v));

/** An RMS chart counts its values among at most this many rows per point asked for, to choose raw results over buckets. */
const RMS_COUNT_ROWS_PER_POINT = 4;

/** Most points chart() gives: far more than any screen has pixels across. */
export const MAX_CHART_POINTS = 100_000;
export const DEFAULT_LIMIT = 100;
export const DEFAULT_WINDOWS_LIMIT = 1000;
/** modelStats(): the latency percentiles are taken over this many newest results per model and variant. */
export const MODEL_STATS_LATENCY_RESULTS = 5000;
/**
 * modelStats(): results are committed in the order they are made, give or take a batch; the count
 * by processing time walks back from the newest row and stops once MODEL_STATS_STOP_ROWS rows in
 * a row were made this long before sinceMs (rows committed later still, behind a failing disk,
 * are missed).
 */
export const MODEL_STATS_LAG_MS = 60_000;
/** modelStats(): the walk stops after this many rows in a row made before the lag (one straggler does not stop it). */
export const MODEL_STATS_STOP_ROWS = 1000;
/** modelStats(): rows read per device at a time while merging the devices' newest results. */
const MODEL_STATS_PAGE = 500;
/** agreement(): the newest results per device, model and variant compared. */
export const AGREEMENT_RESULTS = 2000;
/** The kind of the alert row that ends an episode (runtime/stream/alerts.ts, alertKind). */
export const CLEAR_KIND = 'clear';

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
}

/** One result as agreement() compares it. */
interface Judged {
  id: number;
  label: string | null;
  anomaly: number;
  keys: string;
  startMs: number;
}

export class Queries {
  private readonly cache = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  /** A statement prepared on first use and kept. */
  private stmt(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) this.cache.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  seen(key: string): boolean {
    return this.stmt('SELECT 1 FROM inbound WHERE key = ?').pluck().get(key) !== undefined;
  }

  outboxPeek(limit: number, afterId: number, skip: (id: number) => boolean, skipped: number): OutboxEntry[] {
    const rows = this.stmt('SELECT id, topic, payload, qos, retain FROM outbox WHERE id > ? ORDER BY id LIMIT ?').all(afterId, limit + skipped) as Array<{ id: number; topic: string; payload: Buffer | string; qos: 0 | 1 | 2; retain: number }>;
    const out: OutboxEntry[] = [];
    for (const r of rows) {
      if (skip(r.id)) continue;
      out.push({ id: r.id, topic: r.topic, payload: r.payload, qos: r.qos, retain: r.retain === 1 });
      if (out.length === limit) break;
    }
    return out;
  }

  windows(model: string, opts: { limit?: number; device?: string; sinceMs?: number }): WindowRow[] {
    const limit = checkCount('limit', opts.limit, DEFAULT_WINDOWS_LIMIT);
    const device = optional(opts.device, (v) => checkName('device', v));
    const since = optional(opts.sinceMs, (v) => checkTime('sinceMs', v));
    const where = ['model = @model', device !== undefined && 'device = @device', since !== undefined && 'time_ms >= @since'].filter(Boolean).join(' AND ');
    const rows = this.stmt(`SELECT time_ms, device, dims, features FROM windows WHERE ${where} ORDER BY time_ms DESC, id DESC LIMIT @limit`).all({ model, device, since, limit }) as Array<{ time_ms: number; device: string; dims: string; features: Buffer }>;
    return rows.map((r) => ({ timeMs: r.time_ms, device: r.device, features: float32Of(r.features), dims: JSON.parse(r.dims) as number[] }));
  }

  /** The newest result of each (device, model) pair, found through the index pair by pair. */
  latestPerDevice(model?: string): ResultRow[] {
    const filter = model === undefined ? '' : 'WHERE s.model = @model';
    const sql = `SELECT r.* FROM result_streams s
      JOIN results r ON r.id = (SELECT id FROM results WHERE device = s.device AND model = s.model ORDER BY time_ms DESC, id DESC LIMIT 1)
      ${filter} ORDER BY s.device, s.model`;
    return (this.stmt(sql).all(model === undefined ? {} : { model }) as ResultSql[]).map(resultRow);
  }

  /**
   * Results of one device and model in [fromMs, toMs], oldest first. Past maxPoints they are cut
   * into maxPoints equal time buckets, each shown by its highest-scoring result, so spikes survive.
   */
  series(o: { device: string; model: string; fromMs: number; toMs: number; maxPoints: number }): SeriesPoint[] {
    const params = { device: o.device, model: o.model, from: o.fromMs, to: o.toMs };
    const where = 'device = @device AND model = @model AND time_ms >= @from AND time_ms <= @to';
    const n = this.stmt(`SELECT COUNT(*) FROM results WHERE ${where}`).pluck().get(params) as number;
    type Point = { time_ms: number; score: number; label: string | null };
    let rows: Point[];
    if (n <= o.maxPoints) {
      rows = this.stmt(`SELECT time_ms, score, label FROM results WHERE ${where} ORDER BY time_ms, id`).all(params) as Point[];
    } else {
      // floor(span / width) < maxPoints, so there are at most maxPoints buckets. With MAX() as the
      // only aggregate, SQLite takes the other columns from the row that holds the maximum.
      const width = Math.floor((o.toMs - o.fromMs) / o.maxPoints) + 1;
      rows = this.stmt(`SELECT time_ms, MAX(score) AS score, label FROM results WHERE ${where} GROUP BY CAST((time_ms - @from) / @width AS INTEGER) ORDER BY time_ms`).all({ ...params, width }) as Point[];
    }
    return rows.map((r) => ({ timeMs: r.time_ms, score: r.score, label: r.label }));
  }

  /**
   * One device and model over [fromMs, toMs] in at most maxPoints points: the raw results when no
   * more than maxPoints fall in the range, else maxPoints equal buckets anchored at fromMs, each
   * with its min, max, mean, count, anomalies and the label of its max. Buckets under a minute wide
   * are folded from the raw results; wider ones from the minute rollup, an hour or wider from the
   * hour rollup, with the partial minutes (hours) at either end of the range read finer, so the
   * range's edges are exact. A rollup minute or hour falls in the bucket its start falls in.
   */
  chart(o: { device: string; model: string; fromMs: number; toMs: number; maxPoints: number; source?: SeriesSource; field?: ChartField }): SeriesResult {
    const { device, model, fromMs: from, toMs: to, maxPoints } = o;
    const rms = o.field === 'rms';
    // An RMS chart reads the results that carry one, and the rollups' rms columns; its points have
    // no label and count no anomalies (the score chart shows those).
    const has = rms ? ' AND rms IS NOT NULL' : '';
    const value = rms ? 'rms' : 'score';
    const where = `device = @device AND model = @model AND time_ms >= @from AND time_ms <= @to${has}`;
    // Counting stops past a bound, so a long range costs no more than a short one here. The index
    // alone counts results; whether one has an RMS is only in its row, so an RMS chart reads at
    // most a few times maxPoints rows to count those (`rms IS NOT NULL` over the whole range would
    // read every row of a month logged before results carried an RMS: seconds). A range with more
    // results than that is bucketed, as it would be by its RMS values but for the rarest logs.
    const all = `device = @device AND model = @model AND time_ms >= @from AND time_ms <= @to`;
    let n = Infinity;
    if (o.source === undefined) {
      const cap = rms ? RMS_COUNT_ROWS_PER_POINT * (maxPoints + 1) : maxPoints + 1;
      // A score chart selects nothing but the index's columns, so SQLite reads no row.
      const [rows, valued] = this.stmt(rms ? `SELECT COUNT(*), COUNT(rms) FROM (SELECT rms FROM results WHERE ${all} LIMIT @cap)` : `SELECT COUNT(*), 0 FROM (SELECT 1 FROM results WHERE ${all} LIMIT @cap)`).raw().get({ device, model, from, to, cap }) as [number, number];
      n = !rms ? rows : rows < cap ? valued : Infinity;
    }
    if (n <= maxPoints && !this.agedOut(device, model, from, to)) {
      const rows = this.stmt(`SELECT time_ms, ${value}, label, anomaly FROM results WHERE ${where} ORDER BY time_ms, id`).raw().all({ device, model, from, to }) as Array<[number, number, string | null, number]>;
      return {
        source: 'raw', bucketMs: 0,
        points: rows.map(([t, v, label, anomaly]) => ({ timeMs: t, score: v, label: rms ? null : label, min: v, max: v, mean: v, count: 1, anomalies: rms ? 0 : anomaly })),
      };
    }
    // floor(span / width) < maxPoints, so there are at most maxPoints buckets.
    const width = Math.floor((to - from) / maxPoints) + 1;
    const source: SeriesSource = o.source ?? (width >= HOUR_MS ? 'hour' : width >= MINUTE_MS ? 'minute' : 'raw');
    const units = source === 'hour' ? [HOUR_MS, MINUTE_MS] : source === 'minute' ? [MINUTE_MS] : [];
    const buckets = new Map<number, ChartPoint>();
    const add = (i: number, count: number, sum: number, min: number, max: number, label: string | null, anomalies: number): void => {
      const p = buckets.get(i);
      if (p === undefined) {
        buckets.set(i, { timeMs: from + i * width, score: max, label, min, max, mean: sum, count, anomalies });
        return;
      }
      p.count += count;
      p.mean += sum; // the sum until the end
      if (min < p.min) p.min = min;
      if (max > p.max) {
        p.max = p.score = max;
        p.label = label;
      }
      p.anomalies += anomalies;
    };
    const raw = (lo: number, hi: number): void => {
      const sql = `SELECT time_ms, ${value}, ${rms ? 'NULL, 0' : 'label, anomaly'} FROM results WHERE device = @device AND model = @model AND time_ms >= @lo AND time_ms < @hi AND time_ms <= @to${has} ORDER BY time_ms, id`;
      for (const [t, v, label, anomaly] of this.stmt(sql).raw().iterate({ device, model, lo, hi, to }) as IterableIterator<[number, number, string | null, number]>) add(Math.floor((t - from) / width), 1, v, v, v, label, anomaly);
    };
    // Rollup rows are folded into the chart's buckets by SQLite, so a month of minute rows (43,200
    // per machine and model) reaches JavaScript as one row per bucket. The label is the highest
    // score's: MAX() is the only min/max aggregate of its statement, so SQLite takes the bare
    // max_label from that row (the first in time on a tie); the minimum comes from a second pass.
    const c = rms
      ? { count: 'rms_count', sum: 'rms_sum', min: 'rms_min', max: 'rms_max', label: 'NULL', anomalies: '0' }
      : { count: 'count', sum: 'sum', min: 'min', max: 'max', label: 'max_label', anomalies: 'anomalies' };
    const rollup = (unit: number, lo: number, hi: number): void => {
      const table = unit === HOUR_MS ? 'result_hours' : 'result_minutes';
      const bucket = 'CAST((bucket_ms - @from) / @width AS INTEGER)';
      const filter = `device = @device AND model = @model AND bucket_ms >= @lo AND bucket_ms < @hi${rms ? ' AND rms_count > 0' : ''}`;
      const args = { device, model, lo, hi, from, width };
      const maxima = this.stmt(`SELECT ${bucket} AS i, SUM(${c.count}), SUM(${c.sum}), MAX(${c.max}), ${c.label}, SUM(${c.anomalies}) FROM ${table} WHERE ${filter} GROUP BY i ORDER BY i`).raw().all(args) as Array<[number, number, number, number, string | null, number]>;
      const minima = this.stmt(`SELECT ${bucket} AS i, MIN(${c.min}) FROM ${table} WHERE ${filter} GROUP BY i ORDER BY i`).raw().all(args) as Array<[number, number]>;
      // Both passes group the same rows: the same buckets in the same order.
      maxima.forEach(([i, count, sum, max, label, anomalies], k) => add(i, count, sum, minima[k][1], max, label, anomalies));
    };
    // [lo, hi): the whole units inside from the coarsest rollup, the partial ones at the ends finer.
    const collect = (lo: number, hi: number, level: number): void => {
      const unit = units[level];
      if (unit === undefined) return raw(lo, hi);
      let a = bucketOf(lo, unit);
      if (a < lo) a += unit;
      const b = bucketOf(hi, unit);
      if (a >= b) return collect(lo, hi, level + 1);
      if (lo < a) collect(lo, a, level + 1);
      rollup(unit, a, b);
      if (b < hi) collect(b, hi, level + 1);
    };
    collect(from, Math.floor(to) + 1, 0);
    const points = [...buckets.keys()].sort((x, y) => x - y).map((i) => {
      const p = buckets.get(i)!;
      p.mean /= p.count;
      return p;
    });
    return { source, bucketMs: width, points };
  }

  /**
   * Whether retention has deleted raw results of the range that the rollups still hold: then a
   * range with few raw rows left is still charted from the rollups. The oldest raw row is found
   * through the index.
   */
  private agedOut(device: string, model: string, from: number, to: number): boolean {
    const oldest = this.stmt('SELECT MIN(time_ms) FROM results WHERE device = ? AND model = ?').pluck().get(device, model) as number | null;
    if (oldest !== null && oldest <= from) return false;
    // A rollup bucket that ends before the oldest raw row: its rows are gone from results.
    const held = (table: string, unit: number): boolean => {
      const until = oldest === null ? to + 1 : Math.min(oldest - unit + 1, to + 1);
      return this.stmt(`SELECT 1 FROM ${table} WHERE device = ? AND model = ? AND bucket_ms >= ? AND bucket_ms < ? LIMIT 1`).get(device, model, bucketOf(from, unit), until) !== undefined;
    };
    return held('result_minutes', MINUTE_MS) || held('result_hours', HOUR_MS);
  }

  /** Per (bucket, device, model): count, mean and max score, anomalies. Buckets are aligned to the epoch. */
  aggregates(o: { fromMs: number; toMs: number; bucketMs: number; device?: string; model?: string }): AggregateRow[] {
    const filter = [o.device !== undefined && 's.device = @device', o.model !== undefined && 's.model = @model'].filter(Boolean).join(' AND ');
    // CROSS JOIN keeps result_streams outside, so each pair's time range is read through the index.
    const sql = `SELECT (CAST(r.time_ms AS INTEGER) / CAST(@bucket AS INTEGER)) * CAST(@bucket AS INTEGER) AS bucket, s.device, s.model,
        COUNT(*) AS count, AVG(r.score) AS mean, MAX(r.score) AS max, SUM(r.anomaly) AS anomalies
      FROM result_streams s CROSS JOIN results r ON r.device = s.device AND r.model = s.model AND r.time_ms >= @from AND r.time_ms <= @to
      ${filter ? `WHERE ${filter}` : ''}
      GROUP BY bucket, s.device, s.model ORDER BY bucket, s.device, s.model`;
    const rows = this.stmt(sql).all({ from: o.fromMs, to: o.toMs, bucket: o.bucketMs, device: o.device, model: o.model }) as Array<{ bucket: number; device: string; model: string; count: number; mean: number; max: number; anomalies: number }>;
    return rows.map((r) => ({ bucketStartMs: r.bucket, device: r.device, model: r.model, count: r.count, meanScore: r.mean, maxScore: r.max, anomalies: r.anomalies }));
  }

  /**
   * Alerts newest first. With `active`, only the alerts active now: per (device, model) pair, its
   * latest alert (by data time, then id) when that alert is not a 'clear' (the model saw the
   * episode end) and no operator has cleared it (cleared_ms is NULL). One row per pair at most;
   * acknowledged alerts stay active. The pairs come from result_streams and each pair's latest
   * alert from the (device, time_ms) index, so the cost grows with the pairs, not the alerts.
   */
  alerts(o: { fromMs?: number; toMs?: number; device?: string; limit: number; active?: boolean }): AlertRow[] {
    const params = { from: o.fromMs, to: o.toMs, device: o.device, limit: o.limit };
    if (o.active) {
      const where = [`a.kind <> '${CLEAR_KIND}'`, 'a.cleared_ms IS NULL', o.fromMs !== undefined && 'a.time_ms >= @from', o.toMs !== undefined && 'a.time_ms <= @to', o.device !== undefined && 's.device = @device'].filter(Boolean);
      const sql = `SELECT a.* FROM result_streams s
        JOIN alerts a ON a.id = (SELECT id FROM alerts x WHERE x.device = s.device AND x.model = s.model ORDER BY x.time_ms DESC, x.id DESC LIMIT 1)
        WHERE ${where.join(' AND ')} ORDER BY a.time_ms DESC, a.id DESC LIMIT @limit`;
      return (this.stmt(sql).all(params) as AlertSql[]).map(alertRow);
    }
    const where = [o.fromMs !== undefined && 'time_ms >= @from', o.toMs !== undefined && 'time_ms <= @to', o.device !== undefined && 'device = @device'].filter(Boolean);
    const sql = `SELECT * FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY time_ms DESC, id DESC LIMIT @limit`;
    return (this.stmt(sql).all(params) as AlertSql[]).map(alertRow);
  }

  /** The (device, model) pairs that have results. */
  private streams(): Array<{ device: string; model: string }> {
    return this.stmt('SELECT device, model FROM result_streams ORDER BY device, model').all() as Array<{ device: string; model: string }>;
  }

  /**
   * Per (model, variant): the results logged since sinceMs by processing time, and the latency
   * percentiles over its newest MODEL_STATS_LATENCY_RESULTS results. The count walks the results
   * back from the newest row (rowid order is commit order) and stops past the rows made
   * MODEL_STATS_LAG_MS before sinceMs, so it costs the rows logged since then; the latencies walk
   * each pair's (device, model, time_ms) index from its newest row, the model's devices merged by
   * time, so about `limit` rows per variant are read. Neither scans the table.
   */
  modelStats(o: { sinceMs: number }): ModelStatsRow[] {
    const key = (model: string, variant: string): string => `${model}\u0000${variant}`;
    const rows = new Map<string, ModelStatsRow>();
    const row = (model: string, variant: string): ModelStatsRow => {
      let r = rows.get(key(model, variant));
      if (!r) rows.set(key(model, variant), (r = { model, variant, windows: 0, latencyP50Ms: null, latencyP99Ms: null }));
      return r;
    };
    const stop = o.sinceMs - MODEL_STATS_LAG_MS;
    let before = 0;
    for (const [model, variant, processed] of this.stmt('SELECT model, variant, processed_ms FROM results ORDER BY id DESC').raw().iterate() as IterableIterator<[string, string, number | null]>) {
      if (processed === null || processed < stop) {
        if (++before >= MODEL_STATS_STOP_ROWS) break;
        continue;
      }
      before = 0;
      if (processed >= o.sinceMs) row(model, variant).windows++;
    }
    // The newest results of each model over all its devices, newest first: the devices' index
    // walks merged by time, a page at a time, until each variant seen has `limit` latencies (or
    // 4 × limit rows were read: a variant not among them has not run lately).
    const limit = MODEL_STATS_LATENCY_RESULTS;
    const page = this.stmt(`SELECT variant, time_ms, id, latency_ms FROM results WHERE device = @device AND model = @model
      AND time_ms <= @t AND (time_ms < @t OR id < @id) ORDER BY time_ms DESC, id DESC LIMIT ${MODEL_STATS_PAGE}`).raw();
    type Row = [string, number, number, number];
    const byModel = new Map<string, string[]>();
    for (const s of this.streams()) {
      const devices = byModel.get(s.model);
      if (devices) devices.push(s.device);
      else byModel.set(s.model, [s.device]);
    }
    for (const [model, devices] of byModel) {
      const walks = devices.map((device) => ({ device, rows: [] as Row[], at: 0, done: false }));
      const next = (w: (typeof walks)[number]): Row | undefined => {
        if (w.at < w.rows.length) return w.rows[w.at];
        if (w.done) return undefined;
        const last = w.rows[w.rows.length - 1];
        w.rows = page.all({ device: w.device, model, t: last ? last[1] : Number.MAX_VALUE, id: last ? last[2] : Number.MAX_SAFE_INTEGER }) as Row[];
        w.at = 0;
        w.done = w.rows.length < MODEL_STATS_PAGE;
        return w.rows[0];
      };
      const latencies = new Map<string, number[]>();
      let full = 0;
      for (let read = 0; read < 4 * limit; read++) {
        let best: (typeof walks)[number] | undefined;
        let head: Row | undefined;
        for (const w of walks) {
          const r = next(w);
          if (r !== undefined && (head === undefined || r[1] > head[1] || (r[1] === head[1] && r[2] > head[2]))) {
            head = r;
            best = w;
          }
        }
        if (head === undefined) break;
        best!.at++;
        let list = latencies.get(head[0]);
        if (!list) latencies.set(head[0], (list = []));
        if (list.length < limit) {
          list.push(head[3]);
          if (list.length === limit && ++full === latencies.size) break;
        }
      }
      for (const [variant, list] of latencies) {
        const sorted = list.sort((a, b) => a - b);
        const r = row(model, variant);
        r.latencyP50Ms = percentile(sorted, 0.5);
        r.latencyP99Ms = percentile(sorted, 0.99);
      }
    }
    return [...rows.values()].sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : a.variant < b.variant ? -1 : a.variant > b.variant ? 1 : 0));
  }

  /**
   * Per (model, variant other than the reference): the windows both logged since sinceMs (data
   * time) and how many of them agree. Two results are of the same window when they share device,
   * model and message keys, and their place among the results with those keys (one message can
   * complete several windows; window times may differ, each Node-RED node dating samples itself).
   * Bounded: each pair's newest AGREEMENT_RESULTS results per variant, through the index.
   */
  agreement(o: { sinceMs: number; reference: string }): AgreementRow[] {
    const totals = new Map<string, AgreementRow>();
    const limit = AGREEMENT_RESULTS;
    const walk = this.stmt('SELECT variant, id, label, anomaly, message_keys, window_start_ms FROM results WHERE device = ? AND model = ? AND time_ms >= ? ORDER BY time_ms DESC, id DESC').raw();
    for (const s of this.streams()) {
      const byVariant = new Map<string, Judged[]>();
      let read = 0;
      let full = 0;
      // Until each variant seen has `limit` results (or 4 × limit rows were read).
      for (const [variant, id, label, anomaly, keys, startMs] of walk.iterate(s.device, s.model, o.sinceMs) as IterableIterator<[string, number, string | null, number, string, number]>) {
        let list = byVariant.get(variant);
        if (!list) byVariant.set(variant, (list = []));
        if (list.length < limit) {
          list.push({ id, label, anomaly, keys, startMs });
          if (list.length === limit && ++full === byVariant.size) break;
        }
        if (++read >= 4 * limit) break;
      }
      const ref = byVariant.get(o.reference);
      if (!ref) continue;
      const refGroups = groupByKeys(ref);
      for (const [variant, list] of byVariant) {
        if (variant === o.reference) continue;
        const k = `${s.model}\u0000${variant}`;
        let t = totals.get(k);
        if (!t) totals.set(k, (t = { model: s.model, variant, reference: o.reference, windows: 0, agree: 0 }));
        const groups = groupByKeys(list);
        // Lists are newest first: their last element is the oldest row read.
        const oldest = new Set([ref[ref.length - 1].keys, list[list.length - 1].keys]);
        for (const [keys, mine] of groups) {
          const theirs = refGroups.get(keys);
          if (!theirs) continue;
          const n = Math.min(mine.length, theirs.length);
          // Equal groups pair in order. An unequal one is cut: at the old end of what was read (the
          // bound took part of it), so its newest windows pair; else at the new end (a window one
          // side has not logged yet), so its oldest pair.
          const fromNewest = mine.length !== theirs.length && oldest.has(keys);
          for (let i = 0; i < n; i++) {
            const a = fromNewest ? mine[mine.length - n + i] : mine[i];
            const b = fromNewest ? theirs[theirs.length - n + i] : theirs[i];
            t.windows++;
            if (a.label !== null || b.label !== null ? a.label === b.label : a.anomaly === b.anomaly) t.agree++;
          }
        }
      }
    }
    return [...totals.values()].sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : a.variant < b.variant ? -1 : a.variant > b.variant ? 1 : 0));
  }

  deadLetters(o: { sinceMs?: number; limit: number }): DeadLetterRow[] {
    const sql = `SELECT * FROM dead_letters ${o.sinceMs !== undefined ? 'WHERE time_ms >= @since' : ''} ORDER BY time_ms DESC, id DESC LIMIT @limit`;
    return (this.stmt(sql).all({ since: o.sinceMs, limit: o.limit }) as DeadLetterSql[]).map(deadLetterRow);
  }
}
