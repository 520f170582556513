// Per-device model variants of one pipeline: a device given a model folder of its own (a
// fine-tuned variant) has its windows run on its own session, every other device's on the
// pipeline's shared slot. The scheduler splits each batch by session and hands the results back
// in batch order, so each device's results keep their order. A device variant always has the
// shared one to fall back to, still loaded: a throw or a non-finite output at any time (not only
// on probation) rolls that device back to the shared variant, and its windows run again there.
import type { ModelSession, WindowOutcome } from '../engine';
import { EdgeInferError } from '../errors';
import type { ModelCard } from '../model';
import { type Serving, variantProblem } from './model-slot';

/** Most devices one model may serve from their own variants by default: one session each. */
export const DEFAULT_MAX_DEVICE_VARIANTS = 32;

/** A device's own variant, loaded. */
export interface DeviceServing extends Serving {
  readonly device: string;
  /** Its card: its threshold judges the device's results. */
  readonly card: ModelCard;
  /** sha256 of its ONNX bytes, hex: the results it makes carry it. */
  readonly sha256: string;
  /** The folder it was picked from. */
  readonly folder: string;
}

interface Held {
  readonly serving: DeviceServing;
  /** Healthy batches still to serve before the variant counts as proven (reported only). */
  probation: number;
  readonly rolledBack: (reason: string) => void;
}

export class DeviceVariants {
  private readonly held = new Map<string, Held>();
  private closed = false;

  constructor(
    /** The output tensor whose values the health check reads. */
    private readonly outputTensor: string,
    /** Most devices with a variant of their own. */
    readonly max = DEFAULT_MAX_DEVICE_VARIANTS,
    /** Reports a session that could not be unloaded (never fails a batch). */
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {
    if (!Number.isInteger(max) || max < 1) throw new EdgeInferError('E_ARGUMENT', `max device variants: expected a whole number ≥ 1, got ${max}`);
  }

  /** Devices served by their own variant. */
  get size(): number {
    return this.held.size;
  }

  /** The device's own variant, or undefined: the shared one serves it. */
  get(device: string): DeviceServing | undefined {
    return this.held.get(device)?.serving;
  }

  /** Batches the device's variant still serves on probation (0: proven), or undefined. */
  probation(device: string): number | undefined {
    return this.held.get(device)?.probation;
  }

  /** Every session held (to dispose them at the end). */
  sessions(): ModelSession[] {
    return [...this.held.values()].map((h) => h.serving.session);
  }

  /** True when one more device could be given a variant (or this one has one already). */
  hasRoom(device: string): boolean {
    return this.held.has(device) || this.held.size < this.max;
  }

  /**
   * Serves the device from `serving` from its next batch on; a variant it had is unloaded (after
   * the runs in flight on it). `rolledBack` is called, once, if the variant fails a batch.
   * Throws E_CONFLICT past the bound of devices.
   */
  set(serving: DeviceServing, healthBatches: number, rolledBack: (reason: string) => void): void {
    if (this.closed) throw new EdgeInferError('E_SESSION_CLOSED', `${serving.session.name}: the pipeline is closed`);
    if (!Number.isInteger(healthBatches) || healthBatches < 1) throw new EdgeInferError('E_ARGUMENT', `healthBatches: expected a whole number ≥ 1, got ${healthBatches}`);
    if (!this.hasRoom(serving.device)) throw new EdgeInferError('E_CONFLICT', `${serving.device}: ${this.max} devices already have a model of their own for '${serving.card.id}', the most one model may have (one session each); clear one first`);
    const before = this.held.get(serving.device);
    this.held.set(serving.device, { serving, probation: healthBatches, rolledBack });
    if (before && before.serving.session !== serving.session) this.unload(before.serving);
  }

  /** Serves the device from the shared variant again; false when it had none of its own. */
  clear(device: string): boolean {
    const h = this.held.get(device);
    if (!h) return false;
    this.held.delete(device);
    this.unload(h.serving);
    return true;
  }

  /**
   * After a batch ran on a device's variant: its whole-run error, or its outcomes. True when the
   * variant failed (a throw, a non-finite output): the device is rolled back to the shared
   * variant, and the batch must run again there.
   */
  judge(ran: DeviceServing, result: { error: unknown } | { outcomes: readonly WindowOutcome[] }): boolean {
    const h = this.held.get(ran.device);
    // Cleared or replaced while it ran: its results stand (they are the variant's), nothing to judge.
    if (!h || h.serving !== ran) return false;
    const problem = variantProblem(result, this.outputTensor);
    if (problem === null) {
      if (h.probation > 0) h.probation--;
      return false;
    }
    this.held.delete(ran.device);
    this.unload(ran);
    h.rolledBack(`${ran.device}: its own ${ran.variant} (${ran.sha256.slice(0, 12)}) rolled back to the shared variant${h.probation > 0 ? ' on probation' : ''}: ${problem}`);
    return true;
  }

  /** The pipeline closes: nothing more is set; the sessions stay for the caller to dispose. */
  close(): void {
    this.closed = true;
  }

  private unload(s: Serving): void {
    // dispose() waits for runs in flight before it lets the session go.
    s.session.dispose().catch((err: unknown) => this.onError(err));
  }
}
