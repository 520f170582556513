// Retention: rows older than maxAgeDays go first (inbound keys older than inboundMaxAgeS, when
// set), then the oldest rows of every table until the
// file is back under maxBytes; then the WAL is checkpointed and truncated. Deletes run in chunks
// of their own transactions, so retention never needs much more room than one chunk in the WAL,
// even when the file is at its bound.
import type Database from 'better-sqlite3';
import type { Tallies, CountedTable } from './tallies';

/** Size retention deletes down to this share of maxBytes, so each run frees a useful amount. */
export const LOW_WATER = 0.9;
const CHUNK = 5000;
const MAX_ROUNDS = 40;

interface Aged {
  tally: CountedTable;
  /** Deletes a chunk of rows dated before the cutoff (for the size bound). */
  deleteChunk: Database.Statement;
  /**
   * For maxAgeDays, where it differs: rows in data time must also have been logged before the
   * cutoff, so a backlog measured long ago (or a device whose clock is years behind) is not
   * deleted the minute it is logged, unseen.
   */
  deleteAgedChunk?: Database.Statement;
  oldest: Database.Statement;
  newest: Database.Statement;
}

export class Retention {
  private readonly tables: Aged[];
  private readonly inbound: Aged;
  private readonly dropEmptyStreams: Database.Statement;
  private readonly listStreams: Database.Statement;
  private readonly deleteMinutes: Database.Statement;
  private readonly deleteHours: Database.Statement;

  constructor(
    private readonly db: Database.Database,
    private readonly options: { maxAgeDays: number | null; maxBytes: number | null; inboundMaxAgeS: number | null; minuteRollupDays: number; hourRollupDays: number },
    private readonly tallies: Tallies,
    private readonly streams: Set<string>,
    private readonly streamKey: (device: string, model: string) => string,
  ) {
    const aged = (tally: CountedTable, table: string, key: string, time: string): Aged => ({
      tally,
      deleteChunk: db.prepare(`DELETE FROM ${table} WHERE ${key} IN (SELECT ${key} FROM ${table} WHERE ${time} < ? LIMIT ${CHUNK})`),
      oldest: db.prepare(`SELECT MIN(${time}) FROM ${table}`).pluck(),
      newest: db.prepare(`SELECT MAX(${time}) FROM ${table}`).pluck(),
    });
    // results has no index on time alone: its rows are reached pair by pair through result_streams.
    const byPair = 'result_streams s CROSS JOIN results r ON r.device = s.device AND r.model = s.model';
    const results: Aged = {
      tally: 'results',
      deleteChunk: db.prepare(`DELETE FROM results WHERE id IN (SELECT r.id FROM ${byPair} AND r.time_ms < ? LIMIT ${CHUNK})`),
      deleteAgedChunk: db.prepare(`DELETE FROM results WHERE id IN (SELECT r.id FROM ${byPair} AND r.time_ms < @cutoff AND r.processed_ms < @cutoff LIMIT ${CHUNK})`),
      oldest: db.prepare('SELECT MIN((SELECT MIN(time_ms) FROM results r WHERE r.device = s.device AND r.model = s.model)) FROM result_streams s').pluck(),
      newest: db.prepare('SELECT MAX((SELECT MAX(time_ms) FROM results r WHERE r.device = s.device AND r.model = s.model)) FROM result_streams s').pluck(),
    };
    this.inbound = aged('inbound', 'inbound', 'key', 'received_ms');
    const alerts: Aged = { ...aged('alerts', 'alerts', 'id', 'time_ms'), deleteAgedChunk: db.prepare(`DELETE FROM alerts WHERE id IN (SELECT id FROM alerts WHERE time_ms < @cutoff AND processed_ms < @cutoff LIMIT ${CHUNK})`) };
    this.tables = [results, alerts, aged('deadLetters', 'dead_letters', 'id', 'time_ms'), aged('windows', 'windows', 'id', 'time_ms'), this.inbound];
    this.dropEmptyStreams = db.prepare('DELETE FROM result_streams WHERE NOT EXISTS (SELECT 1 FROM results r WHERE r.device = result_streams.device AND r.model = result_streams.model)');
    this.listStreams = db.prepare('SELECT device, model FROM result_streams');
    this.deleteMinutes = db.prepare(`DELETE FROM result_minutes WHERE (device, model, bucket_ms) IN (SELECT device, model, bucket_ms FROM result_minutes WHERE bucket_ms < ? LIMIT ${CHUNK})`);
    this.deleteHours = db.prepare(`DELETE FROM result_hours WHERE (device, model, bucket_ms) IN (SELECT device, model, bucket_ms FROM result_hours WHERE bucket_ms < ? LIMIT ${CHUNK})`);
  }

  /** Runs retention now; returns the rows deleted. */
  run(nowMs = Date.now()): number {
    let deleted = 0;
    const { maxAgeDays, inboundMaxAgeS } = this.options;
    // Inbound keys only serve to recognise redeliveries, which come within the broker's session:
    // they can go much sooner than the log's rows.
    if (inboundMaxAgeS !== null) deleted += this.deleteOlderThan(nowMs - inboundMaxAgeS * 1000, [this.inbound]);
    if (maxAgeDays !== null) deleted += this.deleteOlderThan(nowMs - maxAgeDays * 86_400_000, inboundMaxAgeS !== null ? this.tables.filter((t) => t !== this.inbound) : this.tables, true);
    if (this.options.maxBytes !== null) deleted += this.shrink(this.options.maxBytes);
    if (deleted > 0) this.forgetEmptyStreams();
    // Not counted in what run() returns: those are raw rows.
    if (maxAgeDays !== null || this.options.maxBytes !== null) this.deleteRollups(nowMs);
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    return deleted;
  }

  /**
   * Rollups outlive the raw rows: they go by their own ages (never sooner than maxAgeDays), and
   * only when raw rows go at all; the size bound leaves them alone (they are small).
   */
  private deleteRollups(nowMs: number): number {
    const keep = (days: number): number => nowMs - Math.max(days, this.options.maxAgeDays ?? 0) * 86_400_000;
    let total = 0;
    for (const [stmt, days] of [[this.deleteMinutes, this.options.minuteRollupDays], [this.deleteHours, this.options.hourRollupDays]] as const) {
      for (;;) {
        const n = stmt.run(keep(days)).changes;
        total += n;
        if (n < CHUNK) break;
      }
    }
    return total;
  }

  /** Bytes the rows take: the file's pages less the free ones (which new rows reuse first). */
  usedBytes(): number {
    const [pageSize, pages, free] = ['page_size', 'page_count', 'freelist_count'].map((p) => this.db.pragma(p, { simple: true }) as number);
    return (pages - free) * pageSize;
  }

  private deleteOlderThan(cutoff: number, tables: readonly Aged[] = this.tables, byAge = false): number {
    let total = 0;
    for (const t of tables) {
      for (;;) {
        const n = byAge && t.deleteAgedChunk ? t.deleteAgedChunk.run({ cutoff }).changes : t.deleteChunk.run(cutoff).changes;
        this.tallies.add(t.tally, -n);
        total += n;
        if (n < CHUNK) break;
      }
    }
    return total;
  }

  /** Deletes the oldest rows of every table (one time cutoff for all) until under LOW_WATER × maxBytes. */
  private shrink(maxBytes: number): number {
    const target = Math.floor(maxBytes * LOW_WATER);
    let deleted = 0;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const used = this.usedBytes();
      if (used <= target) break;
      const span = this.timeSpan();
      if (!span) break; // nothing left to delete but the outbox, which has its own limit
      // Assume rows spread evenly over time, and lean further each round in case they are not.
      const share = Math.min(1, ((used - target) / used) * 1.1 + round * 0.02);
      const cutoff = share >= 1 ? span.newest + 1 : Math.max(span.oldest + (span.newest - span.oldest) * share, span.oldest + 1);
      deleted += this.deleteOlderThan(cutoff);
    }
    // Pages beyond maxBytes go back to the file system; the rest of the free pages stay for reuse,
    // so the file does not shrink and regrow on every run.
    const pageSize = this.db.pragma('page_size', { simple: true }) as number;
    const excess = (this.db.pragma('page_count', { simple: true }) as number) - Math.floor(maxBytes / pageSize);
    if (excess > 0) this.db.pragma(`incremental_vacuum(${excess})`);
    return deleted;
  }

  private timeSpan(): { oldest: number; newest: number } | null {
    let oldest = Infinity;
    let newest = -Infinity;
    for (const t of this.tables) {
      const o = t.oldest.get() as number | null;
      if (o === null) continue;
      oldest = Math.min(oldest, o);
      newest = Math.max(newest, t.newest.get() as number);
    }
    return oldest === Infinity ? null : { oldest, newest };
  }

  private forgetEmptyStreams(): void {
    if (this.dropEmptyStreams.run().changes === 0) return;
    this.streams.clear();
    for (const s of this.listStreams.all() as Array<{ device: string; model: string }>) this.streams.add(this.streamKey(s.device, s.model));
  }
}
