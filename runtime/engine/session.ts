// A loaded model: validated inputs, micro-batched runs, warm-up, timing, dispose.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import { EdgeInferError } from '../errors';
import { decodeModel } from '../onnx';
import { type BackendChoice, type BackendName, type BackendSession, resolveBackend } from './backends';
import { type ModelSignature, type TensorSpec, hasDynamicBatch, signatureOf } from './signature';
import { type TensorArray, type TensorData, type TensorMap, arrayFor, sizeOf } from './tensor';
import { validateFeeds } from './validate';

export interface SessionOptions {
  /** auto (default): native where onnxruntime-node loads, else wasm. */
  backend?: BackendChoice;
  /** Threads per run; default suits a 4-core Pi: min(4, cores). */
  threads?: number;
  /** Most windows stacked into one run (default 64). */
  maxBatch?: number;
  /** Runs on zero inputs right after loading, so the first real window is not the slow one (default 1). */
  warmupRuns?: number;
  /** Names the model in error messages (default: the file path, or '<bytes>'). */
  name?: string;
  /** onnxruntime session configuration entries, passed through as they are. */
  sessionConfig?: Record<string, string>;
}

export interface RunResult {
  outputs: TensorMap;
  /** Wall time of the backend run, in milliseconds. */
  ms: number;
  /** Windows in this run (1 for a plain run). */
  batch: number;
}

/** The outcome of one window in a micro-batch: its outputs, or why it was refused. */
export type WindowOutcome =
  | { ok: true; outputs: TensorMap; ms: number; batch: number }
  | { ok: false; error: EdgeInferError };

export interface SessionStats {
  runs: number;
  windows: number;
  totalMs: number;
  lastMs: number;
}

/** Threads by default: a 4-core Pi gets all four, a bigger box no more than that. */
export function defaultThreads(): number {
  return Math.max(1, Math.min(4, os.availableParallelism()));
}

function zeroTensor(spec: TensorSpec): TensorData {
  const dims = (spec.shape ?? [1]).map((d) => (typeof d === 'number' ? d : 1));
  const type = spec.type === 'unknown' ? 'float32' : spec.type;
  return { type, data: arrayFor(type, sizeOf(dims)), dims };
}

/** A window's tensor with a batch axis of 1 in front. */
function withBatchAxis(t: TensorData): TensorData {
  return { type: t.type, data: t.data, dims: [1, ...t.dims] };
}

/** Windows of one shape, stacked along a new batch axis (one window: no copy). */
function stack(tensors: TensorData[]): TensorData {
  const first = tensors[0];
  if (tensors.length === 1) return withBatchAxis(first);
  const per = first.data.length;
  const Ctor = first.data.constructor as new (n: number) => TensorArray;
  const data = new Ctor(per * tensors.length);
  tensors.forEach((t, i) => (data as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(t.data as ArrayLike<unknown>, i * per));
  return { type: first.type, data, dims: [tensors.length, ...first.dims] };
}

function unstack(t: TensorData, n: number): TensorData[] {
  const per = t.data.length / n;
  const dims = t.dims.slice(1);
  return Array.from({ length: n }, (_, i) => ({ type: t.type, data: t.data.slice(i * per, (i + 1) * per) as TensorArray, dims }));
}

function asEdgeError(err: unknown): EdgeInferError {
  return err instanceof EdgeInferError ? err : new EdgeInferError('E_RUN', err instanceof Error ? err.message : String(err), { cause: err });
}

/** Where a session came from, so that a worker thread can load the same model the same way. */
export interface SessionOrigin {
  /** The model file. */
  file: string;
  options: SessionOptions;
}

export class ModelSession {
  /** How it was loaded: set for a model loaded from a file (bytes are not kept for it). */
  origin: SessionOrigin | undefined;
  /** Called once when the session is disposed: copies held elsewhere (worker threads) go too. */
  private readonly disposeHooks: Array<() => void> = [];
  readonly stats: SessionStats = { runs: 0, windows: 0, totalMs: 0, lastMs: 0 };
  private closed = false;
  private released = false;
  /** Runs go one at a time: a backend session is not re-entrant. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Runs accepted and not yet finished. */
  private pending = 0;

  private constructor(
    readonly name: string,
    readonly signature: ModelSignature,
    readonly backend: BackendName,
    readonly threads: number,
    readonly maxBatch: number,
    /** True when windows can be stacked along a dynamic first axis into one run. */
    readonly batchable: boolean,
    private readonly inner: BackendSession,
  ) {}

  /** Loads a model from a file path or from bytes, on the chosen backend, and warms it up. */
  static async load(source: string | Uint8Array, options: SessionOptions = {}): Promise<ModelSession> {
    const name = options.name ?? (typeof source === 'string' ? source : '<bytes>');
    const threads = options.threads ?? defaultThreads();
    if (!Number.isInteger(threads) || threads < 1) throw new EdgeInferError('E_ARGUMENT', `threads must be a whole number ≥ 1, got ${threads}`);
    const maxBatch = options.maxBatch ?? 64;
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new EdgeInferError('E_ARGUMENT', `maxBatch must be a whole number ≥ 1, got ${maxBatch}`);
    let bytes: Uint8Array;
    if (typeof source === 'string') {
      try {
        bytes = await fs.readFile(source);
      } catch (err) {
        throw new EdgeInferError('E_MODEL_FILE', `${source}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
      }
    } else if (source instanceof Uint8Array) {
      bytes = source;
    } else {
      throw new EdgeInferError('E_ARGUMENT', `a model is a file path or bytes, got ${typeof source}`);
    }
    // Our own decode first: it names the file and says "truncated" where onnxruntime would only
    // fail. Only the signature is kept: the decoded model holds views of the whole file.
    const signature = signatureOf(decodeModel(bytes, name));
    const backend = resolveBackend(options.backend ?? 'auto');
    let inner: BackendSession;
    try {
      inner = await backend.createSession(bytes, { threads, config: options.sessionConfig });
    } catch (err) {
      const e = asEdgeError(err);
      throw new EdgeInferError(e.code, `${name}: ${e.message}`, { cause: err });
    }
    const batchable = signature.inputs.length > 0 && signature.inputs.every(hasDynamicBatch) && signature.outputs.every((o) => o.shape === null || hasDynamicBatch(o));
    const session = new ModelSession(name, signature, backend.name, backend.effectiveThreads(threads), maxBatch, batchable, inner);
    if (typeof source === 'string') session.origin = { file: source, options: { ...options, name } };
    try {
      await session.warmup(options.warmupRuns ?? 1);
    } catch (err) {
      // A model that cannot run on zeros of its own declared shapes does not load.
      await session.dispose();
      const e = asEdgeError(err);
      throw new EdgeInferError(e.code, `${name}: ${e.message}`, { cause: err });
    }
    return session;
  }

  private ensureOpen(): void {
    if (this.closed) throw new EdgeInferError('E_SESSION_CLOSED', `${this.name}: the session was disposed`);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    // Idle: run now, without waiting a turn of the queue (most runs find the session idle).
    const next = this.pending === 0 ? fn() : this.queue.then(fn, fn);
    this.pending++;
    const settled = next.then(
      () => void this.pending--,
      () => void this.pending--,
    );
    this.queue = settled;
    return next;
  }

  private async timedRun(feeds: TensorMap, batch: number): Promise<RunResult> {
    // Open-ness is checked when a run is accepted: runs queued before dispose() still finish.
    return this.exclusive(async () => {
      if (this.released) throw new EdgeInferError('E_SESSION_CLOSED', `${this.name}: the session was disposed`);
      const t0 = performance.now();
      const outputs = await this.inner.run(feeds);
      const ms = performance.now() - t0;
      this.stats.runs++;
      this.stats.windows += batch;
      this.stats.totalMs += ms;
      this.stats.lastMs = ms;
      return { outputs, ms, batch };
    });
  }

  /** Runs the model on feeds that include the batch axis; inputs are validated first. */
  async run(feeds: TensorMap): Promise<RunResult> {
    this.ensureOpen();
    validateFeeds(this.signature, feeds, `${this.name}: `);
    const first = this.signature.inputs[0];
    const batch = first && hasDynamicBatch(first) ? feeds[first.name].dims[0] : 1;
    return this.timedRun(feeds, batch);
  }

  /** Runs on zero-filled inputs (dynamic dims as 1) so that first-run costs are paid now. */
  async warmup(runs = 1): Promise<void> {
    const feeds: TensorMap = {};
    for (const spec of this.signature.inputs) feeds[spec.name] = zeroTensor(spec);
    for (let i = 0; i < runs; i++) {
      this.ensureOpen();
      await this.exclusive(() => this.inner.run(feeds));
    }
  }

  /**
   * Runs many windows. A window holds each input without the batch axis. Valid windows are
   * stacked into runs of up to maxBatch when the model's batch axis is dynamic, and the outputs
   * are split back per window. A window that fails validation gets its own error and does not
   * hold back the others; if a stacked run fails, its windows are retried one by one so that
   * only the window that breaks the model is reported.
   */
  async runWindows(windows: readonly TensorMap[]): Promise<WindowOutcome[]> {
    this.ensureOpen();
    const outcomes: WindowOutcome[] = new Array(windows.length);
    const good: number[] = [];
    windows.forEach((w, i) => {
      try {
        if (!w || typeof w !== 'object') throw new EdgeInferError('E_INPUT_MISSING', `expected an object of input tensors by name, got ${w === null ? 'null' : typeof w}`);
        const batched: TensorMap = {};
        for (const [k, t] of Object.entries(w)) batched[k] = t && typeof t === 'object' && Array.isArray(t.dims) ? withBatchAxis(t) : t;
        validateFeeds(this.signature, batched, `${this.name}: window ${i}: `);
        good.push(i);
      } catch (err) {
        outcomes[i] = { ok: false, error: asEdgeError(err) };
      }
    });
    // Only windows of the same shape stack (a dynamic axis such as time may differ between them).
    const byShape = new Map<string, number[]>();
    for (const i of good) {
      const key = this.signature.inputs.map((spec) => windows[i][spec.name].dims.join(',')).join(';');
      const same = byShape.get(key);
      if (same) same.push(i);
      else byShape.set(key, [i]);
    }
    const size = this.batchable ? this.maxBatch : 1;
    for (const same of byShape.values()) {
      for (let start = 0; start < same.length; start += size) await this.runGroup(windows, same.slice(start, start + size), outcomes);
    }
    return outcomes;
  }

  private async runGroup(windows: readonly TensorMap[], group: number[], outcomes: WindowOutcome[]): Promise<void> {
    try {
      const feeds: TensorMap = {};
      for (const spec of this.signature.inputs) feeds[spec.name] = stack(group.map((i) => windows[i][spec.name]));
      const result = await this.timedRun(feeds, group.length);
      const split: Record<string, TensorData[]> = {};
      for (const [name, t] of Object.entries(result.outputs)) {
        if (t.dims[0] !== group.length) {
          throw new EdgeInferError('E_RUN', `${this.name}: output '${name}' has shape [${t.dims.join(', ')}], which does not split into ${group.length} windows`);
        }
        split[name] = unstack(t, group.length);
      }
      group.forEach((w, k) => {
        const outputs: TensorMap = {};
        for (const name of Object.keys(split)) outputs[name] = split[name][k];
        outcomes[w] = { ok: true, outputs, ms: result.ms, batch: group.length };
      });
    } catch (err) {
      if (group.length === 1 || (err instanceof EdgeInferError && err.code === 'E_SESSION_CLOSED')) {
        for (const w of group) outcomes[w] = { ok: false, error: asEdgeError(err) };
        return;
      }
      for (const w of group) await this.runGroup(windows, [w], outcomes);
    }
  }

  /** Calls `hook` once, when the session is disposed (at once if it already is). */
  onDispose(hook: () => void): void {
    if (this.closed) hook();
    else this.disposeHooks.push(hook);
  }

  /** True once dispose() was called. */
  get disposed(): boolean {
    return this.closed;
  }

  /** Releases the backend session once in-flight runs have finished; later runs fail clearly. */
  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const hook of this.disposeHooks.splice(0)) hook();
    await this.queue;
    this.released = true;
    await this.inner.release();
  }
}
