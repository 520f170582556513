// What the runtime config node owns for the model nodes that use it, the way Node-RED's broker
// node owns its connection: model sessions (one per variant, shared), the SQLite log, and a
// count of users; the last user out releases everything. Node-RED starts every close handler of
// a deploy at once, so the config node waits for its users to leave before it shuts down for good.
import { type BackendChoice, type BackendName, ModelSession, unavailableReason } from '../runtime/engine';
import { EdgeInferError } from '../runtime/errors';
import type { VariantEntry } from '../runtime/model';
import { type WeightLoading, loadOptionsFor } from '../runtime/quant';
import { ResultStore } from '../runtime/store';
import { WorkerPool } from '../runtime/stream/pool';
import type { RuntimeDashboard } from './dashboard';

export interface ResourceOptions {
  backend: BackendChoice;
  threads: number;
  weights: WeightLoading;
  /** The SQLite log; '' for none. */
  dbPath: string;
  retentionDays: number;
  /** Keep every n-th window for calibration (0: none). */
  recordEvery: number;
  /** Worker threads for feature transforms and inference, shared by the model nodes (0 or unset: none). */
  workers?: number;
}

interface SharedSession {
  session: Promise<ModelSession>;
  users: number;
  variant: VariantEntry;
}

/** Which backend a loaded variant runs on and, when it is not native, why not. */
export interface BackendUse {
  model: string;
  variant: string;
  backend: BackendName;
  /** Set when native was not used: 'auto' fell back (onnxruntime-node missing, or its load error). */
  why?: string;
}

/**
 * Why a session of this choice runs on WebAssembly rather than natively: onnxruntime-node's own
 * reason when 'auto' fell back, what the choice was otherwise; undefined when it runs natively.
 */
export function whyNotNative(choice: BackendChoice, backend: BackendName): string | undefined {
  if (backend === 'native') return undefined;
  if (choice === 'wasm') return 'the runtime asks for wasm';
  return unavailableReason('native') ?? 'native was not picked';
}

export class RuntimeResources {
  private readonly sessions = new Map<string, SharedSession>();
  private store: ResultStore | undefined;
  private pool: WorkerPool | undefined;
  private readonly users = new Set<object>();
  private closing: Promise<void> | undefined;
  private shut = false;
  private idleWaiters: Array<() => void> = [];
  /** The dashboard of this runtime's log (none when it logs nowhere); closed with `shutdown`. */
  dashboard: RuntimeDashboard | undefined;

  constructor(readonly options: ResourceOptions) {}

  register(user: object): void {
    this.users.add(user);
  }

  /** A user leaves; with the last one the sessions and the log close (a later user opens them again). */
  async deregister(user: object): Promise<void> {
    this.users.delete(user);
    if (this.users.size > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    try {
      await this.releaseAll();
    } finally {
      for (const w of waiters) w();
    }
  }

  get userCount(): number {
    return this.users.size;
  }

  /** True once `shutdown` ran: sessions and the log are refused from then on. */
  get closed(): boolean {
    return this.shut;
  }

  /**
   * Resolves once every user has left and what they used is released, or after `withinMs`,
   * whichever comes first; true when they all left.
   */
  whenIdle(withinMs: number): Promise<boolean> {
    if (this.users.size === 0) return (this.closing ?? Promise.resolve()).then(() => true, () => true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), withinMs);
      timer.unref();
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** A session of a variant, shared by every node that runs it. Release it with `release`. */
  session(variant: VariantEntry): Promise<ModelSession> {
    if (this.shut) return Promise.reject(new EdgeInferError('E_SESSION_CLOSED', `${variant.id} ${variant.variant}: the edge-infer runtime is closed`));
    const key = `${variant.file}@${variant.mtimeMs}`;
    let shared = this.sessions.get(key);
    if (!shared) {
      const session = ModelSession.load(variant.file, { backend: this.options.backend, threads: this.options.threads, name: `${variant.id} ${variant.variant}`, ...loadOptionsFor(variant.precision, this.options.weights) });
      shared = { session, users: 0, variant };
      this.sessions.set(key, shared);
      session.catch(() => this.sessions.delete(key));
    }
    shared.users++;
    return shared.session;
  }

  /** The backend of each session loaded now, for the runtime node's dialog. */
  async backends(): Promise<BackendUse[]> {
    const out: BackendUse[] = [];
    for (const shared of this.sessions.values()) {
      const session = await shared.session.catch(() => undefined);
      if (!session) continue;
      const why = whyNotNative(this.options.backend, session.backend);
      out.push({ model: shared.variant.id, variant: shared.variant.variant, backend: session.backend, ...(why ? { why } : {}) });
    }
    return out;
  }

  async release(variant: VariantEntry): Promise<void> {
    const key = `${variant.file}@${variant.mtimeMs}`;
    const shared = this.sessions.get(key);
    if (!shared || --shared.users > 0) return;
    this.sessions.delete(key);
    await (await shared.session.catch(() => undefined))?.dispose();
  }

  /**
   * The log, opened at first use; undefined when the runtime logs nowhere. After `shutdown` it
   * throws E_STORE_CLOSED instead of opening the file again (which nothing would ever close).
   */
  log(): ResultStore | undefined {
    if (!this.options.dbPath) return undefined;
    if (this.shut) throw new EdgeInferError('E_STORE_CLOSED', `${this.options.dbPath}: the edge-infer runtime is closed`);
    this.store ??= ResultStore.open({ path: this.options.dbPath, retention: { maxAgeDays: this.options.retentionDays } });
    return this.store;
  }

  /**
   * The worker threads the model nodes of this runtime share, started at first use; undefined
   * when the runtime runs its windows in Node-RED's own thread (workers 0).
   */
  workerPool(onError?: (err: EdgeInferError) => void): WorkerPool | undefined {
    if (!this.options.workers) return undefined;
    if (this.shut) throw new EdgeInferError('E_SESSION_CLOSED', 'the edge-infer runtime is closed');
    this.pool ??= new WorkerPool({ size: this.options.workers, onError });
    return this.pool;
  }

  /** Closes the sessions, the threads and the log that are open now; a later user opens them again. */
  private releaseAll(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    const store = this.store;
    this.store = undefined;
    const pool = this.pool;
    this.pool = undefined;
    const closing = (this.closing ?? Promise.resolve()).catch(() => undefined).then(async () => {
      for (const s of sessions) await (await s.session.catch(() => undefined))?.dispose();
      await pool?.close();
      await store?.close();
    });
    this.closing = closing;
    const settled = (): void => {
      if (this.closing === closing) this.closing = undefined;
    };
    closing.then(settled, settled);
    return closing;
  }

  /**
   * For good: waits (at most `withinMs`) for the users to drain and leave, closes what is left,
   * and refuses sessions and the log from then on.
   */
  async shutdown(withinMs: number): Promise<void> {
    await this.whenIdle(withinMs);
    this.shut = true;
    await Promise.all([this.releaseAll(), this.dashboard?.close()]);
  }
}
