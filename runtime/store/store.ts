// ResultStore: the gateway's SQLite log. One connection, WAL, one batched writer; see README.md
// for what each call promises.
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { EdgeInferError } from '../errors';
import { StoreError, messageOf } from './errors';
import { type ResolvedOptions, resolveOptions } from './options';
import { AlertMarks, checkMark } from './alert-marks';
import { Deliveries, type DeliveryOp, DeliveryStatements } from './deliveries';
import { Baselines } from './baselines';
import { DeviceModels } from './device-models';
import { ModelUpdates } from './model-updates';
import { SubscriptionGrants } from './grants';
import { IncomingMessages } from './incoming';
import { HeldMessages } from './held-messages';
import { Journal } from './journal';
import { Queries, checkCount, checkName } from './queries';
import { LogReads } from './reads';
import { Retention } from './retention';
import { SCHEMA_VERSION, migrate, schemaVersion } from './schema';
import { Tallies } from './tallies';
import type {
  DeviceCursor,
  AggregateRow, AgreementRow, AlertRow, ChartField, CommitUnit, ModelStatsRow, DeadLetterRow, JournalEntry, JournalRow, OutboxEntry, ResultRow, SeriesPoint, SeriesResult, SeriesSource, StoreCounts, StoreOptions, StoreStats, WindowRow,
} from './types';
import { BatchWriter, streamKey, unitRows } from './writer';

/** Most messages in one journal group commit. */
export const JOURNAL_GROUP_MAX = 1000;

/** How long a statement waits for a lock held by another connection (a backup, the sqlite3 shell). */
export const BUSY_TIMEOUT_MS = 5000;
/**
 * Pages in the WAL before SQLite checkpoints it on its own: 16 MiB at 4 KiB pages. Four times
 * SQLite's default, for about 5 % more inserts per second (fewer checkpoints and their fsyncs).
 */
export const WAL_AUTOCHECKPOINT_PAGES = 4000;
/** After a checkpoint, a WAL larger than this is truncated to it. */
export const WAL_SIZE_LIMIT = 32 * 1024 * 1024;


function openDatabase(o: ResolvedOptions, file: string): Database.Database {
  try {
    mkdirSync(path.dirname(file), { recursive: true });
  } catch (err) {
    throw new StoreError('E_STORE_OPEN', `${file}: cannot create its folder: ${messageOf(err)}`, { cause: err });
  }
  let db: Database.Database;
  try {
    db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    throw new StoreError('E_STORE_OPEN', `${file}: cannot open: ${messageOf(err)}`, { cause: err });
  }
  try {
    let version: number;
    try {
      version = schemaVersion(db);
    } catch (err) {
      throw new StoreError('E_STORE_OPEN', `${file}: not a SQLite database (${messageOf(err)})`, { cause: err });
    }
    if (version > SCHEMA_VERSION) migrate(db, file); // refuses, before anything is written
    const empty = version === 0 && (db.prepare("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table'").pluck().get() as number) === 0;
    // Only possible before the first table; lets retention give pages back to the file system.
    if (empty) db.pragma('auto_vacuum = INCREMENTAL');
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new StoreError('E_STORE_OPEN', `${file}: cannot switch to WAL mode (journal mode is ${String(mode)})`);
    db.pragma(`synchronous = ${o.sync.toUpperCase()}`);
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
    migrate(db, file);
    return db;
  } catch (err) {
    db.close();
    if (err instanceof StoreError) throw err;
    throw new StoreError('E_STORE_OPEN', `${file}: cannot open: ${messageOf(err)}`, { cause: err });
  }
}

export class ResultStore {
  /** The database file, absolute. */
  readonly path: string;
  private closed: Promise<void> | null = null;
  private journalQueue: Array<{ entry: JournalEntry; resolve: (fresh: boolean) => void; reject: (err: Error) => void }> = [];
  /** MQTT delivery notes and forgets, written in the journal's next group commit. */
  private deliveryQueue: Array<{ op: DeliveryOp; resolve: () => void; reject: (err: Error) => void }> = [];
  private journalTimer: NodeJS.Immediate | undefined;
  private readonly deliveryStatements: DeliveryStatements;
  private readonly groupCommit: (entries: readonly JournalEntry[], ops: readonly DeliveryOp[]) => { fresh: boolean[]; inboundDeleted: number };
  /** Journal group commits and the messages they held (journalStats). */
  private readonly journalCounts = { commits: 0, messages: 0 };
  /** The read queries, with their arguments checked (the log reader's worker uses the same). */
  private readonly reads: LogReads;
  private readonly retentionTimer: NodeJS.Timeout | null = null;
  private readonly alertMarks: AlertMarks;

  private constructor(
    private readonly db: Database.Database,
    private readonly options: ResolvedOptions,
    private readonly tallies: Tallies,
    private readonly writer: BatchWriter,
    private readonly queries: Queries,
    private readonly retention: Retention,
    private readonly inboundJournal: Journal,
  ) {
    this.path = db.name;
    this.reads = new LogReads(queries);
    this.alertMarks = new AlertMarks(db);
    this.deliveryStatements = new DeliveryStatements(db);
    this.groupCommit = db.transaction((entries: readonly JournalEntry[], ops: readonly DeliveryOp[]) => {
      const inboundDeleted = this.deliveryStatements.apply(ops);
      return { fresh: entries.length ? this.inboundJournal.insertAll(entries) : [], inboundDeleted };
    });
    const { maxAgeDays, maxBytes, inboundMaxAgeS, everyMs } = options.retention;
    if ((maxAgeDays !== null || maxBytes !== null || inboundMaxAgeS !== null) && everyMs > 0) {
      this.retentionTimer = setInterval(() => {
        try {
          this.applyRetention();
        } catch (err) {
          options.onError(err instanceof Error ? err : new Error(String(err)));
        }
      }, everyMs).unref();
    }
  }

  /** Opens (creating or migrating) the store. Throws E_ARGUMENT for bad options, StoreError for the file. */
  static open(options: StoreOptions): ResultStore {
    const o = resolveOptions(options);
    const db = openDatabase(o, path.resolve(o.path));
    try {
      const tallies = new Tallies(db);
      const streams = new Set<string>();
      for (const s of db.prepare('SELECT device, model FROM result_streams').all() as Array<{ device: string; model: string }>) streams.add(streamKey(s.device, s.model));
      const journal = new Journal(db, tallies);
      const held = o.journal === 'when-needed' ? new HeldMessages(journal, new DeliveryStatements(db), tallies, o.batchMs) : undefined;
      const writer = new BatchWriter(db, o, tallies, streams, held);
      const retention = new Retention(db, o.retention, tallies, streams, streamKey);
      return new ResultStore(db, o, tallies, writer, new Queries(db), retention, journal);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Queues a unit; resolves once it is committed, rejects (and nothing of it is written) if it cannot be. */
  commit(unit: CommitUnit): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError('commit'));
    let rows: number;
    try {
      if (typeof unit !== 'object' || unit === null || Array.isArray(unit)) throw new TypeError(`unit: expected an object, got ${unit === null ? 'null' : typeof unit}`);
      rows = unitRows(unit);
    } catch (err) {
      return Promise.reject(new EdgeInferError('E_ARGUMENT', messageOf(err)));
    }
    return this.writer.enqueue(unit, rows);
  }

  /**
   * Journals messages a pipeline took, in one transaction committed (as the sync mode promises)
   * when this returns: only then may they be acknowledged to the broker. Returns, per entry,
   * false when that pipeline already journaled the key (a redelivery still pending).
   */
  journal(entries: readonly JournalEntry[]): boolean[] {
    this.checkOpen('journal');
    try {
      return this.inboundJournal.add(entries);
    } catch (err) {
      throw new StoreError('E_STORE_WRITE', `journal: ${entries.length} message(s) not written: ${messageOf(err)}`, { cause: err });
    }
  }

  /**
   * Journals one message with the others that arrive in the same turn of the event loop, in one
   * transaction (a group commit): resolves, once that is committed, to false when the pipeline
   * already journaled the key. The MQTT source holds the message's acknowledgement until then.
   */
  journalSoon(entry: JournalEntry): Promise<boolean> {
    if (this.closed) return Promise.reject(this.closedError('journalSoon'));
    // 'when-needed': held until the batch that logs what the message fed, or journaled by it.
    if (this.options.journal === 'when-needed') return this.writer.holdMessage(entry);
    return new Promise((resolve, reject) => {
      this.journalQueue.push({ entry, resolve, reject });
      if (this.journalQueue.length >= JOURNAL_GROUP_MAX) this.flushJournal();
      else this.journalTimer ??= setImmediate(() => this.flushJournal());
    });
  }

  private flushJournal(): void {
    if (this.journalTimer) clearImmediate(this.journalTimer);
    this.journalTimer = undefined;
    const group = this.journalQueue;
    this.journalQueue = [];
    const ops = this.deliveryQueue;
    this.deliveryQueue = [];
    if (group.length === 0 && ops.length === 0) return;
    let fresh: boolean[];
    try {
      const done = this.groupCommit(group.map((g) => g.entry), ops.map((o) => o.op));
      fresh = this.inboundJournal.counted(done.fresh);
      this.tallies.add('inbound', -done.inboundDeleted);
    } catch (err) {
      const error = new StoreError('E_STORE_WRITE', `journal: ${group.length} message(s) and ${ops.length} delivery record(s) not written: ${messageOf(err)}`, { cause: err });
      for (const g of group) g.reject(error);
      for (const o of ops) o.reject(error);
      return;
    }
    this.journalCounts.commits++;
    this.journalCounts.messages += group.length;
    group.forEach((g, i) => g.resolve(fresh[i]));
    for (const o of ops) o.resolve();
  }

  /**
   * 'when-needed': a message's acknowledgement waits for the batch that logs what it fed (see
   * held-messages.ts); the intake processes it before that, not after its journal commit.
   */
  get journalMode(): 'always' | 'when-needed' {
    return this.options.journal;
  }

  /** Journal group commits so far and the messages they held (a commit per turn of the event loop, not per message). */
  get journalStats(): { commits: number; messages: number } {
    return { ...this.journalCounts };
  }

  /**
   * One MQTT client's session epoch and the message behind each of its packet ids (see
   * runtime/stream/identity.ts); notes and forgets go into the journal's group commit.
   */
  deliveries(clientId: string): Deliveries {
    this.checkOpen('deliveries');
    return new Deliveries(this.db, checkName('clientId', clientId), (op) => {
      if (this.closed) return Promise.reject(this.closedError('deliveries'));
      if (this.options.journal === 'when-needed') return this.writer.recordDelivery(op);
      return new Promise<void>((resolve, reject) => {
        this.deliveryQueue.push({ op, resolve, reject });
        this.journalTimer ??= setImmediate(() => this.flushJournal());
      });
    });
  }

  /** True when the pipeline has this key pending in its journal. */
  journaled(pipeline: string, key: string): boolean {
    this.checkOpen('journaled');
    return this.inboundJournal.contains(pipeline, key);
  }

  /** A pipeline's pending journal rows, oldest first, after row `afterId` (for replay after a restart). */
  pendingJournal(pipeline: string, afterId = 0, limit = 1000): JournalRow[] {
    this.checkOpen('pendingJournal');
    return this.inboundJournal.rows(pipeline, afterId, limit);
  }

  /**
   * A replay is about to process a pipeline's journal rows [fromId, toId]: their attempts are
   * counted (and committed) first, so a message that brings the process down is known at the
   * next start. `replayedRows` clears the count of rows the replay went through.
   */
  replayingRows(pipeline: string, fromId: number, toId: number): void {
    this.checkOpen('replayingRows');
    this.inboundJournal.attempted(pipeline, fromId, toId);
  }

  replayedRows(pipeline: string, fromId: number, toId: number): void {
    this.checkOpen('replayedRows');
    this.inboundJournal.forgiven(pipeline, fromId, toId);
  }

  /** Messages journaled and not yet consumed, all pipelines. */
  journalDepth(): number {
    this.checkOpen('journalDepth');
    return this.inboundJournal.depth();
  }

  /**
   * Inbound QoS 2 messages of one MQTT client held between PUBREC and their journal commit, in
   * this file: the gateway hands them to mqtt.js as its incoming store.
   */
  incoming(clientId: string): IncomingMessages {
    this.checkOpen('incoming');
    return new IncomingMessages(this.db, checkName('clientId', clientId));
  }

  /** What the broker granted at one MQTT client's last SUBSCRIBE, per filter (mqtt_subscriptions). */
  grants(clientId: string): SubscriptionGrants {
    this.checkOpen('grants');
    return new SubscriptionGrants(this.db, checkName('clientId', clientId));
  }

  /** The log of model hot-swaps: each step of each update, with its reason (model_updates). */
  modelUpdates(): ModelUpdates {
    this.checkOpen('modelUpdates');
    return new ModelUpdates(this.db);
  }

  /** The log of per-device model variants: each device's own model folder per model (device_models, migration 14). */
  deviceModels(): DeviceModels {
    this.checkOpen('deviceModels');
    return new DeviceModels(this.db);
  }

  /** The log of teach-ins: each device's baselines per model (baselines, migration 12). */
  baselines(): Baselines {
    this.checkOpen('baselines');
    return new Baselines(this.db);
  }

  /** The last committed window per device of a pipeline: its start and its message keys. */
  cursorWindows(pipeline: string): Map<string, DeviceCursor> {
    this.checkOpen('cursorWindows');
    return this.inboundJournal.cursorWindows(pipeline);
  }

  /** Each device's alert state in a pipeline as last committed: what the pipeline's alert rule resumes from after a restart. */
  alertStates(pipeline: string): Map<string, unknown> {
    this.checkOpen('alertStates');
    return this.inboundJournal.alertStates(pipeline);
  }

  /** The start of the last committed window per device of a pipeline. */
  cursors(pipeline: string): Map<string, number> {
    this.checkOpen('cursors');
    return this.inboundJournal.cursors(pipeline);
  }

  /** True when this inbound key was committed before. Keys still queued are not seen yet. */
  seen(key: string): boolean {
    this.checkOpen('seen');
    return this.queries.seen(checkName('key', key));
  }

  /** Commits whatever is queued now. */
  flush(): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError('flush'));
    this.writer.flush();
    return Promise.resolve();
  }

  /** The oldest messages not yet acknowledged, in insertion order (after `afterId` when given). */
  outboxPeek(limit: number, opts: { afterId?: number } = {}): OutboxEntry[] {
    this.checkOpen('outboxPeek');
    const afterId = opts.afterId ?? 0;
    if (!Number.isSafeInteger(afterId) || afterId < 0) throw new EdgeInferError('E_ARGUMENT', `afterId: expected an outbox id (a whole number ≥ 0), got ${String(afterId)}`);
    return this.queries.outboxPeek(checkCount('limit', limit), afterId, (id) => this.writer.isAcked(id), this.writer.pendingAcks);
  }

  /** Removes a message the broker has acknowledged (with the next batch). Unknown ids are ignored. */
  outboxAck(id: number): void {
    this.checkOpen('outboxAck');
    if (!Number.isSafeInteger(id) || id < 1) throw new EdgeInferError('E_ARGUMENT', `id: expected an outbox id from outboxPeek, got ${String(id)}`);
    this.writer.ack(id);
  }

  /** Messages in the outbox not yet acknowledged. */
  outboxDepth(): number {
    this.checkOpen('outboxDepth');
    return this.tallies.outbox - this.writer.pendingAcks;
  }

  /** Windows recorded for a model, newest first (default limit 1000). */
  windows(model: string, opts: { limit?: number; device?: string; sinceMs?: number } = {}): WindowRow[] {
    this.checkOpen('windows');
    return this.reads.windows(model, opts);
  }

  /** The newest result of each (device, model) pair, ordered by device then model. */
  latestPerDevice(opts: { model?: string } = {}): ResultRow[] {
    this.checkOpen('latestPerDevice');
    return this.reads.latestPerDevice(opts);
  }

  /** Scores of one device and model over [fromMs, toMs], oldest first, at most maxPoints (see README). */
  series(opts: { device: string; model: string; fromMs: number; toMs: number; maxPoints: number }): SeriesPoint[] {
    this.checkOpen('series');
    return this.reads.series(opts);
  }

  /**
   * One device and model over [fromMs, toMs] in at most maxPoints points, for a chart: raw results
   * when they fit, else buckets with min and max (from the minute or hour rollups for wide buckets).
   * An unknown device or model gives no points. See README.
   */
  chart(opts: { device: string; model: string; fromMs: number; toMs: number; maxPoints: number; source?: SeriesSource; field?: ChartField }): SeriesResult {
    this.checkOpen('chart');
    return this.reads.chart(opts);
  }

  /** Count, mean and max score and anomalies per epoch-aligned bucket, device and model over [fromMs, toMs]. */
  aggregates(opts: { fromMs: number; toMs: number; bucketMs: number; device?: string; model?: string }): AggregateRow[] {
    this.checkOpen('aggregates');
    return this.reads.aggregates(opts);
  }

  /** Alerts, newest first (default limit 100); `active`: the alert active now per (device, model), see README. */
  alerts(opts: { fromMs?: number; toMs?: number; device?: string; limit?: number; active?: boolean } = {}): AlertRow[] {
    this.checkOpen('alerts');
    return this.reads.alerts(opts);
  }

  /**
   * An operator acknowledges alert `id` and the earlier unacknowledged alerts of its episode (same
   * device and model: its raise and reminders). Committed when it returns; the first who and when
   * are kept. Throws E_ARGUMENT for a bad id or user, E_NOT_FOUND for an unknown id, E_STORE_WRITE
   * when the log cannot write it.
   */
  acknowledgeAlert(id: number, user: string, atMs: number = Date.now()): AlertRow {
    this.checkOpen('acknowledgeAlert');
    checkMark(id, user, atMs);
    return this.alertMarks.mark('ack', id, user, atMs);
  }

  /** An operator clears alert `id` (and the earlier alerts of its episode) from the active list; as acknowledgeAlert(). */
  clearAlert(id: number, user: string, atMs: number = Date.now()): AlertRow {
    this.checkOpen('clearAlert');
    checkMark(id, user, atMs);
    return this.alertMarks.mark('clear', id, user, atMs);
  }

  /** Per (model, variant): results logged since sinceMs (processing time) and latency p50/p99 over the newest results. */
  modelStats(opts: { sinceMs: number }): ModelStatsRow[] {
    this.checkOpen('modelStats');
    return this.reads.modelStats(opts);
  }

  /** Per (model, variant ≠ reference, default 'fp32'): windows logged by both since sinceMs and how many agree. */
  agreement(opts: { sinceMs: number; reference?: string }): AgreementRow[] {
    this.checkOpen('agreement');
    return this.reads.agreement(opts);
  }

  /** Dead letters, newest first (default limit 100). */
  deadLetters(opts: { limit?: number; sinceMs?: number } = {}): DeadLetterRow[] {
    this.checkOpen('deadLetters');
    return this.reads.deadLetters(opts);
  }

  /** Rows per table (committed; the outbox less acknowledged messages). */
  counts(): StoreCounts {
    this.checkOpen('counts');
    return { ...this.tallies.snapshot(), outbox: this.outboxDepth() };
  }

  /** Runs retention now and checkpoints the WAL (TRUNCATE). Returns the rows deleted. */
  applyRetention(): { deleted: number } {
    this.checkOpen('applyRetention');
    return { deleted: this.retention.run() };
  }

  /** Bytes the rows take in the file (its pages less the free ones). */
  usedBytes(): number {
    this.checkOpen('usedBytes');
    return this.retention.usedBytes();
  }

  /** Units waiting to be committed: more than a batch's worth while commits fail. */
  get queuedUnits(): number {
    return this.writer.queued;
  }

  /** Commit counters for the metrics; a copy. */
  get stats(): StoreStats {
    return { ...this.writer.stats };
  }

  /** Batches commit as soon as they can from now on, not after batchMs (a stopping gateway's last commits). */
  hurry(): void {
    if (!this.closed) this.writer.hurry();
  }

  /**
   * Flushes, checkpoints, closes. Idempotent: later calls return the same promise.
   * `waitForLock: false` is for a stop that has already waited out its bound on a lock held
   * elsewhere: the journal's flush, the last try and the checkpoint would each wait the busy
   * timeout again (15 s in all, past systemd's stop timeout), so they give up at once instead.
   */
  close(options: { waitForLock?: boolean } = {}): Promise<void> {
    if (this.closed) return this.closed;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    if (options.waitForLock === false) this.db.pragma('busy_timeout = 0');
    this.flushJournal();
    this.writer.close();
    try {
      this.db.pragma('optimize');
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // The file is consistent either way; the next open replays what the WAL holds.
    }
    this.db.close();
    this.closed = Promise.resolve();
    return this.closed;
  }

  private closedError(what: string): StoreError {
    return new StoreError('E_STORE_CLOSED', `${what}: the store at ${this.path} is closed`);
  }

  private checkOpen(what: string): void {
    if (this.closed) throw this.closedError(what);
  }
}
