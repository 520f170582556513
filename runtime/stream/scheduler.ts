// The scheduler: windows from many devices wait in one bounded queue per model and run in
// micro-batches (up to maxBatch windows, or whatever arrived within maxWaitMs). When inference
// cannot keep up, a policy decides: under 'pause' the caller waits on room() before it processes
// another message (the gateway then stops reading from the broker, which holds the messages);
// under 'shed-oldest' the oldest windows are dropped and handed back to be reported.
import type { ModelSession, WindowOutcome } from '../engine';
import { EdgeInferError } from '../errors';
import type { ModelCard } from '../model/card';
import type { ReadyWindow } from './device-windows';
import type { DeviceServing, DeviceVariants } from './device-variants';
import { ModelSlot, type Serving } from './model-slot';
import type { WorkerPool } from './pool';

export type BackPressurePolicy = 'pause' | 'shed-oldest';

export interface SchedulerOptions {
  /** Most windows in one run (default 32). */
  maxBatch?: number;
  /** Longest a window waits for others to join its run, in ms (default 5). */
  maxWaitMs?: number;
  /** Most windows waiting (default 2048). */
  maxQueue?: number;
  /** What to do when the queue is full (default 'pause'). */
  policy?: BackPressurePolicy;
  /** Deliveries (commits) still under way while the next batch runs (default 2). */
  maxDelivering?: number;
  /**
   * Runs the feature transform and the model on a worker pool (the windows carry their samples):
   * as many batches at once as it has threads. Unset: in this thread, one batch at a time.
   */
  pool?: { pool: WorkerPool; input: ModelCard['input'] };
  /** Devices served by variants of their own: their windows run on their sessions (unset: none). */
  devices?: DeviceVariants;
}

/** How one batch ran. */
interface Ran {
  outcomes: WindowOutcome[] | undefined;
  failure: unknown;
  serving: Serving;
  /** Per window, the device variant that made its outcome (a batch that mixed sessions), else unset. */
  own?: Array<DeviceServing | undefined>;
}

export interface WindowResult {
  window: ReadyWindow;
  outcome: WindowOutcome;
  /** The variant that made it (the slot's name for it; unset for a scheduler given a bare session). */
  variant?: string;
  /** The device's own variant when it made it: its card judges the result. */
  own?: DeviceServing;
}

/**
 * Receives a failed run or delivery with the windows it concerned, so that the caller can settle
 * them (a window handed to the scheduler is always handed back: delivered, shed or failed).
 */
export type SchedulerErrorHandler = (err: unknown, windows: readonly ReadyWindow[]) => void;

export class Scheduler {
  readonly maxBatch: number;
  readonly maxWaitMs: number;
  readonly maxQueue: number;
  readonly policy: BackPressurePolicy;
  readonly maxDelivering: number;
  private readonly queue: ReadyWindow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly delivering = new Set<Promise<void>>();
  private waiters: Array<() => void> = [];
  private closed = false;
  private readonly pool: SchedulerOptions['pool'];
  private readonly devices: DeviceVariants | undefined;
  /** Wakes runBatches when windows arrive while a pool has a thread to spare. */
  private wake: (() => void) | undefined;

  /**
   * `deliver` receives each run's results. Runs are delivered in the order they ran; the next
   * batch runs while up to maxDelivering deliveries are still settling (the result log commits
   * in the order units reach it, so the log keeps run order, and the model need not sit idle
   * while a commit waits for its batch).
   */
  /** Which variant runs each batch: swappable between batches (hot-swap). */
  readonly slot: ModelSlot;
  /** Whether results carry the slot's variant name (a bare session has none). */
  private readonly named: boolean;

  constructor(
    model: ModelSession | ModelSlot,
    readonly card: ModelCard,
    private readonly deliver: (results: WindowResult[]) => Promise<void>,
    options: SchedulerOptions = {},
    private readonly onError: SchedulerErrorHandler = () => undefined,
  ) {
    this.named = model instanceof ModelSlot;
    this.slot = model instanceof ModelSlot ? model : new ModelSlot({ session: model, variant: '' }, card.output.tensor);
    this.maxBatch = options.maxBatch ?? 32;
    this.maxWaitMs = options.maxWaitMs ?? 5;
    this.maxQueue = options.maxQueue ?? 2048;
    this.policy = options.policy ?? 'pause';
    this.maxDelivering = options.maxDelivering ?? 2;
    this.pool = options.pool;
    this.devices = options.devices;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1) throw new EdgeInferError('E_ARGUMENT', `maxBatch must be a whole number ≥ 1, got ${this.maxBatch}`);
    if (!Number.isInteger(this.maxQueue) || this.maxQueue < this.maxBatch) throw new EdgeInferError('E_ARGUMENT', `maxQueue must be a whole number ≥ maxBatch (${this.maxBatch}), got ${this.maxQueue}`);
    if (!Number.isInteger(this.maxDelivering) || this.maxDelivering < 1) throw new EdgeInferError('E_ARGUMENT', `maxDelivering must be a whole number ≥ 1, got ${this.maxDelivering}`);
  }

  /** The session serving now. */
  get session(): ModelSession {
    return this.slot.serving.session;
  }

  /** Windows waiting. */
  get depth(): number {
    return this.queue.length;
  }

  /** True when the queue is full: under 'pause', the caller should wait on room() before taking more. */
  get full(): boolean {
    return this.queue.length >= this.maxQueue;
  }

  /**
   * Queues windows. Under 'shed-oldest' a full queue drops its oldest windows, which are
   * returned so the caller can record them. Under 'pause' nothing is dropped: the caller waits on
   * room() before processing a message, so the queue runs over by at most the windows of one.
   */
  submit(windows: readonly ReadyWindow[]): ReadyWindow[] {
    if (this.closed) throw new EdgeInferError('E_SESSION_CLOSED', `${this.card.id}: the scheduler is closed`);
    this.queue.push(...windows);
    let shed: ReadyWindow[] = [];
    if (this.policy === 'shed-oldest' && this.queue.length > this.maxQueue) shed = this.queue.splice(0, this.queue.length - this.maxQueue);
    this.kick();
    // A pool with an idle thread takes these windows now, while other batches run.
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
    return shed;
  }

  /** Resolves when the queue is not full (at once when it is not). */
  room(): Promise<void> {
    if (!this.full || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private kick(): void {
    if (this.running || this.queue.length === 0) return;
    // A thread of a pool that waits idle would only add the wait to every window's latency.
    if (this.queue.length >= this.maxBatch || this.maxWaitMs === 0 || this.pool) {
      this.start();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.start();
      }, this.maxWaitMs);
    }
  }

  private start(): void {
    if (this.running || this.queue.length === 0) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.running = this.runBatches().finally(() => {
      this.running = undefined;
      this.kick();
    });
  }

  /** Batches that may run at once: one in this thread; one per thread of a worker pool (one while a swap is on probation). */
  private get concurrency(): number {
    return this.pool && !this.slot.swapping ? this.pool.pool.size : 1;
  }

  private async runBatches(): Promise<void> {
    // Runs start in queue order and are delivered in that order, whenever each finishes: a
    // device's windows reach the log in the order they were made.
    const runs: Array<{ batch: ReadyWindow[]; ran: Promise<Ran> }> = [];
    let first = true;
    // The first batch goes at once (a full batch or the wait brought us here); more only while
    // a full batch waits, else the next waits maxWaitMs for others to join it. A pool's idle
    // threads take what is queued at once: a thread waiting adds latency and saves nothing.
    const startRuns = (): void => {
      while (this.queue.length > 0 && runs.length < this.concurrency && (first || this.queue.length >= this.maxBatch || this.maxWaitMs === 0 || this.pool)) {
        first = false;
        const batch = this.queue.splice(0, this.maxBatch);
        this.releaseWaiters();
        runs.push({ batch, ran: this.runBatch(batch) });
      }
    };
    for (;;) {
      startRuns();
      const next = runs[0];
      if (!next) break;
      if (this.pool && runs.length < this.concurrency && !this.closed) {
        // A thread to spare: the head run finishing, or new windows, whichever comes first.
        const arrived = new Promise<boolean>((resolve) => (this.wake = () => resolve(true)));
        const woke = await Promise.race([next.ran.then(() => false), arrived]);
        this.wake = undefined;
        if (woke) continue;
      }
      runs.shift();
      const { batch } = next;
      const { outcomes, failure, serving, own } = await next.ran;
      if (!outcomes) {
        this.onError(failure, batch);
        // As after any batch: what is queued goes next, whatever its size, when nothing runs.
        if (runs.length === 0) first = true;
        continue;
      }
      const variant = this.named ? serving.variant : undefined;
      let delivery: Promise<void>;
      try {
        delivery = this.deliver(batch.map((window, i) => (own?.[i] ? { window, outcome: outcomes[i], variant: own[i].variant, own: own[i] } : { window, outcome: outcomes[i], variant })));
      } catch (err) {
        delivery = Promise.reject(err);
      }
      // A delivery that fails is handed back with its windows; the next windows still run.
      const tracked: Promise<void> = delivery.catch((err: unknown) => this.onError(err, batch)).finally(() => this.delivering.delete(tracked));
      this.delivering.add(tracked);
      // A pool's threads go on with queued windows while commits settle (in this thread, the
      // next batch waits for them, as it always did).
      if (this.pool) startRuns();
      while (this.delivering.size >= this.maxDelivering) {
        const arrived = this.pool && runs.length < this.concurrency ? new Promise<void>((resolve) => (this.wake = resolve)) : undefined;
        await Promise.race(arrived ? [...this.delivering, arrived] : this.delivering);
        this.wake = undefined;
        if (this.pool) startRuns();
      }
    }
  }

  /** Runs one batch (never rejects): its outcomes, or why the whole run failed. */
  private async runBatch(batch: ReadyWindow[]): Promise<Ran> {
    const devices = this.devices;
    if (!devices || devices.size === 0) return this.runShared(batch);
    // Split by session: each device variant's windows, and the rest on the shared slot.
    const own = batch.map((w) => devices.get(w.device));
    if (own.every((d) => d === undefined)) return this.runShared(batch);
    const outcomes: WindowOutcome[] = new Array(batch.length);
    const groups = new Map<DeviceServing | undefined, number[]>();
    own.forEach((d, i) => {
      const g = groups.get(d);
      if (g) g.push(i);
      else groups.set(d, [i]);
    });
    const shared: number[] = groups.get(undefined) ?? [];
    for (const [d, idx] of groups) {
      if (!d) continue;
      const part = idx.map((i) => batch[i]);
      let failed: boolean;
      try {
        const got = await this.runOn(d.session, part);
        failed = devices.judge(d, { outcomes: got });
        if (!failed) idx.forEach((i, k) => (outcomes[i] = got[k]));
      } catch (err) {
        // Rolled back (or replaced, cleared while it ran): its windows go to the shared variant.
        devices.judge(d, { error: err });
        failed = true;
      }
      // Rolled back: the device's windows run again on the shared variant, none is lost.
      if (failed) {
        for (const i of idx) own[i] = undefined;
        shared.push(...idx);
      }
    }
    let serving = this.slot.serving;
    if (shared.length) {
      // Kept in batch order: a device rolled back mid-batch has its windows run in order.
      shared.sort((a, b) => a - b);
      const ran = await this.runShared(shared.map((i) => batch[i]));
      serving = ran.serving;
      const error = ran.failure instanceof EdgeInferError ? ran.failure : new EdgeInferError('E_RUN', ran.failure instanceof Error ? ran.failure.message : String(ran.failure), { cause: ran.failure });
      // A whole-run failure of the shared part fails its windows only, not the device variants'.
      shared.forEach((i, k) => (outcomes[i] = ran.outcomes ? ran.outcomes[k] : { ok: false, error }));
    }
    return { outcomes, failure: undefined, serving, own };
  }

  /** Runs windows on the shared slot (never rejects). */
  private async runShared(batch: ReadyWindow[]): Promise<Ran> {
    // The whole batch runs on one variant; a variant that fails its probation is rolled back
    // by the slot and the batch runs again, whole, on the one it replaced.
    let serving = this.slot.take();
    let failure: unknown;
    for (;;) {
      let again;
      let outcomes: WindowOutcome[] | undefined;
      try {
        outcomes = await this.runOn(serving.session, batch);
        again = this.slot.judge(serving, { outcomes });
      } catch (err) {
        failure = err;
        again = this.slot.judge(serving, { error: err });
      }
      if (!again) return { outcomes, failure: outcomes ? undefined : failure, serving };
      serving = again;
      failure = undefined;
    }
  }

  private runOn(session: ModelSession, batch: ReadyWindow[]): Promise<WindowOutcome[]> {
    if (this.pool) return this.pool.pool.run(session, this.pool.input, batch);
    const feeds = batch.map((w) => ({ [this.card.input.tensor]: { type: 'float32' as const, data: w.features, dims: w.dims } }));
    return session.runWindows(feeds);
  }

  private releaseWaiters(): void {
    if (this.full && !this.closed) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Runs what is queued now and waits for it to be delivered. */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.running || this.delivering.size > 0) {
      this.start();
      await this.running;
      await Promise.all(this.delivering);
    }
  }

  /** Stops accepting windows; runs what is queued. */
  async close(): Promise<void> {
    this.closed = true;
    this.releaseWaiters();
    await this.drain();
  }
}
