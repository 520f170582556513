// The healthy windows an anomaly model's teach-in learns, kept in the log (taught_windows,
// migration 13) so that a fine-tune has the device's own data. Writes are grouped: one
// transaction per GROUP windows (and one when the teach-in ends), not one per window, since the
// gateway lives on an SD card. A crash loses at most the windows not yet grouped: the teach-in
// itself resumes from the results, and a fine-tune needs many windows, not every one.
import type Database from 'better-sqlite3';

/** Most windows kept per baseline: 5,000 × 192 features × 4 bytes ≈ 3.8 MB of the log. The first ones learned are kept. */
export const TAUGHT_WINDOWS_MAX = 5000;
/** Windows written per transaction. */
export const TAUGHT_WINDOWS_GROUP = 250;

export interface RecorderOptions {
  /** Most windows kept per baseline (default TAUGHT_WINDOWS_MAX). */
  max?: number;
  /** Windows written per transaction (default TAUGHT_WINDOWS_GROUP). */
  group?: number;
}

export interface RecorderStats {
  /** Windows written to the log. */
  windows: number;
  /** Feature bytes written (the BLOBs alone). */
  bytes: number;
  /** Transactions that wrote them. */
  transactions: number;
  /** Windows not kept: past the bound. */
  dropped: number;
}

interface Pending {
  baselineId: number;
  timeMs: number;
  features: Buffer;
}

export class TaughtWindows {
  readonly max: number;
  readonly group: number;
  readonly stats: RecorderStats = { windows: 0, bytes: 0, transactions: 0, dropped: 0 };
  private pending: Pending[] = [];
  /** Windows kept (written or pending) per baseline, read from the log once: a restart resumes the count. */
  private readonly kept = new Map<number, number>();
  private readonly insert: Database.Statement;
  private readonly countOf: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly removeOthers: Database.Statement;
  private readonly writeAll: Database.Transaction<(rows: Pending[]) => void>;

  constructor(private readonly db: Database.Database, options: RecorderOptions = {}) {
    this.max = options.max ?? TAUGHT_WINDOWS_MAX;
    this.group = options.group ?? TAUGHT_WINDOWS_GROUP;
    this.insert = db.prepare('INSERT INTO taught_windows (baseline_id, time_ms, features) VALUES (?, ?, ?)');
    this.countOf = db.prepare('SELECT count(*) AS n FROM taught_windows WHERE baseline_id = ?');
    this.remove = db.prepare('DELETE FROM taught_windows WHERE baseline_id = ?');
    this.removeOthers = db.prepare("DELETE FROM taught_windows WHERE baseline_id IN (SELECT id FROM baselines WHERE device = ? AND model = ? AND id <> ? AND state <> 'learning')");
    this.writeAll = db.transaction((rows: Pending[]) => {
      for (const r of rows) this.insert.run(r.baselineId, r.timeMs, r.features);
    });
  }

  /** Keeps one learned window's model-input features (copied: the caller's buffer may be reused). Returns whether it was kept. */
  add(baselineId: number, timeMs: number, features: Float32Array): boolean {
    const n = this.count(baselineId);
    if (n >= this.max || features.length === 0) {
      this.stats.dropped++;
      return false;
    }
    this.kept.set(baselineId, n + 1);
    this.pending.push({ baselineId, timeMs, features: Buffer.from(new Uint8Array(features.buffer, features.byteOffset, features.byteLength)) });
    if (this.pending.length >= this.group) this.flush();
    return true;
  }

  /** Windows kept for a baseline, written or pending. */
  count(baselineId: number): number {
    let n = this.kept.get(baselineId);
    if (n === undefined) {
      n = (this.countOf.get(baselineId) as { n: number }).n;
      this.kept.set(baselineId, n);
    }
    return n;
  }

  /** Writes the pending windows in one transaction. Returns how many. */
  flush(): number {
    const rows = this.pending;
    if (rows.length === 0) return 0;
    this.pending = [];
    this.writeAll.immediate(rows);
    this.stats.windows += rows.length;
    this.stats.transactions++;
    for (const r of rows) this.stats.bytes += r.features.byteLength;
    return rows.length;
  }

  /** Forgets a baseline's windows, pending and written: a cancelled or failed teach-in teaches nothing. */
  discard(baselineId: number): void {
    this.pending = this.pending.filter((p) => p.baselineId !== baselineId);
    this.remove.run(baselineId);
    this.kept.set(baselineId, 0);
  }

  /** Deletes the windows of a device's earlier baselines of the model, once a newer one is active: a fine-tune learns from the newest. Returns how many. */
  superseded(device: string, model: string, activeId: number): number {
    return this.removeOthers.run(device, model, activeId).changes;
  }
}
