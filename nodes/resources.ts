// What the runtime config node owns for the model nodes that use it, the way Node-RED's broker
// node owns its connection: model sessions (one per variant, shared), the SQLite log, and a
// count of users; the last user out releases everything.
import { type BackendChoice, ModelSession } from '../runtime/engine';
import type { VariantEntry } from '../runtime/model';
import { type WeightLoading, loadOptionsFor } from '../runtime/quant';
import { ResultStore } from '../runtime/store';

export interface ResourceOptions {
  backend: BackendChoice;
  threads: number;
  weights: WeightLoading;
  /** The SQLite log; '' for none. */
  dbPath: string;
  retentionDays: number;
  /** Keep every n-th window for calibration (0: none). */
  recordEvery: number;
}

interface SharedSession {
  session: Promise<ModelSession>;
  users: number;
}

export class RuntimeResources {
  private readonly sessions = new Map<string, SharedSession>();
  private store: ResultStore | undefined;
  private readonly users = new Set<object>();
  private closing: Promise<void> | undefined;

  constructor(readonly options: ResourceOptions) {}

  register(user: object): void {
    this.users.add(user);
  }

  /** A user leaves; with the last one the sessions and the log close. */
  async deregister(user: object): Promise<void> {
    this.users.delete(user);
    if (this.users.size === 0) await this.close();
  }

  get userCount(): number {
    return this.users.size;
  }

  /** A session of a variant, shared by every node that runs it. Release it with `release`. */
  session(variant: VariantEntry): Promise<ModelSession> {
    const key = `${variant.file}@${variant.mtimeMs}`;
    let shared = this.sessions.get(key);
    if (!shared) {
      const session = ModelSession.load(variant.file, { backend: this.options.backend, threads: this.options.threads, name: `${variant.id} ${variant.variant}`, ...loadOptionsFor(variant.precision, this.options.weights) });
      shared = { session, users: 0 };
      this.sessions.set(key, shared);
      session.catch(() => this.sessions.delete(key));
    }
    shared.users++;
    return shared.session;
  }

  async release(variant: VariantEntry): Promise<void> {
    const key = `${variant.file}@${variant.mtimeMs}`;
    const shared = this.sessions.get(key);
    if (!shared || --shared.users > 0) return;
    this.sessions.delete(key);
    await (await shared.session.catch(() => undefined))?.dispose();
  }

  /** The log, opened at first use; undefined when the node logs nowhere. */
  log(): ResultStore | undefined {
    if (!this.options.dbPath) return undefined;
    this.store ??= ResultStore.open({ path: this.options.dbPath, retention: { maxAgeDays: this.options.retentionDays } });
    return this.store;
  }

  /** Closes sessions and the log; quick, so Node-RED's close never waits long. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const sessions = [...this.sessions.values()];
      this.sessions.clear();
      for (const s of sessions) await (await s.session.catch(() => undefined))?.dispose();
      const store = this.store;
      this.store = undefined;
      await store?.close();
    })().finally(() => {
      this.closing = undefined;
    });
    return this.closing;
  }
}
