// The model a pipeline serves, swappable between batches. The scheduler asks the slot which
// session runs each batch (take) and tells it how the batch went (judge), so a batch never runs
// half on one variant and half on another. A new variant is on probation for its first batches:
// if it throws, fails a window while running (E_RUN) or gives a non-finite output, the slot rolls
// back to the variant it replaced
// (still loaded) and the batch runs again there, so no window is lost to the bad variant. The
// replaced variant is unloaded only once the new one has served its probation.
import type { ModelSession, WindowOutcome } from '../engine';
import { EdgeInferError } from '../errors';
import type { VariantEntry } from '../model';

/** One loaded variant. */
export interface Serving {
  readonly session: ModelSession;
  /** The variant's name, as results carry it. */
  readonly variant: string;
  /** sha256 of its ONNX bytes, hex, when known (hot-swapped variants). */
  readonly sha256?: string;
  /** What the registry (or the update's check) knows of it: card, file, size. */
  readonly entry?: VariantEntry;
}

/** How a swap ended: the new variant served its probation, or it was rolled back (and why). */
export type SwapOutcome = { state: 'active' } | { state: 'rolled-back'; reason: string };

interface Probation {
  readonly next: Serving;
  readonly previous: Serving;
  /** Healthy batches still to serve before the previous variant is let go. */
  left: number;
  readonly total: number;
  readonly settle: (o: SwapOutcome) => void;
  /** Called once the new variant has served its first batch (it is serving: 'active'). */
  readonly first?: () => void;
  served: boolean;
}

/** The output tensor's first non-finite value in a batch's outcomes, named; null when all are finite. */
export function nonFiniteOutput(outcomes: readonly WindowOutcome[], tensor: string): string | null {
  for (const [i, o] of outcomes.entries()) {
    if (!o.ok) continue;
    const data = o.outputs[tensor]?.data;
    if (!(data instanceof Float32Array)) continue;
    for (const v of data) if (!Number.isFinite(v)) return `output '${tensor}' of window ${i} of the batch is ${v}`;
  }
  return null;
}

/**
 * The first window of a batch the model failed while running (E_RUN: a session reports a run that
 * failed per window, not as a throw), named; null when none did. A window refused for its input
 * (E_INPUT_*) is the window's fault, not the variant's.
 */
export function runFailure(outcomes: readonly WindowOutcome[]): string | null {
  for (const [i, o] of outcomes.entries()) if (!o.ok && o.error.code === 'E_RUN') return `it failed window ${i} of a batch: ${o.error.message}`;
  return null;
}

/** What a batch says against the variant it ran on (a throw, a window it failed, a non-finite output); null when nothing. */
export function variantProblem(result: { error: unknown } | { outcomes: readonly WindowOutcome[] }, outputTensor: string): string | null {
  if ('error' in result) return `it failed a batch: ${result.error instanceof Error ? result.error.message : String(result.error)}`;
  return runFailure(result.outcomes) ?? nonFiniteOutput(result.outcomes, outputTensor);
}

export class ModelSlot {
  private current: Serving;
  private probation: Probation | undefined;
  private closed = false;

  constructor(
    serving: Serving,
    /** The output tensor whose values the health check reads. */
    private readonly outputTensor: string,
    /** Reports a session that could not be unloaded (never fails a batch). */
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {
    this.current = serving;
  }

  /** The variant serving now (the one the next batch runs on). */
  get serving(): Serving {
    return this.current;
  }

  /** True while a swapped-in variant is on probation (a next swap waits for it to end). */
  get swapping(): boolean {
    return this.probation !== undefined;
  }

  /** Every session the slot holds (the serving one, and the previous one during a probation). */
  sessions(): ModelSession[] {
    return this.probation ? [this.current.session, this.probation.previous.session] : [this.current.session];
  }

  /** The variant a batch starting now runs on, start to end. */
  take(): Serving {
    return this.current;
  }

  /**
   * Serves `next` from the next batch on. The variant serving now stays loaded until `next` has
   * served `healthBatches` batches without throwing, failing a window or giving non-finite outputs; then it is
   * unloaded and the promise resolves 'active'. A failure within them swaps back and resolves
   * 'rolled-back' with the reason (the failed batch runs again on the previous variant).
   * `onFirstBatch` is called once `next` has served a batch.
   */
  swap(next: Serving, healthBatches: number, onFirstBatch?: () => void): Promise<SwapOutcome> {
    if (this.closed) return Promise.reject(new EdgeInferError('E_SESSION_CLOSED', `${next.session.name}: the pipeline is closed`));
    if (this.probation) return Promise.reject(new EdgeInferError('E_ARGUMENT', `${next.session.name}: a swap to ${this.probation.next.variant} is still on probation`));
    if (!Number.isInteger(healthBatches) || healthBatches < 1) return Promise.reject(new EdgeInferError('E_ARGUMENT', `healthBatches: expected a whole number ≥ 1, got ${healthBatches}`));
    return new Promise((resolve) => {
      this.probation = { next, previous: this.current, left: healthBatches, total: healthBatches, settle: resolve, first: onFirstBatch, served: false };
      this.current = next;
    });
  }

  /**
   * After a batch ran on `ran`: its whole-run error, or its outcomes. Returns the variant to run
   * the batch again on when `ran` failed its probation (it has been rolled back), else undefined.
   */
  judge(ran: Serving, result: { error: unknown } | { outcomes: readonly WindowOutcome[] }): Serving | undefined {
    const p = this.probation;
    if (!p || p.next !== ran) return undefined;
    const problem = variantProblem(result, this.outputTensor);
    if (problem !== null) {
      const batch = `on batch ${p.total - p.left + 1} of its ${p.total} on probation`;
      this.probation = undefined;
      this.current = p.previous;
      const reason = `${ran.variant} rolled back to ${p.previous.variant} ${batch} after the swap: ${problem}`;
      this.unload(ran);
      p.settle({ state: 'rolled-back', reason });
      return p.previous;
    }
    if (!p.served) {
      p.served = true;
      p.first?.();
    }
    if (--p.left === 0) {
      this.probation = undefined;
      this.unload(p.previous);
      p.settle({ state: 'active' });
    }
    return undefined;
  }

  /** Ends a probation as it stands (the pipeline closes): the new variant stays, the old one goes. */
  close(): void {
    this.closed = true;
    const p = this.probation;
    if (!p) return;
    this.probation = undefined;
    this.unload(p.previous);
    p.settle({ state: 'active' });
  }

  private unload(s: Serving): void {
    // dispose() waits for runs in flight (an agreement check) before it lets the session go.
    s.session.dispose().catch((err: unknown) => this.onError(err));
  }
}
