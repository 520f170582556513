// LogReader: the log's read queries (dashboard, Quantize, teach-in) on a worker thread with its
// own read-only connection, so a long range never holds up the ingest thread's MQTT
// acknowledgements and commits. WAL lets the reader see each commit while the gateway writes.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { EdgeInferError, type ErrorCode } from '../errors';
import { BUSY_TIMEOUT_MS, StoreError, type StoreErrorCode } from '../store';
import { LOG_QUERIES, type LogQueries, type LogQueryName } from './log-queries';

export { LOG_QUERIES, type LogQueryName };

export interface LogReaderOptions {
  /** The log file. It must exist: the gateway creates and migrates it, the reader only reads. */
  path: string;
  /** A query running longer is answered with E_QUERY_TIMEOUT and its thread replaced (ms, default 10 000). */
  timeoutMs?: number;
  /** Queries that may wait behind the running one; past it, query() rejects with E_BUSY (default 16). */
  maxQueued?: number;
  /** How long a read waits for a lock another connection holds (ms, default the store's). */
  busyTimeoutMs?: number;
}

export const LOG_READER_DEFAULTS = { timeoutMs: 10_000, maxQueued: 16 } as const;

/** Threads let go after a timeout that may still be finishing their statement before a new one waits for them. */
const RETIRED_MAX = 1;

/** @internal The messages between LogReader and its worker. */
export interface WorkerData {
  path: string;
  busyTimeoutMs: number;
}
/** @internal */
export interface WorkerQuery {
  id: number;
  name: string;
  args: unknown[];
}
/** @internal */
export interface WireError {
  code: string;
  message: string;
}
/** @internal */
export type WorkerAnswer = { ready: true } | { ready: false; error: WireError } | { id: number; ok: true; value: unknown } | { id: number; ok: false; error: WireError };

type Args<N extends LogQueryName> = Parameters<LogQueries[N]>;
type Answer<N extends LogQueryName> = ReturnType<LogQueries[N]>;

interface Job {
  id: number;
  name: string;
  args: unknown[];
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

interface Thread {
  worker: Worker;
  ready: Promise<void>;
}

function errorOf(e: WireError): EdgeInferError {
  return e.code.startsWith('E_STORE_') ? new StoreError(e.code as StoreErrorCode, e.message) : new EdgeInferError(e.code as ErrorCode, e.message);
}

/** BLOBs come back from SQLite as Buffers and cross the thread as plain Uint8Arrays: made Buffers again (no copy). */
function withBuffers(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof Uint8Array) return Object.getPrototypeOf(v) === Uint8Array.prototype ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v;
  if (ArrayBuffer.isView(v) || v instanceof Map || v instanceof Set || v instanceof Date) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = withBuffers(v[i]);
    return v;
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) o[k] = withBuffers(o[k]);
  return o;
}

/** The worker, from the compiled .js beside this file, or from the .ts sources through tsx (tests, tsx runs). */
function startWorker(data: WorkerData): Worker {
  if (path.extname(__filename) === '.ts') {
    const entry = path.join(__dirname, 'log-reader-worker.ts');
    const code = `require(${JSON.stringify(require.resolve('tsx/cjs'))});\nrequire(${JSON.stringify(entry)});`;
    return new Worker(code, { eval: true, workerData: data });
  }
  return new Worker(path.join(__dirname, 'log-reader-worker.js'), { workerData: data });
}

export class LogReader {
  /** The log file, as given. */
  readonly path: string;
  private readonly timeoutMs: number;
  private readonly maxQueued: number;
  private readonly busyTimeoutMs: number;
  private thread: Thread | null = null;
  /** Threads stopped past a timeout: each ends when SQLite returns from the statement it runs. */
  private readonly retired = new Set<Promise<unknown>>();
  private running: (Job & { timer?: NodeJS.Timeout }) | null = null;
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed: Promise<void> | null = null;
  private waitForRetired: Promise<void> | null = null;

  private constructor(o: LogReaderOptions) {
    this.path = o.path;
    this.timeoutMs = o.timeoutMs ?? LOG_READER_DEFAULTS.timeoutMs;
    this.maxQueued = o.maxQueued ?? LOG_READER_DEFAULTS.maxQueued;
    this.busyTimeoutMs = o.busyTimeoutMs ?? BUSY_TIMEOUT_MS;
  }

  /**
   * Starts the worker and resolves once it has the log open. Rejects with E_ARGUMENT for bad
   * options, E_STORE_OPEN when the file is missing or not SQLite, E_STORE_SCHEMA when its schema
   * is not the one this edge-infer reads.
   */
  static async open(options: LogReaderOptions): Promise<LogReader> {
    const o = options ?? ({} as LogReaderOptions);
    if (typeof o.path !== 'string' || o.path === '') throw new EdgeInferError('E_ARGUMENT', `path: expected the log file, got ${String(o.path)}`);
    for (const k of ['timeoutMs', 'maxQueued', 'busyTimeoutMs'] as const) {
      const v = o[k];
      if (v !== undefined && (!Number.isSafeInteger(v) || v < (k === 'maxQueued' ? 0 : 1))) throw new EdgeInferError('E_ARGUMENT', `${k}: expected a whole number ≥ ${k === 'maxQueued' ? 0 : 1}, got ${String(v)}`);
    }
    const reader = new LogReader(o);
    const thread = reader.start();
    try {
      await thread.ready;
    } catch (err) {
      await thread.worker.terminate();
      throw err;
    }
    return reader;
  }

  /**
   * Runs one of LOG_QUERIES in the worker with the arguments the store's method of that name
   * takes, and resolves with what it returns. Queries run one at a time, in order. Rejects with
   * the store's own error (E_ARGUMENT ...) for arguments it refuses, E_ARGUMENT for a name not in
   * the list, E_BUSY when maxQueued queries already wait, E_QUERY_TIMEOUT when this one runs past
   * timeoutMs (its thread is replaced; the next query runs on a fresh one), E_STORE_CLOSED after close().
   */
  query<N extends LogQueryName>(name: N, ...args: Args<N>): Promise<Answer<N>> {
    if (this.closed) return Promise.reject(new StoreError('E_STORE_CLOSED', `${String(name)}: the log reader of ${this.path} is closed`));
    if (!(LOG_QUERIES as readonly string[]).includes(name)) return Promise.reject(new EdgeInferError('E_ARGUMENT', `query: expected one of ${LOG_QUERIES.join(', ')}, got '${String(name)}'`));
    // The bound counts every query not yet answered but one, also while none can run (a fresh thread waits).
    if (this.queue.length + (this.running ? 1 : 0) > this.maxQueued) {
      return Promise.reject(new EdgeInferError('E_BUSY', `${name}: busy, ${this.queue.length} queries already wait for the log reader (at most ${this.maxQueued}); ask again later`));
    }
    return new Promise<Answer<N>>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, name, args, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  /** Queries waiting behind the running one. */
  get queued(): number {
    return this.queue.length;
  }

  /** Worker threads alive: the one that answers, and those let go after a timeout still finishing their statement. */
  get threads(): number {
    return this.retired.size + (this.thread ? 1 : 0);
  }

  /**
   * Refuses what still waits (E_STORE_CLOSED), stops the worker and resolves once its thread, and
   * any stopped after a timeout, have ended. Idempotent.
   */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    const error = new StoreError('E_STORE_CLOSED', `the log reader of ${this.path} was closed before the query was answered`);
    for (const job of this.queue.splice(0)) job.reject(error);
    if (this.running) {
      clearTimeout(this.running.timer);
      this.running.reject(error);
      this.running = null;
    }
    if (this.thread) this.retire(this.thread);
    this.thread = null;
    this.closed = Promise.all([...this.retired]).then(() => undefined);
    return this.closed;
  }

  private start(): Thread {
    const worker = startWorker({ path: this.path, busyTimeoutMs: this.busyTimeoutMs });
    let settle!: { resolve: () => void; reject: (err: Error) => void };
    const ready = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    ready.catch(() => undefined); // also seen by whoever awaits it
    const thread: Thread = { worker, ready };
    worker.on('message', (m: WorkerAnswer) => {
      if ('ready' in m) {
        if (m.ready) settle.resolve();
        else settle.reject(errorOf(m.error));
        return;
      }
      if (this.thread !== thread || !this.running || this.running.id !== m.id) return;
      const job = this.running;
      clearTimeout(job.timer);
      this.running = null;
      if (m.ok) job.resolve(withBuffers(m.value));
      else job.reject(errorOf(m.error));
      this.pump();
    });
    const lost = (why: string): void => {
      settle.reject(new EdgeInferError('E_INTERNAL', `log reader: its worker stopped before it was ready (${why})`));
      if (this.thread !== thread) return;
      this.thread = null;
      const job = this.running;
      if (job) {
        clearTimeout(job.timer);
        this.running = null;
        job.reject(new EdgeInferError('E_INTERNAL', `${job.name}: the log reader's worker stopped (${why})`));
      }
      this.pump();
    };
    worker.on('error', (err) => lost(err.message));
    worker.on('exit', (code) => lost(`exit code ${code}`));
    this.thread = thread;
    return thread;
  }

  private retire(thread: Thread): void {
    const done = thread.worker.terminate().catch(() => undefined);
    this.retired.add(done);
    void done.then(() => this.retired.delete(done));
  }

  /** Sends the next query once the worker is ready and none runs. */
  private pump(): void {
    if (this.closed || this.running || this.queue.length === 0) return;
    if (!this.thread && this.retired.size > RETIRED_MAX) {
      // Queries that keep timing out must not pile up threads that each still run a statement.
      this.waitForRetired ??= Promise.race(this.retired).then(() => {
        this.waitForRetired = null;
        this.pump();
      });
      return;
    }
    const job = this.queue.shift()!;
    this.running = job;
    const thread = this.thread ?? this.start();
    thread.ready.then(
      () => {
        if (this.running !== job || this.thread !== thread) return;
        try {
          thread.worker.postMessage({ id: job.id, name: job.name, args: job.args } satisfies WorkerQuery);
        } catch (err) {
          this.running = null;
          job.reject(new EdgeInferError('E_ARGUMENT', `${job.name}: arguments cannot be sent to the log reader (${err instanceof Error ? err.message : String(err)})`));
          this.pump();
          return;
        }
        this.running.timer = setTimeout(() => this.timedOut(job), this.timeoutMs);
      },
      (err: Error) => {
        if (this.running !== job) return;
        this.running = null;
        job.reject(err);
        if (this.thread === thread) this.thread = null;
        this.pump();
      },
    );
  }

  private timedOut(job: Job): void {
    if (this.running !== job || !this.thread) return;
    this.running = null;
    // A synchronous SQLite statement cannot be interrupted from here: the thread that runs it is
    // let go (it ends when the statement returns) and the next query gets a fresh one.
    this.retire(this.thread);
    this.thread = null;
    job.reject(new EdgeInferError('E_QUERY_TIMEOUT', `${job.name}: no answer within ${this.timeoutMs} ms (the reader's bound); the query was stopped`));
    this.pump();
  }
}
