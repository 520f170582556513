// Row counts kept in memory, so counts(), outboxDepth() and journalDepth() never scan a table.
// The outbox and journal counts are taken at open (the writer needs the outbox's for
// outboxLimit; the gateway reads the journal's for its health); the others on the first counts() call.
import type Database from 'better-sqlite3';
import type { StoreCounts } from './types';

export type CountedTable = Exclude<keyof StoreCounts, 'outbox'>;

export const TABLE_OF: Record<keyof StoreCounts, string> = {
  results: 'results',
  alerts: 'alerts',
  deadLetters: 'dead_letters',
  outbox: 'outbox',
  inbound: 'inbound',
  windows: 'windows',
};

export class Tallies {
  outbox: number;
  /** Journal rows (messages journaled, not yet consumed), all pipelines. */
  journal: number;
  private rows: Record<CountedTable, number> | null = null;

  constructor(private readonly db: Database.Database) {
    this.outbox = this.count('outbox');
    this.journal = this.db.prepare('SELECT COUNT(*) FROM journal').pluck().get() as number;
  }

  /** Adds committed changes; a no-op for tables not yet counted. */
  add(table: CountedTable, n: number): void {
    if (this.rows && n !== 0) this.rows[table] += n;
  }

  snapshot(): StoreCounts {
    if (!this.rows) {
      this.rows = { results: this.count('results'), alerts: this.count('alerts'), deadLetters: this.count('deadLetters'), inbound: this.count('inbound'), windows: this.count('windows') };
    }
    return { ...this.rows, outbox: this.outbox };
  }

  private count(table: keyof StoreCounts): number {
    return this.db.prepare(`SELECT COUNT(*) FROM ${TABLE_OF[table]}`).pluck().get() as number;
  }
}
