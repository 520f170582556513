// Reading a device's recorded healthy windows back from the log: what a fine-tune learns from.
import Database from 'better-sqlite3';
import { promises as fs } from 'node:fs';
import { EdgeInferError } from '../errors';

export interface TaughtSet {
  /** The baseline (teach-in) the windows were learned in. */
  baselineId: number;
  /** Model-input features of each window, oldest first. */
  features: Float32Array[];
  /** Data time of the first and last window, ms since the epoch. */
  firstWindowMs: number;
  lastWindowMs: number;
}

/** The newest active baseline's recorded windows of a device's model; null when there is no active baseline. */
export function taughtWindowsOf(db: Database.Database, device: string, model: string): TaughtSet | null {
  const row = db.prepare("SELECT id FROM baselines WHERE device = ? AND model = ? AND state = 'active' ORDER BY id DESC LIMIT 1").get(device, model) as { id: number } | undefined;
  if (!row) return null;
  // In data-time order: past the bound a later window is written in the place of an earlier one.
  const rows = db.prepare('SELECT time_ms AS timeMs, features FROM taught_windows WHERE baseline_id = ? ORDER BY time_ms, id').all(row.id) as Array<{ timeMs: number; features: Buffer }>;
  // A copy per window: a BLOB's bytes need not be aligned for a Float32Array view.
  const features = rows.map((r) => new Float32Array(new Uint8Array(r.features).buffer));
  return { baselineId: row.id, features, firstWindowMs: rows[0]?.timeMs ?? NaN, lastWindowMs: rows[rows.length - 1]?.timeMs ?? NaN };
}

/** Opens a gateway's log read-only (the gateway may be writing it); errors name the file. */
export async function openLogReadOnly(file: string): Promise<Database.Database> {
  try {
    await fs.access(file);
  } catch {
    throw new EdgeInferError('E_ARGUMENT', `--log ${file}: no such file`);
  }
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version < 13) {
      db.close();
      throw new EdgeInferError('E_ARGUMENT', `--log ${file}: schema version ${version} has no recorded teach-in windows (13 or newer needed: run the gateway of this version on it first)`);
    }
  } catch (err) {
    if (err instanceof EdgeInferError) throw err;
    throw new EdgeInferError('E_STORE_OPEN', `--log ${file}: not an edge-infer log (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  return db;
}
