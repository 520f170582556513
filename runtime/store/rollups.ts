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

/** One bucket's aggregate. maxLabel is the label of the first result holding the maximum. */
export interface Rollup {
  count: number;
  sum: number;
  min: number;
  max: number;
  maxLabel: string | null;
  anomalies: number;
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

  add(key: string, device: string, model: string, timeMs: number, score: number, label: string | null, anomaly: boolean): void {
    let s = this.streams.get(key);
    if (!s) this.streams.set(key, (s = { device, model, minutes: new Map() }));
    const minute = bucketOf(timeMs, MINUTE_MS);
    const r = s.minutes.get(minute);
    if (r === undefined) {
      s.minutes.set(minute, { count: 1, sum: score, min: score, max: score, maxLabel: label, anomalies: anomaly ? 1 : 0 });
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

const upsert = (table: string): string => `INSERT INTO ${table} (device, model, bucket_ms, count, sum, min, max, max_label, anomalies) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (device, model, bucket_ms) DO UPDATE SET count = count + excluded.count, sum = sum + excluded.sum, min = MIN(min, excluded.min),
    max = MAX(max, excluded.max), max_label = CASE WHEN excluded.max > max THEN excluded.max_label ELSE max_label END, anomalies = anomalies + excluded.anomalies`;

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
        this.minute.run(s.device, s.model, minute, r.count, r.sum, r.min, r.max, r.maxLabel, r.anomalies);
        const hour = bucketOf(minute, HOUR_MS);
        const h = hours.get(hour);
        if (h) fold(h, r);
        else hours.set(hour, { ...r });
      }
      for (const [hour, r] of hours) this.hour.run(s.device, s.model, hour, r.count, r.sum, r.min, r.max, r.maxLabel, r.anomalies);
    }
  }
}
