// The feature-and-inference stage on worker threads: a pool of threads, each of which computes
// the features of a batch of windows and runs the model on them, so that the spectra and the
// model use the cores the thread with MQTT, acknowledgements and SQLite does not. Samples reach a
// thread without a copy (they live in SharedArrayBuffers the main thread keeps, so a batch whose
// thread dies runs again on another); the features and outputs come back as transferred buffers.
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ModelSession, SessionOrigin, TensorMap, WindowOutcome } from '../engine';
import { EdgeInferError, type ErrorCode } from '../errors';
import type { ModelCard } from '../model/card';
import type { ReadyWindow } from './device-windows';

/** Threads for `workers: auto`: one per core but the one the gateway's main thread keeps, at least one. */
export function defaultWorkers(): number {
  return Math.max(1, os.availableParallelism() - 1);
}

/** Most times a batch is started again after the thread running it died, before it fails. */
export const MAX_BATCH_CRASHES = 3;

/**
 * Deaths per thread within RESTART_WINDOW_MS past which a dead thread is not replaced: a thread
 * that cannot start at all (its code missing, no memory) must not be respawned in a tight loop.
 */
export const MAX_RESTARTS_PER_THREAD = 3;
export const RESTART_WINDOW_MS = 10_000;

/** A model as a thread loads it: by the id the pool gave it. */
export interface WireModel {
  id: number;
  file: string;
  options: Record<string, unknown>;
}

/** A batch for a thread: the windows' samples (one array per channel) and how to make their features. */
export interface WireJob {
  type: 'run';
  job: number;
  model: WireModel;
  input: ModelCard['input'];
  /** Features' dims (without the batch axis). */
  dims: number[];
  windows: Float32Array[][];
}

export type WireOutcome = { ok: true; outputs: TensorMap; ms: number; batch: number } | { ok: false; code: ErrorCode; message: string };

export type WireReply =
  | { type: 'ran'; job: number; features: Array<Float32Array | null>; outcomes: WireOutcome[] }
  | { type: 'failed'; job: number; code: ErrorCode; message: string };

/** Loads a model ahead of its first batch (answered as a run of no windows). */
export interface WireLoad {
  type: 'load';
  job: number;
  model: WireModel;
  /** With it, a batch of silent windows runs once, so that the first real batch is not the slow one. */
  warm?: { input: ModelCard['input']; dims: number[]; windows: number };
}

export type WireRequest = WireJob | WireLoad | { type: 'unload'; model: number };

interface Job {
  id: number;
  message: WireJob | WireLoad;
  windows: readonly ReadyWindow[];
  resolve: (o: WindowOutcome[]) => void;
  reject: (err: unknown) => void;
  /** Threads that died while running it. */
  crashes: number;
}

interface Thread {
  worker: Worker;
  /** The worker's threadId (the Worker reads -1 once it has exited). */
  id: number;
  jobs: Map<number, Job>;
  dead: boolean;
  /** Set when kill() ended it: the reason its death is reported with. */
  killed?: boolean;
}

export interface PoolOptions {
  /** Threads (default: defaultWorkers()). */
  size?: number;
  /** Told of a thread that died (it is replaced, its batches run again). */
  onError?: (err: EdgeInferError) => void;
}

/** The thread's code: the compiled .js beside this file, or the .ts sources through tsx (tests, tsx runs). */
function startWorker(): Worker {
  if (path.extname(__filename) === '.ts') {
    const entry = path.join(__dirname, 'pool-worker.ts');
    const code = `require(${JSON.stringify(require.resolve('tsx/cjs'))});\nrequire(${JSON.stringify(entry)});`;
    return new Worker(code, { eval: true });
  }
  return new Worker(path.join(__dirname, 'pool-worker.js'));
}

export class WorkerPool {
  readonly size: number;
  private readonly threads: Thread[] = [];
  /** By the session's origin: a wrapper of a session (a Proxy) shares its origin, and so its threads' copy. */
  private readonly models = new WeakMap<SessionOrigin, WireModel>();
  private nextModel = 1;
  private nextJob = 1;
  private closed = false;
  /** Threads that died and were replaced. */
  restarts = 0;
  /** When threads died lately (ms), for the bound on replacing them. */
  private deaths: number[] = [];
  /** Why the pool stopped replacing threads, once it has. */
  private givenUp: string | undefined;

  constructor(private readonly options: PoolOptions = {}) {
    this.size = options.size ?? defaultWorkers();
    if (!Number.isInteger(this.size) || this.size < 1) throw new EdgeInferError('E_ARGUMENT', `workers: expected a whole number ≥ 1 of threads, got ${this.size}`);
    for (let i = 0; i < this.size; i++) this.threads.push(this.spawn());
  }

  /** The live threads' ids (a replaced thread has a new one). */
  get threadIds(): number[] {
    return this.threads.map((t) => t.id);
  }

  /** Batches under way on threads. */
  get busy(): number {
    let n = 0;
    for (const t of this.threads) n += t.jobs.size;
    return n;
  }

  /** Batches under way on each thread, in thread order. */
  get load(): number[] {
    return this.threads.map((t) => t.jobs.size);
  }

  /**
   * Ends one thread as a crash would (for tests and for an operator's tooling): it is replaced,
   * and its batches run again on another.
   */
  async kill(index: number): Promise<void> {
    const t = this.threads[index];
    if (!t) throw new EdgeInferError('E_ARGUMENT', `kill: no thread ${index} in a pool of ${this.threads.length}`);
    t.killed = true;
    await t.worker.terminate();
    // In case 'exit' has not come yet: the thread is replaced (or not) before this returns.
    this.died(t, new Error('killed'));
  }

  private spawn(): Thread {
    const worker = startWorker();
    const thread: Thread = { worker, id: worker.threadId, jobs: new Map(), dead: false };
    worker.on('message', (m: WireReply) => this.answered(thread, m));
    worker.on('error', (err) => this.died(thread, err));
    worker.on('exit', (code) => this.died(thread, new Error(`exited with code ${code}`)));
    // An idle thread does not keep the process alive; one with a batch under way does (dispatch).
    worker.unref();
    return thread;
  }

  private answered(thread: Thread, m: WireReply): void {
    const job = thread.jobs.get(m.job);
    if (!job) return;
    thread.jobs.delete(m.job);
    if (thread.jobs.size === 0) thread.worker.unref();
    if (m.type === 'failed') {
      job.reject(new EdgeInferError(m.code, m.message));
      return;
    }
    const outcomes = m.outcomes.map((o): WindowOutcome => (o.ok ? o : { ok: false, error: new EdgeInferError(o.code, o.message) }));
    // The features the thread made are the window's own from now on (the log records them).
    job.windows.forEach((w, i) => {
      const f = m.features[i];
      if (f) w.features = f;
    });
    job.resolve(outcomes);
  }

  /** A thread that died: replaced, and its batches started again elsewhere (or failed, past MAX_BATCH_CRASHES). */
  private died(thread: Thread, cause: Error): void {
    if (thread.dead) return;
    thread.dead = true;
    const err = thread.killed ? new Error('killed') : cause;
    const i = this.threads.indexOf(thread);
    const jobs = [...thread.jobs.values()];
    thread.jobs.clear();
    if (this.closed) {
      for (const job of jobs) job.reject(new EdgeInferError('E_SESSION_CLOSED', 'the worker pool is closed'));
      return;
    }
    const now = Date.now();
    this.deaths = this.deaths.filter((t) => now - t < RESTART_WINDOW_MS);
    this.deaths.push(now);
    if (this.deaths.length > MAX_RESTARTS_PER_THREAD * this.size) {
      // The dead thread stays in the list, dead: batches go to the threads still alive, if any.
      this.givenUp = `its threads died ${this.deaths.length} times within ${RESTART_WINDOW_MS / 1000} s (last: ${err.message})`;
      this.options.onError?.(new EdgeInferError('E_INTERNAL', `worker thread ${thread.id} died (${err.message}) and is not replaced: ${this.givenUp}`));
    } else {
      this.restarts++;
      this.options.onError?.(new EdgeInferError('E_INTERNAL', `worker thread ${thread.id} died (${err.message}) with ${jobs.length} batch(es) under way; it is replaced and they run again`));
      if (i >= 0) this.threads[i] = this.spawn();
    }
    for (const job of jobs) {
      job.crashes++;
      if (job.crashes >= MAX_BATCH_CRASHES) job.reject(new EdgeInferError('E_RUN', `a worker thread died running this batch ${job.crashes} times (last: ${err.message}); it is not tried again`));
      else this.dispatch(job);
    }
  }

  private modelOf(session: ModelSession): WireModel {
    const origin = session.origin;
    if (!origin) throw new EdgeInferError('E_ARGUMENT', `${session.name}: a worker thread loads a model from its file; this one was loaded from bytes`);
    let m = this.models.get(origin);
    if (!m) {
      // One backend thread per pool thread: the pool is what spreads the work over the cores.
      const { name, backend, sessionConfig, maxBatch } = origin.options;
      const id = this.nextModel++;
      m = { id, file: origin.file, options: { name, backend: backend ?? session.backend, sessionConfig, maxBatch, threads: 1 } };
      this.models.set(origin, m);
      session.onDispose(() => {
        for (const t of this.threads) if (!t.dead) t.worker.postMessage({ type: 'unload', model: id } satisfies WireRequest);
      });
    }
    return m;
  }

  /**
   * Computes the features of `windows` (from their samples) and runs `session`'s model on them in
   * a thread. Each window's `features` is set to what the thread computed. Outcomes come in window
   * order; the promise rejects only for the batch as a whole (a load that fails, a pool closed).
   */
  run(session: ModelSession, input: ModelCard['input'], windows: readonly ReadyWindow[]): Promise<WindowOutcome[]> {
    if (this.closed) return Promise.reject(new EdgeInferError('E_SESSION_CLOSED', 'the worker pool is closed'));
    const samples = windows.map((w, i) => {
      if (!w.samples) throw new EdgeInferError('E_ARGUMENT', `window ${i} of the batch (${w.device}) carries no samples for a worker thread`);
      return w.samples;
    });
    const message: WireJob = { type: 'run', job: this.nextJob++, model: this.modelOf(session), input, dims: windows[0]?.dims ?? [], windows: samples };
    return new Promise((resolve, reject) => this.dispatch({ id: message.job, message, windows, resolve, reject, crashes: 0 }));
  }

  /**
   * Loads `session`'s model on every thread now, so that the first batches do not wait for it
   * (a gateway does this before it subscribes); with `warm`, each thread also runs a batch of
   * that many silent windows through the features and the model. Rejects as a batch would.
   */
  async prepare(session: ModelSession, warm?: WireLoad['warm']): Promise<void> {
    if (this.closed) throw new EdgeInferError('E_SESSION_CLOSED', 'the worker pool is closed');
    const model = this.modelOf(session);
    await Promise.all(
      this.threads.map((thread) => new Promise<WindowOutcome[]>((resolve, reject) => {
        const id = this.nextJob++;
        this.dispatch({ id, message: { type: 'load', job: id, model, warm }, windows: [], resolve, reject, crashes: 0 }, thread);
      })),
    );
  }

  /** To `to`, or to the live thread with the fewest batches under way. */
  private dispatch(job: Job, to?: Thread): void {
    let best: Thread | undefined = to && !to.dead ? to : undefined;
    if (!best) for (const t of this.threads) if (!t.dead && (!best || t.jobs.size < best.jobs.size)) best = t;
    if (!best) {
      job.reject(new EdgeInferError('E_RUN', `the worker pool has no thread left: ${this.givenUp ?? 'every thread died'}`));
      return;
    }
    best.jobs.set(job.id, job);
    best.worker.ref();
    // Shared samples cross without a copy; nothing is transferred away, so a retry still has them.
    best.worker.postMessage(job.message);
  }

  /** Ends the threads; batches under way fail with E_SESSION_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}
