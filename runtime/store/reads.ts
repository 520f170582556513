// The log's read queries with their arguments checked: one layer for the store (on the writer's
// connection) and the log reader (on a read-only connection in a worker), so both give the same
// rows and refuse the same arguments with the same messages.
import { EdgeInferError } from '../errors';
import { type Queries, checkCount, checkDateTime, checkName, checkTime, DEFAULT_LIMIT, MAX_CHART_POINTS } from './queries';
import type { AggregateRow, AlertRow, DeadLetterRow, ResultRow, SeriesPoint, SeriesResult, SeriesSource, WindowRow } from './types';

/** Where chart() may be told to read from (it picks by bucket width when not told). */
const SOURCES: readonly SeriesSource[] = ['raw', 'minute', 'hour'];

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
  chart(opts: { device: string; model: string; fromMs: number; toMs: number; maxPoints: number; source?: SeriesSource }): SeriesResult {
    const o = opts ?? ({} as typeof opts);
    const fromMs = checkDateTime('fromMs', o.fromMs);
    const toMs = checkDateTime('toMs', o.toMs);
    if (toMs < fromMs) throw new EdgeInferError('E_ARGUMENT', `toMs: expected ≥ fromMs (${fromMs}), got ${toMs}`);
    const maxPoints = checkCount('maxPoints', o.maxPoints);
    if (maxPoints > MAX_CHART_POINTS) throw new EdgeInferError('E_ARGUMENT', `maxPoints: expected at most ${MAX_CHART_POINTS.toLocaleString('en-US')}, got ${maxPoints}`);
    if (o.source !== undefined && !SOURCES.includes(o.source)) throw new EdgeInferError('E_ARGUMENT', `source: expected one of ${SOURCES.join(', ')}, got ${String(o.source)}`);
    return this.queries.chart({ device: checkName('device', o.device), model: checkName('model', o.model), fromMs, toMs, maxPoints, source: o.source });
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

  /** Alerts, newest first (default limit 100). */
  alerts(opts: { fromMs?: number; toMs?: number; device?: string; limit?: number } = {}): AlertRow[] {
    return this.queries.alerts({
      fromMs: opts.fromMs === undefined ? undefined : checkTime('fromMs', opts.fromMs),
      toMs: opts.toMs === undefined ? undefined : checkTime('toMs', opts.toMs),
      device: opts.device === undefined ? undefined : checkName('device', opts.device),
      limit: checkCount('limit', opts.limit, DEFAULT_LIMIT),
    });
  }

  /** Dead letters, newest first (default limit 100). */
  deadLetters(opts: { limit?: number; sinceMs?: number } = {}): DeadLetterRow[] {
    return this.queries.deadLetters({ sinceMs: opts.sinceMs === undefined ? undefined : checkTime('sinceMs', opts.sinceMs), limit: checkCount('limit', opts.limit, DEFAULT_LIMIT) });
  }
}
