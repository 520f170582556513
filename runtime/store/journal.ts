// The inbound journal: a message is written here, in its own small transaction, before the broker
// gets its acknowledgement; the commit that logs the last window it fed deletes it. Pending rows
// are what a restarted gateway replays.
import type Database from 'better-sqlite3';
import type { JournalEntry, JournalRow } from './types';

export class Journal {
  private readonly insert: Database.Statement;
  private readonly has: Database.Statement;
  private readonly pending: Database.Statement;
  private readonly count: Database.Statement;
  private readonly cursorRows: Database.Statement;
  private readonly write: (entries: readonly JournalEntry[]) => boolean[];

  constructor(db: Database.Database) {
    this.insert = db.prepare('INSERT INTO journal (pipeline, key, topic, payload, received_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT (pipeline, key) DO NOTHING');
    this.has = db.prepare('SELECT 1 FROM journal WHERE pipeline = ? AND key = ?').pluck();
    this.pending = db.prepare('SELECT id, pipeline, key, topic, payload, received_ms AS receivedMs FROM journal WHERE pipeline = ? AND id > ? ORDER BY id LIMIT ?');
    this.count = db.prepare('SELECT COUNT(*) FROM journal').pluck();
    this.cursorRows = db.prepare('SELECT device, last_window_start_ms AS ms FROM cursors WHERE pipeline = ?');
    this.write = db.transaction((entries: readonly JournalEntry[]) =>
      entries.map((e) => this.insert.run(e.pipeline, e.key, e.topic, Buffer.from(e.payload.buffer, e.payload.byteOffset, e.payload.byteLength), e.receivedMs).changes === 1),
    );
  }

  /** Writes entries in one transaction, committed when this returns; false for a key already journaled. */
  add(entries: readonly JournalEntry[]): boolean[] {
    return this.write(entries);
  }

  contains(pipeline: string, key: string): boolean {
    return this.has.get(pipeline, key) !== undefined;
  }

  /** Pending rows of a pipeline in the order they arrived, after row `afterId`. */
  rows(pipeline: string, afterId: number, limit: number): JournalRow[] {
    return (this.pending.all(pipeline, afterId, limit) as Array<JournalRow & { payload: Buffer }>).map((r) => ({ ...r, payload: new Uint8Array(r.payload) }));
  }

  depth(): number {
    return this.count.get() as number;
  }

  /** Last committed window start per device of a pipeline. */
  cursors(pipeline: string): Map<string, number> {
    return new Map((this.cursorRows.all(pipeline) as Array<{ device: string; ms: number }>).map((r) => [r.device, r.ms]));
  }
}
