// The batched writer. Units queue until the batch holds batchRows rows or its oldest unit has
// waited batchMs; then the whole batch goes into one transaction and every unit's promise
// resolves after COMMIT. When the batch fails, it is written again with each unit in its own
// savepoint, so a bad unit is rejected alone and the others still commit. When the transaction
// fails as a whole (disk full, I/O error, another process holding the write lock), nothing of
// it is lost or skipped: the batch stays at the head of the queue and is tried again, with a
// growing pause, before any later unit; its promises settle only when it commits (or the store
// closes).
import type Database from 'better-sqlite3';
import { Problems, type ProblemWords, clockText, durationText } from '../problems';
import type { DeliveryOp } from './deliveries';
import { StoreError, messageOf } from './errors';
import type { HeldMessages, HeldOutcome } from './held-messages';
import { RollupDelta, RollupWriter } from './rollups';
import type { Tallies } from './tallies';
import type { CommitUnit, JournalEntry, StoreStats } from './types';

/** Dead-letter payloads are cut to this many bytes (and flagged). */
export const DEAD_LETTER_MAX_BYTES = 1024 * 1024;

interface Pending {
  unit: CommitUnit;
  rows: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** What a transaction changed, applied to the tallies only once it has committed. */
interface Delta {
  rows: number;
  results: number;
  alerts: number;
  deadLetters: number;
  windows: number;
  inbound: number;
  outboxAdded: number;
  outboxAcked: number;
  outboxDropped: number;
  journalConsumed: number;
  /** (device, model) pairs first seen in this transaction. */
  streams: Set<string>;
  /** Its results folded per (device, model, minute), written once at the end of the transaction. */
  rollups: RollupDelta;
  /** What it did with the messages held for it (journal 'when-needed'). */
  held?: HeldOutcome;
}

const newDelta = (): Delta => ({ rows: 0, results: 0, alerts: 0, deadLetters: 0, windows: 0, inbound: 0, outboxAdded: 0, outboxAcked: 0, outboxDropped: 0, journalConsumed: 0, streams: new Set(), rollups: new RollupDelta() });

function merge(into: Delta, d: Delta): void {
  into.rows += d.rows;
  into.results += d.results;
  into.alerts += d.alerts;
  into.deadLetters += d.deadLetters;
  into.windows += d.windows;
  into.inbound += d.inbound;
  into.outboxAdded += d.outboxAdded;
  into.journalConsumed += d.journalConsumed;
  for (const s of d.streams) into.streams.add(s);
  into.rollups.merge(d.rollups);
}

const PARTS = ['inbound', 'results', 'alerts', 'deadLetters', 'outbox', 'windows', 'consumed', 'cursors', 'alertStates'] as const;

/** Rows a unit writes; also checks that each part, when present, is an array. */
export function unitRows(unit: CommitUnit): number {
  let rows = 0;
  for (const part of PARTS) {
    const list = unit[part];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new TypeError(`unit.${part}: expected an array, got ${typeof list}`);
    rows += list.length;
  }
  return rows;
}

export const streamKey = (device: string, model: string): string => `${device}\u0000${model}`;

function bytesOf(data: Uint8Array, what: string, max = Infinity): Buffer {
  if (!(data instanceof Uint8Array)) throw new TypeError(`${what}: expected a Uint8Array, got ${data === null ? 'null' : typeof data}`);
  return Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, max));
}

function checkDims(features: unknown, dims: unknown): void {
  if (!(features instanceof Float32Array)) throw new TypeError(`features: expected a Float32Array, got ${features === null ? 'null' : typeof features}`);
  if (!Array.isArray(dims) || dims.some((d) => !Number.isSafeInteger(d) || d < 1)) throw new TypeError(`dims: expected whole numbers ≥ 1, got ${JSON.stringify(dims)}`);
  const size = dims.reduce((a: number, b: number) => a * b, 1);
  if (size !== features.length) throw new TypeError(`dims [${dims.join(', ')}] hold ${size} values but features has ${features.length}`);
}

export interface WriterOptions {
  batchRows: number;
  batchMs: number;
  outboxLimit: number;
  /**
   * Told when a batch fails as a whole (once per run of failures, with a reminder every 5 minutes
   * while it lasts) and when it commits again.
   */
  onError?: (err: Error) => void;
}

const tries = (n: number): string => `${n} failed ${n === 1 ? 'try' : 'tries'}`;

/** How a run of failed commits is reported: the first failure as it came, then its end. */
const COMMITS_FAILING: ProblemWords = {
  code: 'E_STORE_WRITE',
  lasting: (p) => `the log still cannot commit after ${durationText(p.forMs)} (since ${clockText(p.sinceMs)}), ${tries(p.count)}; last: ${p.last.message}`,
  ended: (p) => `the log commits again after ${durationText(p.forMs)} failing (since ${clockText(p.sinceMs)}), ${tries(p.count)}`,
};

/**
 * SQLite's answers that say the file or its lock, not the unit, is at fault (busy, locked, disk
 * full, I/O error, read-only, out of memory): the whole batch waits and is tried again.
 */
export function isEnvironmental(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^SQLITE_(BUSY|LOCKED|FULL|IOERR|READONLY|NOMEM|CANTOPEN|PROTOCOL)/.test(code);
}

/** SQLite's code of a failure (SQLITE_BUSY, SQLITE_FULL, ...): a new one while commits fail is reported. */
function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** First and longest pause before a failed batch is tried again, in ms. */
export const RETRY_FIRST_MS = 100;
export const RETRY_MAX_MS = 5000;

export class BatchWriter {
  private queue: Pending[] = [];
  private queuedRows = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Outbox ids acknowledged by the broker, deleted with the next batch. */
  private readonly acks = new Set<number>();
  readonly stats: StoreStats = { commits: 0, rows: 0, lastCommitMs: 0, lastCommitRows: 0, failedUnits: 0, droppedOutbox: 0, retries: 0, failingSinceMs: null };
  /** Set by hurry(): batches no longer wait for batchMs (the gateway is stopping). */
  private hurried = false;
  /** The pause before the next try while batches fail as a whole (0: not failing). */
  private retryMs = 0;
  /** A run of failed commits, reported once, then at its end. */
  private readonly problems: Problems;

  private readonly insertResult: Database.Statement;
  private readonly insertStream: Database.Statement;
  private readonly insertAlert: Database.Statement;
  private readonly insertDeadLetter: Database.Statement;
  private readonly insertOutbox: Database.Statement;
  private readonly insertInbound: Database.Statement;
  private readonly insertWindow: Database.Statement;
  private readonly deleteOutbox: Database.Statement;
  private readonly deleteJournal: Database.Statement;
  private readonly upsertCursor: Database.Statement;
  private readonly upsertAlertState: Database.Statement;
  private readonly deleteAlertState: Database.Statement;
  private readonly dropOldestOutbox: Database.Statement;
  private readonly outboxHas: Database.Statement;
  private readonly rollups: RollupWriter;
  private readonly writeAll: (batch: Pending[], acks: number[]) => Delta;
  private readonly writeIsolated: (batch: Pending[], acks: number[], failed: Map<Pending, Error>) => Delta;

  constructor(
    private readonly db: Database.Database,
    private readonly options: WriterOptions,
    private readonly tallies: Tallies,
    /** (device, model) pairs already in result_streams. */
    private readonly streams: Set<string>,
    /** Journal 'when-needed': messages whose acknowledgement waits for a batch (none: 'always'). */
    private readonly held?: HeldMessages,
  ) {
    this.problems = new Problems((err) => this.options.onError?.(err));
    this.insertResult = db.prepare(
      `INSERT INTO results (time_ms, device, model, variant, score, label, anomaly, outputs, latency_ms, window_start_ms, window_end_ms, message_keys, processed_ms, rms, model_sha256)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertStream = db.prepare('INSERT INTO result_streams (device, model) VALUES (?, ?) ON CONFLICT DO NOTHING');
    this.insertAlert = db.prepare('INSERT INTO alerts (time_ms, device, model, variant, kind, label, score, threshold, message, processed_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.insertDeadLetter = db.prepare('INSERT INTO dead_letters (time_ms, topic, device, reason, code, payload, payload_bytes, truncated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    this.insertOutbox = db.prepare('INSERT INTO outbox (topic, payload, qos, retain, created_ms) VALUES (?, ?, ?, ?, ?)');
    // Only a repeated key is ignored (a redelivery); a missing topic still fails the unit.
    this.insertInbound = db.prepare('INSERT INTO inbound (key, topic, received_ms) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING');
    this.insertWindow = db.prepare('INSERT INTO windows (time_ms, device, model, dims, features) VALUES (?, ?, ?, ?, ?)');
    this.deleteOutbox = db.prepare('DELETE FROM outbox WHERE id = ?');
    this.deleteJournal = db.prepare('DELETE FROM journal WHERE pipeline = ? AND key = ?');
    // A cursor only moves forward: batches of one device can commit out of window order.
    this.upsertCursor = db.prepare(
      `INSERT INTO cursors (pipeline, device, last_window_start_ms, last_window_keys) VALUES (?, ?, ?, ?)
       ON CONFLICT (pipeline, device) DO UPDATE SET last_window_start_ms = excluded.last_window_start_ms, last_window_keys = excluded.last_window_keys
       WHERE excluded.last_window_start_ms >= cursors.last_window_start_ms`,
    );
    // Units carry alert states in the order their windows were judged: the last one written wins.
    this.upsertAlertState = db.prepare('INSERT INTO alert_states (pipeline, device, state) VALUES (?, ?, ?) ON CONFLICT (pipeline, device) DO UPDATE SET state = excluded.state');
    this.deleteAlertState = db.prepare('DELETE FROM alert_states WHERE pipeline = ? AND device = ?');
    this.dropOldestOutbox = db.prepare('DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)');
    this.outboxHas = db.prepare('SELECT 1 FROM outbox WHERE id = ?').pluck();
    this.rollups = new RollupWriter(db);

    this.writeAll = db.transaction((batch: Pending[], acks: number[]) => {
      const d = newDelta();
      this.applyAcks(acks, d);
      for (const p of batch) this.writeUnit(p.unit, d);
      d.held = this.held?.write(batch.map((p) => p.unit.consumed));
      this.rollups.write(d.rollups);
      this.enforceOutboxLimit(d);
      return d;
    });
    // Called inside writeIsolated, so better-sqlite3 runs it as a savepoint.
    const writeOne = db.transaction((unit: CommitUnit, d: Delta) => this.writeUnit(unit, d));
    this.writeIsolated = db.transaction((batch: Pending[], acks: number[], failed: Map<Pending, Error>) => {
      const d = newDelta();
      this.applyAcks(acks, d);
      for (const p of batch) {
        const ud = newDelta();
        try {
          writeOne(p.unit, ud);
          merge(d, ud);
        } catch (err) {
          // SQLite rolled back the whole transaction, or the file is at fault: the batch waits.
          if (!db.inTransaction || isEnvironmental((err as { cause?: unknown }).cause ?? err)) throw err;
          failed.set(p, err as Error);
        }
      }
      // Only the units that committed retire messages, and only they are in d's rollups.
      d.held = this.held?.write(batch.filter((p) => !failed.has(p)).map((p) => p.unit.consumed));
      this.rollups.write(d.rollups);
      this.enforceOutboxLimit(d);
      return d;
    });
  }

  /** Queues a unit; commits at once when the batch is full. */
  enqueue(unit: CommitUnit, rows: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ unit, rows, resolve, reject });
      this.queuedRows += rows;
      if (this.queuedRows >= this.options.batchRows) this.flush();
      else this.schedule();
    });
  }

  /** Journal 'when-needed': holds a message until a batch retires or journals it (see held-messages.ts). */
  holdMessage(entry: JournalEntry): Promise<boolean> {
    const held = this.held!.hold(entry);
    this.schedule();
    return held;
  }

  /** Journal 'when-needed': a packet-id record, written with the next batch. */
  recordDelivery(op: DeliveryOp): Promise<void> {
    const recorded = this.held!.record(op);
    this.schedule();
    return recorded;
  }

  /** Marks an outbox message sent; it is deleted with the next batch. False when it is not in the outbox. */
  ack(id: number): boolean {
    if (this.acks.has(id)) return true;
    if (this.outboxHas.get(id) === undefined) return false;
    this.acks.add(id);
    this.schedule();
    return true;
  }

  isAcked(id: number): boolean {
    return this.acks.has(id);
  }

  get pendingAcks(): number {
    return this.acks.size;
  }

  /**
   * Commits everything queued now, synchronously; promises settle on the next microtask. While a
   * batch fails as a whole, only the retry timer (or `force`, at close) tries again: a full
   * batch arriving meanwhile waits rather than hammering a full disk or a held lock.
   */
  flush(force = false): void {
    if (this.retryMs > 0 && !force && this.timer) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.queue.length === 0 && this.acks.size === 0 && !this.held?.pending) return;
    const batch = this.queue;
    const acks = [...this.acks];
    this.queue = [];
    this.queuedRows = 0;

    const t0 = performance.now();
    const failed = new Map<Pending, Error>();
    let d: Delta;
    try {
      d = this.writeAll(batch, acks);
    } catch (err) {
      // A held lock or a full disk fails every unit alike: no point trying them one by one.
      if (isEnvironmental(err)) {
        this.failedWhole(batch, err);
        return;
      }
      try {
        d = this.writeIsolated(batch, acks, failed);
      } catch (err) {
        this.failedWhole(batch, err);
        return;
      }
    }
    if (this.retryMs > 0) {
      this.retryMs = 0;
      this.stats.failingSinceMs = null;
      this.problems.cleared('commit');
    }
    this.stats.lastCommitMs = performance.now() - t0;
    this.applyDelta(d, acks);
    if (d.held) this.held!.settle(d.held);
    // Messages still unfinished are looked at again by the next batch, a whole interval on.
    if (this.held?.pending) this.schedule();
    this.stats.failedUnits += failed.size;
    for (const p of batch) {
      const err = failed.get(p);
      if (err) p.reject(err instanceof StoreError ? err : new StoreError('E_STORE_UNIT', `unit not committed: ${messageOf(err)}`, { cause: err }));
      else p.resolve();
    }
  }

  /** A batch whose transaction failed as a whole goes back to the head of the queue, to be tried again. */
  private failedWhole(batch: Pending[], err: unknown): void {
    this.queue = batch.concat(this.queue);
    this.queuedRows = this.queue.reduce((n, p) => n + p.rows, 0);
    this.stats.retries++;
    if (this.retryMs === 0) this.stats.failingSinceMs = Date.now();
    this.problems.occurred('commit', new StoreError('E_STORE_WRITE', `the log could not commit ${batch.length} unit(s): ${messageOf(err)}; they are kept and tried again (nothing later is committed before them)`, { cause: err }), COMMITS_FAILING, sqliteCode(err));
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs === 0 ? RETRY_FIRST_MS : this.retryMs * 2);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush(true);
    }, this.retryMs);
  }

  /** Units waiting to be committed (held back by a failing batch, or waiting for their batch). */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * At close: one last try; units that still cannot be committed are rejected with E_STORE_WRITE
   * (their messages stay journaled, so the next start replays them).
   */
  close(): void {
    this.flush(true);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // Held messages were never acknowledged: the broker brings them again at the next start.
    if (this.held?.pending) this.held.abandon(new StoreError('E_STORE_CLOSED', 'the log closed before this message was logged; it stays unacknowledged at the broker'));
    if (this.queue.length === 0) return;
    const error = new StoreError('E_STORE_WRITE', `${this.queue.length} unit(s) were not committed before the log closed; their messages stay journaled for the next start`);
    this.stats.failedUnits += this.queue.length;
    for (const p of this.queue) p.reject(error);
    this.queue = [];
    this.queuedRows = 0;
  }

  private schedule(): void {
    if (!this.timer) this.timer = setTimeout(() => this.flush(), this.hurried ? 0 : this.options.batchMs);
  }

  /**
   * From now on a batch commits as soon as it can instead of after batchMs: a stopping gateway
   * must not wait a long batch interval for each of its last commits.
   */
  hurry(): void {
    this.hurried = true;
    // On a timer, not here: a commit blocked by a lock held elsewhere waits out the busy timeout
    // synchronously, and the caller's own bound on the stop must be running by then.
    if (this.timer && this.retryMs === 0) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.flush(), 0);
    }
  }

  private applyDelta(d: Delta, acks: number[]): void {
    const t = this.tallies;
    t.add('results', d.results);
    t.add('alerts', d.alerts);
    t.add('deadLetters', d.deadLetters);
    t.add('windows', d.windows);
    t.add('inbound', d.inbound);
    t.outbox += d.outboxAdded - d.outboxAcked - d.outboxDropped;
    t.journal -= d.journalConsumed;
    for (const id of acks) this.acks.delete(id);
    for (const s of d.streams) this.streams.add(s);
    this.stats.commits++;
    this.stats.rows += d.rows;
    this.stats.lastCommitRows = d.rows;
    this.stats.droppedOutbox += d.outboxDropped;
  }

  private applyAcks(acks: number[], d: Delta): void {
    for (const id of acks) d.outboxAcked += this.deleteOutbox.run(id).changes;
  }

  /** Past outboxLimit, the oldest messages make room for the new ones. */
  private enforceOutboxLimit(d: Delta): void {
    const over = this.tallies.outbox - d.outboxAcked + d.outboxAdded - this.options.outboxLimit;
    if (over > 0) d.outboxDropped = this.dropOldestOutbox.run(over).changes;
  }

  /** Writes one unit; an error names the record that failed. */
  private writeUnit(unit: CommitUnit, d: Delta): void {
    let part = 'unit';
    let i = 0;
    try {
      const { inbound, results, alerts, deadLetters, outbox, windows, consumed, cursors, alertStates } = unit;
      const now = Date.now();
      if (inbound) {
        part = 'inbound';
        for (i = 0; i < inbound.length; i++) {
          const m = inbound[i];
          d.inbound += this.insertInbound.run(m.key, m.topic, m.receivedMs).changes;
        }
        d.rows += inbound.length;
      }
      if (results) {
        part = 'results';
        for (i = 0; i < results.length; i++) {
          const r = results[i];
          if (typeof r.anomaly !== 'boolean') throw new TypeError(`anomaly: expected a boolean, got ${typeof r.anomaly}`);
          const rms = r.rms ?? null;
          // A NaN would be stored as NULL but folded into the rollups as a number: refused alike.
          if (rms !== null && (typeof rms !== 'number' || !Number.isFinite(rms))) throw new TypeError(`rms: expected a finite number or null, got ${String(rms)}`);
          this.insertResult.run(
            r.timeMs, r.device, r.model, r.variant, r.score, r.label ?? null, r.anomaly ? 1 : 0,
            JSON.stringify(r.outputs), r.latencyMs, r.windowStartMs, r.windowEndMs, JSON.stringify(r.messageKeys), r.processedMs ?? now, rms, r.modelSha256 ?? null,
          );
          const key = streamKey(r.device, r.model);
          d.rollups.add(key, r.device, r.model, r.timeMs, r.score, r.label ?? null, r.anomaly, rms);
          if (!this.streams.has(key) && !d.streams.has(key)) {
            this.insertStream.run(r.device, r.model);
            d.streams.add(key);
          }
        }
        d.results += results.length;
        d.rows += results.length;
      }
      if (alerts) {
        part = 'alerts';
        for (i = 0; i < alerts.length; i++) {
          const a = alerts[i];
          this.insertAlert.run(a.timeMs, a.device, a.model, a.variant, a.kind, a.label ?? null, a.score, a.threshold ?? null, a.message, a.processedMs ?? now);
        }
        d.alerts += alerts.length;
        d.rows += alerts.length;
      }
      if (deadLetters) {
        part = 'deadLetters';
        for (i = 0; i < deadLetters.length; i++) {
          const l = deadLetters[i];
          const payload = bytesOf(l.payload, 'payload', DEAD_LETTER_MAX_BYTES);
          const size = l.payload.byteLength;
          this.insertDeadLetter.run(l.timeMs, l.topic, l.device ?? null, l.reason, l.code, payload, size, size > DEAD_LETTER_MAX_BYTES ? 1 : 0);
        }
        d.deadLetters += deadLetters.length;
        d.rows += deadLetters.length;
      }
      if (outbox) {
        part = 'outbox';
        for (i = 0; i < outbox.length; i++) {
          const m = outbox[i];
          const payload = typeof m.payload === 'string' ? m.payload : bytesOf(m.payload, 'payload');
          this.insertOutbox.run(m.topic, payload, m.qos, m.retain ? 1 : 0, now);
        }
        d.outboxAdded += outbox.length;
        d.rows += outbox.length;
      }
      if (windows) {
        part = 'windows';
        for (i = 0; i < windows.length; i++) {
          const w = windows[i];
          checkDims(w.features, w.dims);
          this.insertWindow.run(w.timeMs, w.device, w.model, JSON.stringify(w.dims), bytesOf(new Uint8Array(w.features.buffer, w.features.byteOffset, w.features.byteLength), 'features'));
        }
        d.windows += windows.length;
        d.rows += windows.length;
      }
      if (consumed) {
        part = 'consumed';
        for (i = 0; i < consumed.length; i++) d.journalConsumed += this.deleteJournal.run(consumed[i].pipeline, consumed[i].key).changes;
        d.rows += consumed.length;
      }
      if (cursors) {
        part = 'cursors';
        for (i = 0; i < cursors.length; i++) {
          const c = cursors[i];
          if (!Number.isFinite(c.lastWindowStartMs)) throw new TypeError(`lastWindowStartMs: expected a finite number, got ${c.lastWindowStartMs}`);
          this.upsertCursor.run(c.pipeline, c.device, c.lastWindowStartMs, c.lastWindowKeys ? JSON.stringify(c.lastWindowKeys) : null);
        }
        d.rows += cursors.length;
      }
      if (alertStates) {
        part = 'alertStates';
        for (i = 0; i < alertStates.length; i++) {
          const a = alertStates[i];
          if (a.state === null) this.deleteAlertState.run(a.pipeline, a.device);
          else this.upsertAlertState.run(a.pipeline, a.device, JSON.stringify(a.state));
        }
        d.rows += alertStates.length;
      }
    } catch (err) {
      if (!this.db.inTransaction || isEnvironmental(err)) throw err;
      const where = part === 'unit' ? 'unit' : `${part}[${i}]`;
      throw new StoreError('E_STORE_UNIT', `unit not committed: ${where}: ${messageOf(err)}`, { cause: err });
    }
  }
}
