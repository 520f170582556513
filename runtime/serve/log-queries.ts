// The log's read queries on a connection of their own (read-only, in the log reader's worker):
// the same checks and the same answers as ResultStore's read methods, without its writer.
import type Database from 'better-sqlite3';
import { EdgeInferError } from '../errors';
import { StoreError } from '../store';
import type { AggregateRow, AlertRow, DeadLetterRow, ResultRow, StoreCounts, WindowRow } from '../store';
// Not in runtime/store's index: the read side needs the store's own statements and argument
// checks, so both give the same rows and the same messages.
import { Queries, checkCount, checkName, checkTime, DEFAULT_LIMIT } from '../store/queries';
import { SCHEMA_VERSION, schemaVersion } from '../store/schema';
import { TABLE_OF } from '../store/tallies';

/** What series() is given; fields the store adds later pass through to it unchecked. */
export type SeriesOptions = Parameters<Queries['series']>[0];

export class LogQueries {
  private readonly queries: Queries;

  /** `db` is open on the log (read-only is enough); a file the gateway has not migrated is refused. */
  constructor(private readonly db: Database.Database) {
    const version = schemaVersion(db);
    if (version !== SCHEMA_VERSION) {
      throw new StoreError('E_STORE_SCHEMA', `${db.name}: schema version ${version}, this edge-infer reads ${SCHEMA_VERSION}; ${version < SCHEMA_VERSION ? 'let the gateway open (and migrate) it first' : 'upgrade edge-infer'}`);
    }
    this.queries = new Queries(db);
  }

  /** The newest result of each (device, model) pair, ordered by device then model. */
  latestPerDevice(opts: { model?: string } = {}): ResultRow[] {
    return this.queries.latestPerDevice(opts.model === undefined ? undefined : checkName('model', opts.model));
  }

  /** Whatever the store's series() gives for these options, checked as the store checks them. */
  series(opts: SeriesOptions): ReturnType<Queries['series']> {
    const o = opts ?? ({} as SeriesOptions);
    const fromMs = checkTime('fromMs', o.fromMs);
    const toMs = checkTime('toMs', o.toMs);
    if (toMs < fromMs) throw new EdgeInferError('E_ARGUMENT', `toMs: expected ≥ fromMs (${fromMs}), got ${toMs}`);
    return this.queries.series({ ...o, device: checkName('device', o.device), model: checkName('model', o.model), fromMs, toMs, maxPoints: checkCount('maxPoints', o.maxPoints) });
  }

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

  alerts(opts: { fromMs?: number; toMs?: number; device?: string; limit?: number } = {}): AlertRow[] {
    return this.queries.alerts({
      fromMs: opts.fromMs === undefined ? undefined : checkTime('fromMs', opts.fromMs),
      toMs: opts.toMs === undefined ? undefined : checkTime('toMs', opts.toMs),
      device: opts.device === undefined ? undefined : checkName('device', opts.device),
      limit: checkCount('limit', opts.limit, DEFAULT_LIMIT),
    });
  }

  deadLetters(opts: { limit?: number; sinceMs?: number } = {}): DeadLetterRow[] {
    return this.queries.deadLetters({ sinceMs: opts.sinceMs === undefined ? undefined : checkTime('sinceMs', opts.sinceMs), limit: checkCount('limit', opts.limit, DEFAULT_LIMIT) });
  }

  windows(model: string, opts: { limit?: number; device?: string; sinceMs?: number } = {}): WindowRow[] {
    return this.queries.windows(checkName('model', model), opts);
  }

  /**
   * Committed rows per table, counted now (the store keeps its tallies in memory; this connection
   * cannot see them). The outbox still holds messages the broker acknowledged until the next commit.
   */
  counts(): StoreCounts {
    // One read transaction: all counts from the same commit.
    return this.db.transaction(() => {
      const out = {} as StoreCounts;
      for (const [key, table] of Object.entries(TABLE_OF) as Array<[keyof StoreCounts, string]>) {
        out[key] = this.db.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get() as number;
      }
      return out;
    })();
  }
}

/** The queries a log reader answers, by name. */
export const LOG_QUERIES = ['latestPerDevice', 'series', 'aggregates', 'alerts', 'deadLetters', 'windows', 'counts'] as const;
export type LogQueryName = (typeof LOG_QUERIES)[number];
