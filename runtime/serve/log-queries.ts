// The log's read queries on a connection of their own (read-only, in the log reader's worker):
// the same checks and the same answers as ResultStore's read methods, without its writer.
import type Database from 'better-sqlite3';
import { EdgeInferError } from '../errors';
import { StoreError } from '../store';
import type { StoreCounts } from '../store';
// Not in runtime/store's index: the read side needs the store's own statements and argument
// checks (LogReads, which ResultStore uses too), so both give the same rows and the same messages.
import { Queries } from '../store/queries';
import { LogReads } from '../store/reads';
import { SCHEMA_VERSION, schemaVersion } from '../store/schema';
import { TABLE_OF } from '../store/tallies';
import type { TeachInEndedView } from './dashboard-contract';

/** The connection, when its file is at this code's schema version. */
function migrated(db: Database.Database): Database.Database {
  const version = schemaVersion(db);
  if (version !== SCHEMA_VERSION) {
    throw new StoreError('E_STORE_SCHEMA', `${db.name}: schema version ${version}, this edge-infer reads ${SCHEMA_VERSION}; ${version < SCHEMA_VERSION ? 'let the gateway open (and migrate) it first' : 'upgrade edge-infer'}`);
  }
  return db;
}

export class LogQueries extends LogReads {
  private lastEnded: Database.Statement | undefined;

  /** `db` is open on the log (read-only is enough); a file the gateway has not migrated is refused. */
  constructor(private readonly db: Database.Database) {
    super(new Queries(migrated(db)));
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

  /**
   * The newest teach-in of a device's model that has ended (active, superseded, cancelled,
   * failed), or null: the dashboard says with it why a teach-in it saw learning ended without a
   * baseline (a period that gave too few windows, a cancel from elsewhere). The teach-in's own
   * state (runtime/teachin) keeps only what learns and what is active.
   */
  lastTeachIn(device: string, model: string): TeachInEndedView | null {
    if (typeof device !== 'string' || device === '') throw new EdgeInferError('E_ARGUMENT', `lastTeachIn: device: expected a name, got ${JSON.stringify(device) ?? String(device)}`);
    if (typeof model !== 'string' || model === '') throw new EdgeInferError('E_ARGUMENT', `lastTeachIn: model: expected a name, got ${JSON.stringify(model) ?? String(model)}`);
    this.lastEnded ??= this.db.prepare(`SELECT state, reason, windows, target_windows AS targetWindows, target_minutes AS targetMinutes, started_by AS startedBy,
      started_ms AS startedMs, ended_ms AS endedMs, threshold FROM baselines WHERE device = ? AND model = ? AND state <> 'learning' ORDER BY id DESC LIMIT 1`);
    return (this.lastEnded.get(device, model) as TeachInEndedView | undefined) ?? null;
  }
}

/** The queries a log reader answers, by name. */
export const LOG_QUERIES = ['latestPerDevice', 'series', 'chart', 'aggregates', 'alerts', 'modelStats', 'agreement', 'deadLetters', 'windows', 'counts', 'lastTeachIn'] as const;
export type LogQueryName = (typeof LOG_QUERIES)[number];
