// Alerts as changes of state, not windows: a device is raised after `consecutive` anomalous
// windows, reminded of while it stays anomalous once per cooldown, and cleared after
// `clearAfter` normal windows. The gateway's pipelines and the Node-RED model nodes share it.
import { EdgeInferError } from '../errors';

export interface AlertPolicy {
  /** Anomalous windows in a row before an alert is raised (≥1). */
  consecutive: number;
  /** Seconds after an alert before the same device may raise another (re-alert while still anomalous, or a new one after a clear). */
  cooldownS: number;
  /** Normal windows in a row that clear a raised alert (default: consecutive). */
  clearAfter?: number;
}

export type AlertChange = { kind: 'raised' | 'repeated' | 'cleared'; device: string; timeMs: number; windows: number };

interface DeviceAlertState {
  raised: boolean;
  anomalous: number;
  normal: number;
  lastAlertMs: number;
}

export class AlertTracker {
  private readonly devices = new Map<string, DeviceAlertState>();
  readonly consecutive: number;
  readonly cooldownMs: number;
  readonly clearAfter: number;

  constructor(policy: AlertPolicy) {
    const { consecutive, cooldownS } = policy;
    const clearAfter = policy.clearAfter ?? consecutive;
    if (!Number.isInteger(consecutive) || consecutive < 1) throw new EdgeInferError('E_ARGUMENT', `alerts.consecutive: expected a whole number ≥ 1, got ${consecutive}`);
    if (!Number.isFinite(cooldownS) || cooldownS < 0) throw new EdgeInferError('E_ARGUMENT', `alerts.cooldownS: expected a number of seconds ≥ 0, got ${cooldownS}`);
    if (!Number.isInteger(clearAfter) || clearAfter < 1) throw new EdgeInferError('E_ARGUMENT', `alerts.clearAfter: expected a whole number ≥ 1, got ${clearAfter}`);
    this.consecutive = consecutive;
    this.cooldownMs = cooldownS * 1000;
    this.clearAfter = clearAfter;
  }

  /** One window's verdict for a device, at the window's own time. Returns the change of state, if any. */
  observe(device: string, anomalous: boolean, timeMs: number): AlertChange | undefined {
    let s = this.devices.get(device);
    if (!anomalous) {
      if (!s) return undefined;
      s.anomalous = 0;
      if (!s.raised) {
        // Only raised devices (and anomalous runs) are kept: a normal plant costs no memory.
        if (timeMs - s.lastAlertMs >= this.cooldownMs || timeMs < s.lastAlertMs) this.devices.delete(device);
        return undefined;
      }
      s.normal++;
      if (s.normal < this.clearAfter) return undefined;
      s.raised = false;
      const windows = s.normal;
      s.normal = 0;
      return { kind: 'cleared', device, timeMs, windows };
    }
    if (!s) {
      s = { raised: false, anomalous: 0, normal: 0, lastAlertMs: -Infinity };
      this.devices.set(device, s);
    }
    s.anomalous++;
    s.normal = 0;
    // A clock that went back counts as the cooldown passed: never suppress forever.
    const cooled = timeMs - s.lastAlertMs >= this.cooldownMs || timeMs < s.lastAlertMs;
    if (!cooled) return undefined;
    if (!s.raised) {
      if (s.anomalous < this.consecutive) return undefined;
      s.raised = true;
      s.lastAlertMs = timeMs;
      return { kind: 'raised', device, timeMs, windows: s.anomalous };
    }
    s.lastAlertMs = timeMs;
    return { kind: 'repeated', device, timeMs, windows: s.anomalous };
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
}
