// The registry of a models directory: every variant that is fit to run, grouped by model id,
// kept up to date while the gateway runs (models are dropped in, replaced and removed live).
import { EventEmitter } from 'node:events';
import { type FSWatcher, promises as fs, watch } from 'node:fs';
import * as path from 'node:path';
import { EdgeInferError } from '../errors';
import { type BrokenModel, type Catalog, EMPTY_CATALOG, type Reading, type RegistryChanges, type RemovedVariant, diffCatalogs, modelsOf, settleCatalog } from './catalog';
import { type ModelFileFound, findModelFiles, isWatchedPath } from './files';
import { type Policy, DEFAULT_POLICY, pickVariant } from './policy';
import { type ModelEntry, type VariantEntry, readVariant } from './variant';

export interface RegistryOptions {
  /** Watch the directory with fs.watch and rescan on changes (default true). */
  watch?: boolean;
  /** Rescan every this many ms as well, for changes fs.watch misses (network shares, inotify limits); 0 = never (default 2000). */
  pollMs?: number;
  /** Wait this long after the last file event before rescanning, so a copy in progress is read once (default 150). */
  debounceMs?: number;
}

/** Events, all with one payload. There is no 'error' event: a broken model is news, not a failure of the registry. */
export interface RegistryEvents {
  /** A variant is now served. */
  added: [VariantEntry];
  /** A served variant's model or card was rewritten. */
  changed: [VariantEntry];
  /** A variant is no longer served (deleted, renamed, or broken: then 'broken' follows). */
  removed: [RemovedVariant];
  /** A file cannot be served, or fails in a new way. */
  broken: [BrokenModel];
  /** A file that was broken is served again ('added' came first). */
  repaired: [VariantEntry];
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new EdgeInferError('E_ARGUMENT', `${name}: expected a number of milliseconds ≥ 0, got ${String(value)}`);
  }
  return value;
}

function asEdgeError(file: string, err: unknown): EdgeInferError {
  if (err instanceof EdgeInferError) return err;
  return new EdgeInferError('E_MODEL_CORRUPT', `${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

export class ModelRegistry extends EventEmitter<RegistryEvents> {
  private catalog: Catalog = EMPTY_CATALOG;
  /** The last reading of each model file, reused while its stamp (and its card's) stays the same. */
  private readonly readings = new Map<string, Reading>();
  private running: Promise<RegistryChanges> | null = null;
  private queued: Promise<RegistryChanges> | null = null;
  private watcher: FSWatcher | null = null;
  /** The inode of the directory the watcher is on: a directory deleted and made again needs a new watcher. */
  private watchedIno: number | null = null;
  private debounceTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(
    /** The models directory, absolute. */
    readonly dir: string,
    private readonly pollMs: number,
    private readonly debounceMs: number,
    private readonly watchWanted: boolean,
  ) {
    super();
  }

  /** Scans `dir` and, unless told otherwise, keeps watching it. Broken models never make this fail. */
  static async open(dir: string, options: RegistryOptions = {}): Promise<ModelRegistry> {
    const pollMs = nonNegative('pollMs', options.pollMs, 2000);
    const debounceMs = nonNegative('debounceMs', options.debounceMs, 150);
    const root = path.resolve(dir);
    const stats = await fs.stat(root).catch(() => null);
    if (!stats?.isDirectory()) throw new EdgeInferError('E_ARGUMENT', `${root}: expected a models directory, ${stats ? 'it is a file' : 'it does not exist'}`);
    const registry = new ModelRegistry(root, pollMs, debounceMs, options.watch ?? true);
    await registry.rescan();
    registry.schedulePoll();
    return registry;
  }

  /** True while fs.watch is running; false when not asked for or when the system refused it. */
  get watching(): boolean {
    return this.watcher !== null;
  }

  /** Every model with at least one servable variant, sorted by id. */
  models(): ModelEntry[] {
    return modelsOf(this.catalog);
  }

  /** One model by id; E_REGISTRY listing the known ids when there is none. */
  get(id: string): ModelEntry {
    const models = this.models();
    const model = models.find((m) => m.id === id);
    if (model) return model;
    const known = models.length > 0 ? `known: ${models.map((m) => m.id).join(', ')}` : 'it holds no servable models';
    const broken = this.catalog.broken.size > 0 ? `; ${this.catalog.broken.size} file(s) there are broken, see errors()` : '';
    throw new EdgeInferError('E_REGISTRY', `no model '${id}' in ${this.dir} (${known}${broken})`);
  }

  /** The variant of a model that the policy picks (default: smallest within 1 point of fp32). */
  pick(id: string, policy: Policy | string = DEFAULT_POLICY): VariantEntry {
    return pickVariant(this.get(id).variants, policy);
  }

  /** Files that cannot be served and why, sorted by path. */
  errors(): BrokenModel[] {
    return [...this.catalog.broken.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([file, error]) => ({ file, error }));
  }

  /**
   * Scans now and returns what changed (the events fire too). A call made while a scan runs
   * waits for one more scan after it, shared by every such caller, so that it sees the latest files.
   */
  rescan(): Promise<RegistryChanges> {
    if (this.closed) return Promise.reject(new EdgeInferError('E_REGISTRY', `${this.dir}: the registry is closed`));
    if (!this.running) return this.startScan();
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = null;
        return this.startScan();
      });
    return this.queued;
  }

  /** Stops watching and polling, and waits for a scan in progress; no events fire afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopWatching();
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.debounceTimer = this.pollTimer = null;
    await Promise.allSettled([this.running, this.queued]);
  }

  private startScan(): Promise<RegistryChanges> {
    if (this.closed) return Promise.reject(new EdgeInferError('E_REGISTRY', `${this.dir}: the registry is closed`));
    const scan = this.scan().finally(() => {
      if (this.running === scan) this.running = null;
    });
    this.running = scan;
    return scan;
  }

  private async scan(): Promise<RegistryChanges> {
    // Watch before walking, so that a file dropped in while we walk still brings a scan after this one.
    await this.keepWatching();
    const { models, problems } = await findModelFiles(this.dir);
    const readings: Reading[] = [];
    // One file at a time: a Pi has little memory to spare for several models in flight.
    for (const found of models) readings.push(await this.read(found));
    const present = new Set(models.map((m) => m.file));
    for (const file of this.readings.keys()) if (!present.has(file)) this.readings.delete(file);
    const next = settleCatalog(readings, problems, this.catalog);
    const changes = diffCatalogs(this.catalog, next);
    this.catalog = next;
    if (!this.closed) this.announce(changes);
    return changes;
  }

  private async read(found: ModelFileFound): Promise<Reading> {
    const last = this.readings.get(found.file);
    if (last && last.stamp === found.stamp) return last;
    const result = await readVariant(found).catch((err: unknown) => asEdgeError(found.file, err));
    const reading = { file: found.file, stamp: found.stamp, result };
    this.readings.set(found.file, reading);
    return reading;
  }

  /** Emits the changes; a listener that throws is reported as uncaught, not as a failed scan. */
  private announce(changes: RegistryChanges): void {
    // Every payload is one value; the typed emit cannot take a generic tuple, this untyped one can.
    const emit = (event: keyof RegistryEvents, payload: unknown): void => {
      try {
        (EventEmitter.prototype.emit as (this: unknown, e: string, p: unknown) => boolean).call(this, event, payload);
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
    };
    for (const r of changes.removed) emit('removed', r);
    for (const b of changes.broken) emit('broken', b);
    for (const v of changes.changed) emit('changed', v);
    for (const v of changes.added) emit('added', v);
    for (const v of changes.repaired) emit('repaired', v);
  }

  /** Starts the watcher, or starts it again on a models directory that was deleted and made anew. */
  private async keepWatching(): Promise<void> {
    if (!this.watchWanted || this.closed) return;
    const ino = (await fs.stat(this.dir).catch(() => null))?.ino ?? null;
    if (this.watcher && ino === this.watchedIno) return;
    this.stopWatching();
    if (ino !== null) this.startWatching(ino);
  }

  private startWatching(ino: number): void {
    try {
      this.watcher = watch(this.dir, { recursive: true }, (_event, filename) => {
        if (isWatchedPath(filename)) this.soon();
      });
    } catch {
      return; // out of inotify watches, or a file system without events: polling carries on
    }
    this.watchedIno = ino;
    // The watch broke; polling carries on, and the next scan tries to watch again.
    this.watcher.on('error', () => this.stopWatching());
    this.watcher.unref();
  }

  private stopWatching(): void {
    this.watcher?.close();
    this.watcher = null;
    this.watchedIno = null;
  }

  /** Rescans once the directory has been quiet for debounceMs. */
  private soon(): void {
    if (this.closed) return;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = null;
      void this.scanInBackground();
    }, this.debounceMs);
    this.debounceTimer.unref();
  }

  private schedulePoll(): void {
    if (this.closed || this.pollMs === 0) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = null;
      void this.scanInBackground().finally(() => this.schedulePoll());
    }, this.pollMs);
    this.pollTimer.unref();
  }

  /** Scans for the watcher or the poll; what it finds is told through events, so nothing waits on it. */
  private async scanInBackground(): Promise<void> {
    if (this.closed) return;
    await this.rescan().catch(() => undefined);
  }
}
