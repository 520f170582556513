// What operators write on alerts from the dashboard: acknowledged (who, when) and cleared from the
// active list (who, when). Each mark is its own small transaction on the store's connection,
// committed before the call returns: never part of the writer's batches, so a batch that fails
// and waits for its retry cannot take an operator's acknowledgement with it.
import type Database from 'better-sqlite3';
import { EdgeInferError } from '../errors';
import { StoreError, messageOf } from './errors';
import { type AlertSql, CLEAR_KIND, alertRow } from './queries';
import type { AlertRow } from './types';

export type AlertMark = 'ack' | 'clear';

/** Longest operator name kept with a mark. */
export const MAX_USER_CHARS = 128;

/** Below every time a Date can hold: "no earlier clear" for the episode's lower bound. */
const BEFORE_ALL = Number.MIN_SAFE_INTEGER;

export class AlertMarks {
  private readonly byId: Database.Statement;
  private readonly lastClear: Database.Statement;
  private readonly marks: Record<AlertMark, Database.Statement>;
  private readonly markTx: Database.Transaction<(mark: AlertMark, id: number, user: string, atMs: number) => AlertRow | undefined>;

  constructor(private readonly db: Database.Database) {
    this.byId = db.prepare('SELECT * FROM alerts WHERE id = ?');
    // The episode of an alert starts after the latest 'clear' row of its device and model before it.
    this.lastClear = db.prepare(`SELECT time_ms, id FROM alerts WHERE device = @device AND model = @model AND kind = '${CLEAR_KIND}'
      AND time_ms <= @t AND (time_ms < @t OR id < @id) ORDER BY time_ms DESC, id DESC LIMIT 1`);
    // The alert and the earlier ones of its episode that carry no such mark yet: a second mark keeps the first who and when.
    const mark = (at: string, by: string): Database.Statement => db.prepare(`UPDATE alerts SET ${at} = @at, ${by} = @user
      WHERE device = @device AND model = @model AND ${at} IS NULL
        AND time_ms <= @t AND (time_ms < @t OR id <= @id) AND time_ms >= @ct AND (time_ms > @ct OR id > @cid)`);
    this.marks = { ack: mark('acked_ms', 'acked_by'), clear: mark('cleared_ms', 'cleared_by') };
    this.markTx = db.transaction((kind: AlertMark, id: number, user: string, atMs: number) => {
      const a = this.byId.get(id) as AlertSql | undefined;
      if (a === undefined) return undefined;
      const clear = this.lastClear.get({ device: a.device, model: a.model, t: a.time_ms, id }) as { time_ms: number; id: number } | undefined;
      this.marks[kind].run({ at: atMs, user, device: a.device, model: a.model, t: a.time_ms, id, ct: clear?.time_ms ?? BEFORE_ALL, cid: clear?.id ?? 0 });
      return alertRow(this.byId.get(id) as AlertSql);
    });
  }

  /**
   * Marks alert `id` and the earlier unmarked alerts of its episode (same device and model, since
   * the last 'clear' row). Returns the alert as it now is. Throws E_NOT_FOUND for an unknown id,
   * E_STORE_WRITE when the log cannot write it (lock held past the busy timeout, disk full).
   */
  mark(kind: AlertMark, id: number, user: string, atMs: number): AlertRow {
    // The writer's transactions run synchronously within one call; one still open here would
    // mean this mark was called from inside it, and would commit or roll back with its batch.
    if (this.db.inTransaction) throw new StoreError('E_STORE_WRITE', `alert ${id}: cannot be marked inside another transaction of the log`);
    let row: AlertRow | undefined;
    try {
      row = this.markTx.immediate(kind, id, user, atMs);
    } catch (err) {
      throw new StoreError('E_STORE_WRITE', `alert ${id}: the ${kind === 'ack' ? 'acknowledgement' : 'clear'} by ${user} was not written: ${messageOf(err)}`, { cause: err });
    }
    if (row === undefined) throw new EdgeInferError('E_NOT_FOUND', `alert ${id}: no such alert in the log`);
    return row;
  }
}

/** Checks the arguments of a mark at the public boundary; errors name the argument. */
export function checkMark(id: unknown, user: unknown, atMs: unknown): void {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw new EdgeInferError('E_ARGUMENT', `id: expected an alert id (a whole number ≥ 1), got ${String(id)}`);
  if (typeof user !== 'string' || user.trim() === '') throw new EdgeInferError('E_ARGUMENT', `user: expected a non-empty string naming who, got ${typeof user === 'string' ? `'${user}'` : String(user)}`);
  if (user.length > MAX_USER_CHARS) throw new EdgeInferError('E_ARGUMENT', `user: expected at most ${MAX_USER_CHARS} characters, got ${user.length}`);
  if (typeof atMs !== 'number' || !Number.isFinite(atMs) || Math.abs(atMs) > 8.64e15) throw new EdgeInferError('E_ARGUMENT', `atMs: expected a time in ms since the epoch, got ${String(atMs)}`);
}
