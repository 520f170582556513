// The log's read queries with their arguments checked: one layer for the store (on the writer's
// connection) and the log reader (on a read-only connection in a worker), so both give the same
// rows and refuse the same arguments with the same messages.
import { EdgeInferError } from '../errors';
import { type Queries, checkCount, checkDateTime, checkName, checkTime, DEFAULT_LIMIT, MAX_CHART_POINTS } from './queries';
import type { AggregateRow, AgreementRow, AlertRow, ChartField, DeadLetterRow, ModelStatsRow, ResultRow, SeriesPoint, SeriesResult, SeriesSource, WindowRow } from './types';

/** Where chart() may be told to read from (it picks by bucket width when not told). */
const SOURCES: readonly SeriesSource[] = ['raw', 'minute', 'hour'];
/** What chart() may draw. */
const FIELDS: readonly ChartField[] = ['score', 'rms'];
/** The variant agreement() compares the others with unless told. */
export const DEFAULT_REFERENCE = 'fp32';

export class LogReads {
  constructor(private readonly queries: Queries) {}

  /** Windows recorded for calibration of a model, newest first. */
  windows(model: string, opts: { limit?: number; device?: string; sinceMs?: number } = {}): WindowRow[] {
    return this.queries.windows(checkName('model', model), opts);
  }

  /** The newest result of each (device, model) pair, ordered by device then model. */
  latestPerDevice(opts: { model?: string } = {}): ResultRow[] {
    return this.queries.latestPerDevice(opts.model === undefined ? undefined : checkName('model', opts.model));
  }

  /** Scores of one device and model over [fromMs, toMs], oldest first, at most maxPoints (see README). */
  series(opts: { device: string; model: string; fromMs: number; toMs: number; maxPoints: number }): SeriesPoint[] {
    const o = opts ?? ({} as typeof opts);
    const fromMs = checkDateTime('fromMs', o.fromMs);
    const toMs = checkDateTime('toMs', o.toMs);
    if (toMs < fromMs) throw new EdgeInferError('E_ARGUMENT', `toMs: expected ≥ fromMs (${fromMs}), got ${toMs}`);
    return this.queries.series({ device: checkName('device', o.device), model: checkName('model', o.model), fromMs, toMs, maxPoints: checkCount('maxPoints', o.maxPoints) });
  }

  /**
   * One device and model over [fromMs, toMs] in at most maxPoints points, for a chart: raw results
   * when they fit, else buckets with min and max (from the minute or hour rollups for wide buckets).
   * An unknown device or model gives no points. See README.
   */
  chart(opts: { device: string; model: string; fromMs: number; toMs: number; maxPoints: number; source?: SeriesSource; field?: ChartField }): SeriesResult {
    const o = opts ?? ({} as typeof opts);
    const fromMs = checkDateTime('fromMs', o.fromMs);
    const toMs = checkDateTime('toMs', o.toMs);
    if (toMs < fromMs) throw new EdgeInferError('E_ARGUMENT', `toMs: expected ≥ fromMs (${fromMs}), got ${toMs}`);
    const maxPoints = checkCount('maxPoints', o.maxPoints);
    if (maxPoints > MAX_CHART_POINTS) throw new EdgeInferError('E_ARGUMENT', `maxPoints: expected at most ${MAX_CHART_POINTS.toLocaleString('en-US')}, got ${maxPoints}`);
    if (o.source !== undefined && !SOURCES.includes(o.source)) throw new EdgeInferError('E_ARGUMENT', `source: expected one of ${SOURCES.join(', ')}, got ${String(o.source)}`);
    if (o.field !== undefined && !FIELDS.includes(o.field)) throw new EdgeInferError('E_ARGUMENT', `field: expected one of ${FIELDS.join(', ')}, got ${String(o.field)}`);
    return this.queries.chart({ device: checkName('device', o.device), model: checkName('model', o.model), fromMs, toMs, maxPoints, source: o.source, field: o.field });
  }

  /** Count, mean and max score and anomalies per epoch-aligned bucket, device and model over [fromMs, toMs]. */
  aggregates(opts: { fromMs: number; toMs: number; bucketMs: number; device?: string; model?: string }): AggregateRow[] {
    const o = opts ?? ({} as typeof opts);
    return this.queries.aggregates({
      fromMs: checkTime('fromMs', o.fromMs),
      toMs: checkTime('toMs', o.toMs),
      bucketMs: checkCount('bucketMs', o.bucketMs),
      device: o.device === undefined ? undefined : checkName('device', o.device),
      model: o.model === undefined ? undefined : checkName('model', o.model),
    });
  }

  /** Alerts, newest first (default limit 100); `active`: only each (device, model)'s active alert (see Queries.alerts). */
  alerts(opts: { fromMs?: number; toMs?: number; device?: string; limit?: number; active?: boolean } = {}): AlertRow[] {
    if (opts.active !== undefined && typeof opts.active !== 'boolean') throw new EdgeInferError('E_ARGUMENT', `active: expected true or false, got ${String(opts.active)}`);
    return this.queries.alerts({
      active: opts.active,
      fromMs: opts.fromMs === undefined ? undefined : checkTime('fromMs', opts.fromMs),
      toMs: opts.toMs === undefined ? undefined : checkTime('toMs', opts.toMs),
      device: opts.device === undefined ? undefined : checkName('device', opts.device),
      limit: checkCount('limit', opts.limit, DEFAULT_LIMIT),
    });
  }

  /** Per (model, variant): results logged since sinceMs (processing time) and latency p50/p99 over the newest results. */
  modelStats(opts: { sinceMs: number }): ModelStatsRow[] {
    const o = opts ?? ({} as typeof opts);
    return this.queries.modelStats({ sinceMs: checkDateTime('sinceMs', o.sinceMs) });
  }

  /** Per (model, variant ≠ reference): windows logged by both since sinceMs (data time) and how many agree. */
  agreement(opts: { sinceMs: number; reference?: string }): AgreementRow[] {
    const o = opts ?? ({} as typeof opts);
    const reference = o.reference === undefined ? DEFAULT_REFERENCE : checkName('reference', o.reference);
    return this.queries.agreement({ sinceMs: checkDateTime('sinceMs', o.sinceMs), reference });
  }

  /** Dead letters, newest first (default limit 100). */
  deadLetters(opts: { limit?: number; sinceMs?: number } = {}): DeadLetterRow[] {
    return this.queries.deadLetters({ sinceMs: opts.sinceMs === undefined ? undefined : checkTime('sinceMs', opts.sinceMs), limit: checkCount('limit', opts.limit, DEFAULT_LIMIT) });
  }
}
