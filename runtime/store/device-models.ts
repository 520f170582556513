// The log of per-device model variants (table device_models, migration 14): a device given a model
// folder of its own for one model id. One row per change (set, rolled back, cleared); the newest
// row of a (device, model) pair is its state, so a restart serves each device what it served.
// Written in its own transaction when the change happens: it is rare, and must survive a restart
// the moment the caller is told the device serves its own variant.
import type Database from 'better-sqlite3';

export const DEVICE_MODEL_STATES = ['active', 'rolled-back', 'cleared'] as const;
export type DeviceModelState = (typeof DEVICE_MODEL_STATES)[number];

export interface DeviceModelRecord {
  device: string;
  model: string;
  /** The device's model folder, absolute (null: cleared without one). */
  folder: string | null;
  /** The variant picked from the folder (null: none served). */
  variant: string | null;
  /** sha256 of the picked variant's ONNX bytes, hex (null: none served). */
  sha256: string | null;
  state: DeviceModelState;
  /** Wall time of the change, ms since the epoch. */
  sinceMs: number;
  /** Why it was rolled back or cleared; null for an active one. */
  reason: string | null;
}

export interface DeviceModelRow extends DeviceModelRecord {
  id: number;
}

const COLUMNS = 'id, device, model, folder, variant, sha256, state, since_ms AS sinceMs, reason';

export class DeviceModels {
  private readonly insert: Database.Statement;
  private readonly latest: Database.Statement;

  constructor(db: Database.Database) {
    this.insert = db.prepare('INSERT INTO device_models (device, model, folder, variant, sha256, state, since_ms, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    this.latest = db.prepare(`SELECT ${COLUMNS} FROM device_models d WHERE id = (SELECT MAX(id) FROM device_models WHERE device = d.device AND model = d.model) ORDER BY model, device`);
  }

  /** Logs one change; committed when this returns. */
  add(r: DeviceModelRecord): number {
    return Number(this.insert.run(r.device, r.model, r.folder, r.variant, r.sha256, r.state, r.sinceMs, r.reason).lastInsertRowid);
  }

  /** The newest row of each (device, model) pair, by model then device. */
  current(): DeviceModelRow[] {
    return this.latest.all() as DeviceModelRow[];
  }

  /** The pairs whose newest row is active: what a restart serves again. */
  active(): DeviceModelRow[] {
    return this.current().filter((r) => r.state === 'active');
  }
}
