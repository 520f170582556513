// Alerts as changes of state, not windows: a device is raised after `consecutive` anomalous
// windows in a row, reminded of at most once per cooldown while it stays anomalous, and cleared
// after `clearAfter` normal windows in a row. One logic for the gateway's pipeline and the
// Node-RED model nodes, so that the same plant gives the same alerts on both paths.
import { EdgeInferError } from '../errors';
import type { ModelCard } from '../model/card';
import type { AlertRecord } from '../store';

export interface AlertPolicy {
  /** Anomalous windows in a row before an alert is raised (≥1). */
  consecutive: number;
  /** Seconds after an alert before the same device may raise another (re-alert while still anomalous, or a new one after a clear). */
  cooldownS: number;
  /** Normal windows in a row that clear a raised alert (default: consecutive). */
  clearAfter?: number;
}

export type AlertChange = { kind: 'raised' | 'repeated' | 'cleared'; device: string; timeMs: number; windows: number };

interface DeviceState {
  raised: boolean;
  /** Anomalous windows in a row. */
  anomalous: number;
  /** Normal windows in a row (counted only while raised: a normal device is not kept). */
  normal: number;
  /** Data time of the last raised or repeated alert; kept across a clear for the cooldown. */
  lastAlertMs: number | undefined;
}

export class AlertTracker {
  readonly consecutive: number;
  readonly cooldownMs: number;
  readonly clearAfter: number;
  private readonly devices = new Map<string, DeviceState>();

  constructor(policy: AlertPolicy) {
    if (typeof policy !== 'object' || policy === null) throw new EdgeInferError('E_ARGUMENT', `alert policy: expected an object, got ${policy === null ? 'null' : typeof policy}`);
    const { consecutive, cooldownS, clearAfter = consecutive } = policy;
    if (!Number.isInteger(consecutive) || consecutive < 1) throw new EdgeInferError('E_ARGUMENT', `alert policy: consecutive must be a whole number ≥ 1, got ${String(consecutive)}`);
    if (typeof cooldownS !== 'number' || !Number.isFinite(cooldownS) || cooldownS < 0) throw new EdgeInferError('E_ARGUMENT', `alert policy: cooldownS must be a finite number ≥ 0, got ${String(cooldownS)}`);
    if (!Number.isInteger(clearAfter) || clearAfter < 1) throw new EdgeInferError('E_ARGUMENT', `alert policy: clearAfter must be a whole number ≥ 1, got ${String(clearAfter)}`);
    this.consecutive = consecutive;
    this.cooldownMs = cooldownS * 1000;
    this.clearAfter = clearAfter;
  }

  /** One window's verdict for a device, at the window's own time (data time, not wall clock). Returns the change of state, if any. */
  observe(device: string, anomalous: boolean, timeMs: number): AlertChange | undefined {
    if (!Number.isFinite(timeMs)) throw new EdgeInferError('E_ARGUMENT', `alert of ${device}: timeMs must be a finite number, got ${String(timeMs)}`);
    let s = this.devices.get(device);
    if (!anomalous) {
      // A device that is normal and not raised holds no state: seen once, it costs nothing.
      if (!s) return undefined;
      s.anomalous = 0;
      if (!s.raised) {
        this.drop(device, s, timeMs);
        return undefined;
      }
      s.normal++;
      if (s.normal < this.clearAfter) return undefined;
      const windows = s.normal;
      s.raised = false;
      s.normal = 0;
      this.drop(device, s, timeMs);
      return { kind: 'cleared', device, timeMs, windows };
    }
    if (!s) {
      s = { raised: false, anomalous: 0, normal: 0, lastAlertMs: undefined };
      this.devices.set(device, s);
    }
    s.anomalous++;
    s.normal = 0;
    if (!this.cooledDown(s, timeMs)) return undefined;
    if (s.raised) {
      s.lastAlertMs = timeMs;
      return { kind: 'repeated', device, timeMs, windows: s.anomalous };
    }
    if (s.anomalous < this.consecutive) return undefined;
    s.raised = true;
    s.lastAlertMs = timeMs;
    return { kind: 'raised', device, timeMs, windows: s.anomalous };
  }

  /** Whether a device is in the raised state. */
  raised(device: string): boolean {
    return this.devices.get(device)?.raised ?? false;
  }

  /** Drops a device's state (idle devices are evicted by their owner). */
  forget(device: string): void {
    this.devices.delete(device);
  }

  /** Devices tracked. */
  get size(): number {
    return this.devices.size;
  }

  /** A clock that went back counts as the cooldown having passed: an alert is never held back for good. */
  private cooledDown(s: DeviceState, timeMs: number): boolean {
    return s.lastAlertMs === undefined || timeMs < s.lastAlertMs || timeMs - s.lastAlertMs >= this.cooldownMs;
  }

  /**
   * A device back to normal and not raised is dropped, unless its last alert's cooldown still
   * runs (a new alert right after a clear must still wait for it); such a device is dropped by
   * its next normal window after the cooldown.
   */
  private drop(device: string, s: DeviceState, timeMs: number): void {
    if (s.lastAlertMs === undefined || this.cooledDown(s, timeMs)) this.devices.delete(device);
  }
}

/** The log's kind of an alert row: the task's word for a raised alert, 'reminder' and 'clear' for the others. */
export function alertKind(task: ModelCard['task'], change: AlertChange['kind']): string {
  if (change === 'repeated') return 'reminder';
  if (change === 'cleared') return 'clear';
  return task === 'classification' ? 'fault' : 'anomaly';
}

/**
 * The row (and message) one change of a device's alert state becomes, worded the same by the
 * gateway and the model nodes: the window's label and score that made the change, at `timeMs`.
 */
export function alertRecord(card: ModelCard, variant: string, change: AlertChange, window: { label: string | null; score: number }, timeMs: number): AlertRecord {
  const threshold = card.output.threshold ?? null;
  const { label, score } = window;
  const what = card.task === 'classification' ? `${label ?? 'a fault'} (${(score * 100).toFixed(0)} %)` : `score ${score.toPrecision(3)} over threshold ${threshold}`;
  const n = change.windows;
  const windows = `${n} window${n > 1 ? 's' : ''}`;
  const message =
    change.kind === 'raised' ? `${change.device}: ${card.title} reports ${what} for ${windows} in a row`
    : change.kind === 'repeated' ? `${change.device}: ${card.title} still reports ${what} (${windows} in a row)`
    : `${change.device}: ${card.title} back to normal after ${n} normal window${n > 1 ? 's' : ''}`;
  return { timeMs, device: change.device, model: card.id, variant, kind: alertKind(card.task, change.kind), label, score, threshold, message };
}
