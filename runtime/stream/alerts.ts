// Alerts as changes of state, not windows: a device is raised after `consecutive` anomalous
// windows in a row, reminded of at most once per cooldown while it stays anomalous, and cleared
// after `clearAfter` normal windows in a row. Everything counts in data time (the windows' own
// times), so a backlog processed in seconds alerts as it would have live. One logic for the
// gateway's pipeline and the Node-RED model nodes, so that the same plant gives the same alerts
// on both paths.
import { EdgeInferError } from '../errors';
import type { ModelCard } from '../model/card';
import type { AlertRecord } from '../store';

/** Default longest silence, in data time, across which a device's alert state is kept. */
export const DEFAULT_ALERT_GAP_S = 600;

export interface AlertPolicy {
  /** Anomalous windows in a row before an alert is raised (≥1). */
  consecutive: number;
  /** Seconds after an alert before the same device may raise another (re-alert while still anomalous, or a new one after a clear). */
  cooldownS: number;
  /** Normal windows in a row that clear a raised alert (default: consecutive). */
  clearAfter?: number;
  /**
   * Longest jump between a device's windows, in data time, that its alert state survives
   * (default 600 s): windows either side of a longer gap (or of a clock stepping back further)
   * are not "in a row", and a fault after it is raised anew.
   */
  maxGapS?: number;
}

export type AlertChange = { kind: 'raised' | 'repeated' | 'cleared'; device: string; timeMs: number; windows: number };

/** What the tracker holds for one device; plain numbers, so the log can keep it with each commit. */
export interface AlertState {
  raised: boolean;
  /** Anomalous windows in a row. */
  anomalous: number;
  /** Normal windows in a row (counted only while raised: a normal device is not kept). */
  normal: number;
  /** Data time of the last raised or repeated alert; kept across a clear for the cooldown. */
  lastAlertMs: number | null;
  /** Data time of the device's latest window: the tracker's clock for it never runs back. */
  lastMs: number;
}

function isAlertState(v: unknown): v is AlertState {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  const count = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0;
  return typeof s.raised === 'boolean' && count(s.anomalous) && count(s.normal) && Number.isFinite(s.lastMs) && (s.lastAlertMs === null || Number.isFinite(s.lastAlertMs));
}

export class AlertTracker {
  readonly consecutive: number;
  readonly cooldownMs: number;
  readonly clearAfter: number;
  readonly maxGapMs: number;
  private readonly devices = new Map<string, AlertState>();
  /** Devices whose state changed since takeChanged(). */
  private readonly changed = new Set<string>();
  /** Times a device's state was let go at a gap or a clock stepping back. */
  gaps = 0;

  constructor(policy: AlertPolicy) {
    if (typeof policy !== 'object' || policy === null) throw new EdgeInferError('E_ARGUMENT', `alert policy: expected an object, got ${policy === null ? 'null' : typeof policy}`);
    const { consecutive, cooldownS, clearAfter = consecutive, maxGapS = DEFAULT_ALERT_GAP_S } = policy;
    if (!Number.isInteger(consecutive) || consecutive < 1) throw new EdgeInferError('E_ARGUMENT', `alert policy: consecutive must be a whole number ≥ 1, got ${String(consecutive)}`);
    if (typeof cooldownS !== 'number' || !Number.isFinite(cooldownS) || cooldownS < 0) throw new EdgeInferError('E_ARGUMENT', `alert policy: cooldownS must be a finite number ≥ 0, got ${String(cooldownS)}`);
    if (!Number.isInteger(clearAfter) || clearAfter < 1) throw new EdgeInferError('E_ARGUMENT', `alert policy: clearAfter must be a whole number ≥ 1, got ${String(clearAfter)}`);
    if (typeof maxGapS !== 'number' || !(maxGapS > 0) || !Number.isFinite(maxGapS)) throw new EdgeInferError('E_ARGUMENT', `alert policy: maxGapS must be a finite number of seconds > 0, got ${String(maxGapS)}`);
    this.consecutive = consecutive;
    this.cooldownMs = cooldownS * 1000;
    this.clearAfter = clearAfter;
    this.maxGapMs = maxGapS * 1000;
  }

  /**
   * One window's verdict for a device, at the window's own time (data time, not wall clock).
   * Returns the change of state, if any. A window a little older than the device's latest (the
   * overlapping windows of readings dated by their arrival) counts at the latest time: a cooldown
   * never runs backwards.
   */
  observe(device: string, anomalous: boolean, timeMs: number): AlertChange | undefined {
    if (!Number.isFinite(timeMs)) throw new EdgeInferError('E_ARGUMENT', `alert of ${device}: timeMs must be a finite number, got ${String(timeMs)}`);
    let s = this.devices.get(device);
    if (s && Math.abs(timeMs - s.lastMs) > this.maxGapMs) {
      // A gap in the data (or a clock set back): nothing before it is "in a row" with what follows.
      this.let(device);
      s = undefined;
      this.gaps++;
    }
    const t = s ? Math.max(timeMs, s.lastMs) : timeMs;
    if (!anomalous) {
      // A device that is normal and not raised holds no state: seen once, it costs nothing.
      if (!s) return undefined;
      this.changed.add(device);
      s.lastMs = t;
      s.anomalous = 0;
      if (!s.raised) {
        this.drop(device, s, t);
        return undefined;
      }
      s.normal++;
      if (s.normal < this.clearAfter) return undefined;
      const windows = s.normal;
      s.raised = false;
      s.normal = 0;
      this.drop(device, s, t);
      return { kind: 'cleared', device, timeMs, windows };
    }
    if (!s) {
      s = { raised: false, anomalous: 0, normal: 0, lastAlertMs: null, lastMs: t };
      this.devices.set(device, s);
    }
    this.changed.add(device);
    s.lastMs = t;
    s.anomalous++;
    s.normal = 0;
    if (!this.cooledDown(s, t)) return undefined;
    if (s.raised) {
      s.lastAlertMs = t;
      return { kind: 'repeated', device, timeMs, windows: s.anomalous };
    }
    if (s.anomalous < this.consecutive) return undefined;
    s.raised = true;
    s.lastAlertMs = t;
    return { kind: 'raised', device, timeMs, windows: s.anomalous };
  }

  /** Whether a device is in the raised state. */
  raised(device: string): boolean {
    return this.devices.get(device)?.raised ?? false;
  }

  /** Drops a device's state (idle devices are evicted by their owner). */
  forget(device: string): void {
    this.let(device);
  }

  /** Devices tracked. */
  get size(): number {
    return this.devices.size;
  }

  /** A copy of a device's state; null when none is held (a normal device). */
  state(device: string): AlertState | null {
    const s = this.devices.get(device);
    return s ? { ...s } : null;
  }

  /**
   * The devices whose state changed since the last call, with their state now (null: none held),
   * so the log can keep them with the results that changed them.
   */
  takeChanged(): Array<[string, AlertState | null]> {
    const out: Array<[string, AlertState | null]> = [...this.changed].map((d) => [d, this.state(d)]);
    this.changed.clear();
    return out;
  }

  /**
   * Takes up the states the log kept (after a restart). Returns the devices whose state is not
   * one this tracker wrote; they start with none, as a new device does.
   */
  restore(states: ReadonlyMap<string, unknown>): string[] {
    const refused: string[] = [];
    for (const [device, v] of states) {
      if (isAlertState(v)) this.devices.set(device, { raised: v.raised, anomalous: v.anomalous, normal: v.normal, lastAlertMs: v.lastAlertMs, lastMs: v.lastMs });
      else refused.push(device);
    }
    return refused;
  }

  private cooledDown(s: AlertState, t: number): boolean {
    return s.lastAlertMs === null || t - s.lastAlertMs >= this.cooldownMs;
  }

  private let(device: string): void {
    if (this.devices.delete(device)) this.changed.add(device);
  }

  /**
   * A device back to normal and not raised is dropped, unless its last alert's cooldown still
   * runs (a new alert right after a clear must still wait for it); such a device is dropped by
   * its next normal window after the cooldown.
   */
  private drop(device: string, s: AlertState, t: number): void {
    if (this.cooledDown(s, t)) this.let(device);
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
export function alertRecord(card: ModelCard, variant: string, change: AlertChange, window: { label: string | null; score: number }, timeMs: number, processedMs?: number): AlertRecord {
  const threshold = card.output.threshold ?? null;
  const { label, score } = window;
  const what = card.task === 'classification' ? `${label ?? 'a fault'} (${(score * 100).toFixed(0)} %)` : `score ${score.toPrecision(3)} over threshold ${threshold}`;
  const n = change.windows;
  const windows = `${n} window${n > 1 ? 's' : ''}`;
  const message =
    change.kind === 'raised' ? `${change.device}: ${card.title} reports ${what} for ${windows} in a row`
    : change.kind === 'repeated' ? `${change.device}: ${card.title} still reports ${what} (${windows} in a row)`
    : `${change.device}: ${card.title} back to normal after ${n} normal window${n > 1 ? 's' : ''}`;
  return { timeMs, processedMs, device: change.device, model: card.id, variant, kind: alertKind(card.task, change.kind), label, score, threshold, message };
}
