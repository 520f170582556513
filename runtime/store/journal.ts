// The inbound journal: a message is written here before the broker gets its acknowledgement, with
// the other messages that arrived in the same turn of the event loop (a group commit); the commit
// that logs the last window it fed deletes it. Pending rows are what a restarted gateway replays.
import type Database from 'better-sqlite3';
import type { Tallies } from './tallies';
import type { DeviceCursor, JournalEntry, JournalRow } from './types';

export class Journal {
  private readonly insert: Database.Statement;
  private readonly has: Database.Statement;
  private readonly pending: Database.Statement;
  private readonly cursorRows: Database.Statement;
  private readonly attempt: Database.Statement;
  private readonly alertStateRows: Database.Statement;
  private readonly forgive: Database.Statement;
  private readonly write: (entries: readonly JournalEntry[]) => boolean[];

  constructor(db: Database.Database, private readonly tallies: Tallies) {
    this.insert = db.prepare('INSERT INTO journal (pipeline, key, topic, payload, received_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT (pipeline, key) DO NOTHING');
    this.has = db.prepare('SELECT 1 FROM journal WHERE pipeline = ? AND key = ?').pluck();
    this.pending = db.prepare('SELECT id, pipeline, key, topic, payload, received_ms AS receivedMs, attempts FROM journal WHERE pipeline = ? AND id > ? ORDER BY id LIMIT ?');
    this.attempt = db.prepare('UPDATE journal SET attempts = attempts + 1 WHERE pipeline = ? AND id >= ? AND id <= ?');
    this.forgive = db.prepare('UPDATE journal SET attempts = 0 WHERE pipeline = ? AND id >= ? AND id <= ? AND attempts > 0');
    this.alertStateRows = db.prepare('SELECT device, state FROM alert_states WHERE pipeline = ?');
    this.cursorRows = db.prepare('SELECT device, last_window_start_ms AS ms, last_window_keys AS keys FROM cursors WHERE pipeline = ?');
    this.write = db.transaction((entries: readonly JournalEntry[]) =>
      entries.map((e) => this.insert.run(e.pipeline, e.key, e.topic, Buffer.from(e.payload.buffer, e.payload.byteOffset, e.payload.byteLength), e.receivedMs).changes === 1),
    );
  }

  /** Writes entries in one transaction, committed when this returns; false for a key already journaled. */
  add(entries: readonly JournalEntry[]): boolean[] {
    return this.counted(this.write(entries));
  }

  /**
   * Writes entries in the caller's transaction; call counted() with the result once it commits.
   * (write() is itself a transaction, which nests as a savepoint.)
   */
  insertAll(entries: readonly JournalEntry[]): boolean[] {
    return this.write(entries);
  }

  /** Adds the rows of a committed write to the tally. */
  counted(fresh: boolean[]): boolean[] {
    for (const f of fresh) if (f) this.tallies.journal++;
    return fresh;
  }

  contains(pipeline: string, key: string): boolean {
    return this.has.get(pipeline, key) !== undefined;
  }

  /** Pending rows of a pipeline in the order they arrived, after row `afterId`. */
  rows(pipeline: string, afterId: number, limit: number): JournalRow[] {
    // better-sqlite3 hands each BLOB over as a Buffer of its own: no copy needed.
    return this.pending.all(pipeline, afterId, limit) as JournalRow[];
  }

  /** A replay starts on rows [fromId, toId]: counted before, so a crash while on them is remembered. */
  attempted(pipeline: string, fromId: number, toId: number): void {
    this.attempt.run(pipeline, fromId, toId);
  }

  /** A replay went through rows [fromId, toId] without the process stopping: they are not to blame. */
  forgiven(pipeline: string, fromId: number, toId: number): void {
    this.forgive.run(pipeline, fromId, toId);
  }

  /** Rows pending, all pipelines: a tally (added here, taken off by the commits that consume). */
  depth(): number {
    return this.tallies.journal;
  }

  /** Last committed window start per device of a pipeline. */
  cursors(pipeline: string): Map<string, number> {
    return new Map(this.rowsOfCursors(pipeline).map((r) => [r.device, r.ms]));
  }

  /** Last committed window per device of a pipeline: its start and its message keys. */
  cursorWindows(pipeline: string): Map<string, DeviceCursor> {
    return new Map(this.rowsOfCursors(pipeline).map((r) => [r.device, { startMs: r.ms, keys: r.keys === null ? null : (JSON.parse(r.keys) as string[]) }]));
  }

  /** Each device's alert state of a pipeline as last committed (rows that are not JSON are left out). */
  alertStates(pipeline: string): Map<string, unknown> {
    const states = new Map<string, unknown>();
    for (const r of this.alertStateRows.all(pipeline) as Array<{ device: string; state: string }>) {
      try {
        states.set(r.device, JSON.parse(r.state));
      } catch {
        // A row no code of ours wrote: the device starts with no alert state, as a new one does.
      }
    }
    return states;
  }

  private rowsOfCursors(pipeline: string): Array<{ device: string; ms: number; keys: string | null }> {
    return this.cursorRows.all(pipeline) as Array<{ device: string; ms: number; keys: string | null }>;
  }
}
