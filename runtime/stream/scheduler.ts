// The scheduler: windows from many devices wait in one bounded queue per model and run in
// micro-batches (up to maxBatch windows, or whatever arrived within maxWaitMs). When inference
// cannot keep up, a policy decides: 'pause' stops taking messages (the broker holds them), or
// 'shed-oldest' drops the oldest windows and reports them. Memory stays bounded either way.
import type { ModelSession, WindowOutcome } from '../engine';
import { EdgeInferError } from '../errors';
import type { ModelCard } from '../model/card';
import type { ReadyWindow } from './device-windows';

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
}

export interface WindowResult {
  window: ReadyWindow;
  outcome: WindowOutcome;
}

export interface SchedulerStats {
  runs: number;
  windows: number;
  shed: number;
  /** Windows per run: count of runs by batch size. */
  batchSizes: Map<number, number>;
}

export class Scheduler {
  readonly maxBatch: number;
  readonly maxWaitMs: number;
  readonly maxQueue: number;
  readonly policy: BackPressurePolicy;
  readonly stats: SchedulerStats = { runs: 0, windows: 0, shed: 0, batchSizes: new Map() };
  private readonly queue: ReadyWindow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private waiters: Array<() => void> = [];
  private closed = false;

  /**
   * `deliver` receives each run's results and must settle (commit them) before the next run:
   * results go to the log in the order the windows ran.
   */
  constructor(
    readonly session: ModelSession,
    readonly card: ModelCard,
    private readonly deliver: (results: WindowResult[]) => Promise<void>,
    options: SchedulerOptions = {},
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {
    this.maxBatch = options.maxBatch ?? 32;
    this.maxWaitMs = options.maxWaitMs ?? 5;
    this.maxQueue = options.maxQueue ?? 2048;
    this.policy = options.policy ?? 'pause';
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1) throw new EdgeInferError('E_ARGUMENT', `maxBatch must be a whole number ≥ 1, got ${this.maxBatch}`);
    if (!Number.isInteger(this.maxQueue) || this.maxQueue < this.maxBatch) throw new EdgeInferError('E_ARGUMENT', `maxQueue must be a whole number ≥ maxBatch (${this.maxBatch}), got ${this.maxQueue}`);
  }

  /** Windows waiting. */
  get depth(): number {
    return this.queue.length;
  }

  /** True when the queue is full: under 'pause', the source should stop taking messages. */
  get full(): boolean {
    return this.queue.length >= this.maxQueue;
  }

  /**
   * Queues windows. Under 'shed-oldest' a full queue drops its oldest windows, which are
   * returned so the caller can record them; under 'pause' nothing is dropped (the queue may
   * run over by one message's windows; the source waits on `room()` before taking more).
   */
  submit(windows: readonly ReadyWindow[]): ReadyWindow[] {
    if (this.closed) throw new EdgeInferError('E_SESSION_CLOSED', `${this.card.id}: the scheduler is closed`);
    this.queue.push(...windows);
    let shed: ReadyWindow[] = [];
    if (this.policy === 'shed-oldest' && this.queue.length > this.maxQueue) {
      shed = this.queue.splice(0, this.queue.length - this.maxQueue);
      this.stats.shed += shed.length;
    }
    this.kick();
    return shed;
  }

  /** Resolves when there is room in the queue again. */
  room(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private kick(): void {
    if (this.running || this.queue.length === 0) return;
    if (this.queue.length >= this.maxBatch || this.maxWaitMs === 0) {
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

  private async runBatches(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.releaseWaiters();
      try {
        const outcomes = await this.session.runWindows(batch.map((w) => ({ [this.card.input.tensor]: { type: 'float32', data: w.features, dims: w.dims } })));
        this.stats.runs++;
        this.stats.windows += batch.length;
        this.stats.batchSizes.set(batch.length, (this.stats.batchSizes.get(batch.length) ?? 0) + 1);
        await this.deliver(batch.map((window, i) => ({ window, outcome: outcomes[i] })));
      } catch (err) {
        // A delivery that fails (the log cannot be written) is the caller's to handle; the
        // scheduler keeps going with the next windows.
        this.onError(err);
      }
      // Under 'pause' the queue fills while a run is on; wait for more only when there is little.
      if (this.queue.length < this.maxBatch && this.maxWaitMs > 0) break;
    }
  }

  private releaseWaiters(): void {
    if (this.full) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Runs what is queued now and waits for it to be delivered. */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.running) {
      this.start();
      await this.running;
    }
  }

  /** Stops accepting windows; runs what is queued. */
  async close(): Promise<void> {
    this.closed = true;
    await this.drain();
    this.releaseWaiters();
  }
}
