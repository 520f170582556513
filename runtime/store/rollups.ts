// Minute and hour rollups of the results (tables result_minutes and result_hours, migration 9).
// The writer folds a transaction's results in memory first, so a batch of many results makes one
// upsert per (device, model, minute) and one per (device, model, hour), not one per result.
import type Database from 'better-sqlite3';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;

/** The start of the bucket of `unit` ms that holds t (floor, as migration 9 computes it in SQL). */
export function bucketOf(t: number, unit: number): number {
  const ms = Math.trunc(t);
  return ms - (((ms % unit) + unit) % unit);
}

/**
 * One bucket's aggregate. maxLabel is the label of the first result holding the maximum. The rms
 * fields cover only the results that carried an RMS (rmsCount of them; the others NaN-free: with
 * rmsCount 0, rmsSum is 0 and rmsMin/rmsMax are ±Infinity, written as NULL).
 */
export interface Rollup {
  count: number;
  sum: number;
  min: number;
  max: number;
  maxLabel: string | null;
  anomalies: number;
  rmsCount: number;
  rmsSum: number;
  rmsMin: number;
  rmsMax: number;
}

/** Folds b into a; on equal maxima the earlier one (a) keeps its label. */
export function fold(a: Rollup, b: Rollup): void {
  a.count += b.count;
  a.sum += b.sum;
  if (b.min < a.min) a.min = b.min;
  if (b.max > a.max) {
    a.max = b.max;
    a.maxLabel = b.maxLabel;
  }
  a.anomalies += b.anomalies;
  a.rmsCount += b.rmsCount;
  a.rmsSum += b.rmsSum;
  if (b.rmsMin < a.rmsMin) a.rmsMin = b.rmsMin;
  if (b.rmsMax > a.rmsMax) a.rmsMax = b.rmsMax;
}

/** The minutes of one (device, model) pair touched by a transaction. */
interface StreamMinutes {
  device: string;
  model: string;
  minutes: Map<number, Rollup>;
}

/** Results of a transaction (or of one unit), folded per (device, model, minute). */
export class RollupDelta {
  readonly streams = new Map<string, StreamMinutes>();

  /** `rms` is null when the result carries none (it then counts for the scores only). */
  add(key: string, device: string, model: string, timeMs: number, score: number, label: string | null, anomaly: boolean, rms: number | null): void {
    let s = this.streams.get(key);
    if (!s) this.streams.set(key, (s = { device, model, minutes: new Map() }));
    const minute = bucketOf(timeMs, MINUTE_MS);
    const r = s.minutes.get(minute);
    if (r === undefined) {
      s.minutes.set(minute, rms === null
        ? { count: 1, sum: score, min: score, max: score, maxLabel: label, anomalies: anomaly ? 1 : 0, rmsCount: 0, rmsSum: 0, rmsMin: Infinity, rmsMax: -Infinity }
        : { count: 1, sum: score, min: score, max: score, maxLabel: label, anomalies: anomaly ? 1 : 0, rmsCount: 1, rmsSum: rms, rmsMin: rms, rmsMax: rms });
      return;
    }
    r.count++;
    r.sum += score;
    if (score < r.min) r.min = score;
    if (score > r.max) {
      r.max = score;
      r.maxLabel = label;
    }
    if (anomaly) r.anomalies++;
    if (rms !== null) {
      r.rmsCount++;
      r.rmsSum += rms;
      if (rms < r.rmsMin) r.rmsMin = rms;
      if (rms > r.rmsMax) r.rmsMax = rms;
    }
  }

  /** Folds a later delta (a unit committed after this one's) into this one. */
  merge(later: RollupDelta): void {
    for (const [key, s] of later.streams) {
      const mine = this.streams.get(key);
      if (!mine) {
        this.streams.set(key, s);
        continue;
      }
      for (const [minute, r] of s.minutes) {
        const m = mine.minutes.get(minute);
        if (m) fold(m, r);
        else mine.minutes.set(minute, r);
      }
    }
  }
}

// The rms columns are NULL in a bucket without any RMS; SQLite's two-argument MIN/MAX give NULL
// when either side is NULL, hence the COALESCEs (both NULL stays NULL).
const upsert = (table: string): string => `INSERT INTO ${table} (device, model, bucket_ms, count, sum, min, max, max_label, anomalies, rms_count, rms_sum, rms_min, rms_max)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (device, model, bucket_ms) DO UPDATE SET count = count + excluded.count, sum = sum + excluded.sum, min = MIN(min, excluded.min),
    max = MAX(max, excluded.max), max_label = CASE WHEN excluded.max > max THEN excluded.max_label ELSE max_label END, anomalies = anomalies + excluded.anomalies,
    rms_count = rms_count + excluded.rms_count, rms_sum = COALESCE(rms_sum + excluded.rms_sum, rms_sum, excluded.rms_sum),
    rms_min = MIN(COALESCE(rms_min, excluded.rms_min), COALESCE(excluded.rms_min, rms_min)), rms_max = MAX(COALESCE(rms_max, excluded.rms_max), COALESCE(excluded.rms_max, rms_max))`;


/** Writes a transaction's rollups: one upsert per minute touched, one per hour touched. */
export class RollupWriter {
  private readonly minute: Database.Statement;
  private readonly hour: Database.Statement;

  constructor(db: Database.Database) {
    this.minute = db.prepare(upsert('result_minutes'));
    this.hour = db.prepare(upsert('result_hours'));
  }

  write(d: RollupDelta): void {
    for (const s of d.streams.values()) {
      const hours = new Map<number, Rollup>();
      for (const [minute, r] of s.minutes) {
        this.run(this.minute, s.device, s.model, minute, r);
        const hour = bucketOf(minute, HOUR_MS);
        const h = hours.get(hour);
        if (h) fold(h, r);
        else hours.set(hour, { ...r });
      }
      for (const [hour, r] of hours) this.run(this.hour, s.device, s.model, hour, r);
    }
  }

  /** One bucket's upsert; a bucket without RMS writes NULLs. */
  private run(stmt: Database.Statement, device: string, model: string, bucket: number, r: Rollup): void {
    const has = r.rmsCount > 0;
    stmt.run(device, model, bucket, r.count, r.sum, r.min, r.max, r.maxLabel, r.anomalies, r.rmsCount, has ? r.rmsSum : null, has ? r.rmsMin : null, has ? r.rmsMax : null);
  }
}
