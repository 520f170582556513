// The healthy windows an anomaly model's teach-in learns, kept in the log (taught_windows,
// migration 13) so that a fine-tune has the device's own data. Writes are grouped: one
// transaction per GROUP windows (and one when the teach-in ends), not one per window, since the
// gateway lives on an SD card. A crash loses at most the windows not yet grouped: the teach-in
// itself resumes from the results, and a fine-tune needs many windows, not every one.
//
// Past the bound the kept windows stay a uniform sample of every window learned (reservoir
// sampling, Vitter's algorithm R): the n-th window replaces a kept one with probability max / n.
// A teach-in over a day then keeps windows from all of its shifts and loads, not its first
// 17 minutes; and each later window is less likely to be written, so a long teach-in writes
// about max × (1 + ln(n / max)) windows in all (27,000 of the 432,000 of a day at hop 1,024).
import type Database from 'better-sqlite3';
import { seeded } from './seeded';

/** Most windows kept per baseline: 5,000 × 192 features × 4 bytes ≈ 3.8 MB of the log, a uniform sample of those learned. */
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
  /** Windows not kept: past the bound, not drawn into the sample. */
  dropped: number;
  /** Kept windows replaced by a later one drawn into the sample (written in place). */
  replaced: number;
}

interface Pending {
  baselineId: number;
  timeMs: number;
  features: Buffer;
  /** The row it replaces; none for a new row. */
  replaces?: number;
}

export class TaughtWindows {
  readonly max: number;
  readonly group: number;
  readonly stats: RecorderStats = { windows: 0, bytes: 0, transactions: 0, dropped: 0, replaced: 0 };
  private pending: Pending[] = [];
  /** Windows kept (written or pending) per baseline, read from the log once: a restart resumes the count. */
  private readonly kept = new Map<number, number>();
  /** Windows learned per baseline where the caller does not say (counted from what was kept at first). */
  private readonly learned = new Map<number, number>();
  /** The row ids of a full baseline, its sample's slots. */
  private readonly slots = new Map<number, number[]>();
  private readonly insert: Database.Statement;
  private readonly replace: Database.Statement;
  private readonly idsOf: Database.Statement;
  private readonly countOf: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly removeOthers: Database.Statement;
  private readonly writeAll: Database.Transaction<(rows: Pending[]) => void>;

  constructor(private readonly db: Database.Database, options: RecorderOptions = {}) {
    this.max = options.max ?? TAUGHT_WINDOWS_MAX;
    this.group = options.group ?? TAUGHT_WINDOWS_GROUP;
    this.insert = db.prepare('INSERT INTO taught_windows (baseline_id, time_ms, features) VALUES (?, ?, ?)');
    this.replace = db.prepare('UPDATE taught_windows SET time_ms = ?, features = ? WHERE id = ?');
    this.idsOf = db.prepare('SELECT id FROM taught_windows WHERE baseline_id = ? ORDER BY id').pluck();
    this.countOf = db.prepare('SELECT count(*) AS n FROM taught_windows WHERE baseline_id = ?');
    this.remove = db.prepare('DELETE FROM taught_windows WHERE baseline_id = ?');
    this.removeOthers = db.prepare("DELETE FROM taught_windows WHERE baseline_id IN (SELECT id FROM baselines WHERE device = ? AND model = ? AND id <> ? AND state <> 'learning')");
    this.writeAll = db.transaction((rows: Pending[]) => {
      for (const r of rows) {
        if (r.replaces === undefined) this.insert.run(r.baselineId, r.timeMs, r.features);
        else this.replace.run(r.timeMs, r.features, r.replaces);
      }
    });
  }

  /**
   * Keeps one learned window's model-input features (copied: the caller's buffer may be reused),
   * or, past the bound, draws it into the sample in place of a kept one with probability
   * max / learned. `learned` is how many windows the baseline has learned with this one (the
   * teach-in's count, which a restart restores); without it the recorder counts them itself.
   * Returns whether it was kept.
   */
  add(baselineId: number, timeMs: number, features: Float32Array, learned?: number): boolean {
    if (features.length === 0) {
      this.stats.dropped++;
      return false;
    }
    const n = this.count(baselineId);
    const nth = learned ?? (this.learned.get(baselineId) ?? n) + 1;
    this.learned.set(baselineId, nth);
    const bytes = Buffer.from(new Uint8Array(features.buffer, features.byteOffset, features.byteLength));
    if (n < this.max) {
      this.kept.set(baselineId, n + 1);
      this.pending.push({ baselineId, timeMs, features: bytes });
    } else {
      // Seeded by the baseline and the window's place: the same windows give the same sample, across restarts too.
      const slot = Math.floor(seeded(baselineId * 1_000_003 + nth)() * nth);
      // A slot past the rows there are (another process deleted some) takes nothing: the bound holds.
      const replaces = slot < this.max ? this.slotsOf(baselineId)[slot] : undefined;
      if (replaces === undefined) {
        this.stats.dropped++;
        return false;
      }
      this.pending.push({ baselineId, timeMs, features: bytes, replaces });
      this.stats.replaced++;
    }
    if (this.pending.length >= this.group) this.flush();
    return true;
  }

  /** A full baseline's row ids, oldest first; its new rows are written first so that each has one. */
  private slotsOf(baselineId: number): number[] {
    let ids = this.slots.get(baselineId);
    if (!ids) {
      if (this.pending.some((p) => p.baselineId === baselineId && p.replaces === undefined)) this.flush();
      ids = this.idsOf.all(baselineId) as number[];
      this.slots.set(baselineId, ids);
    }
    return ids;
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
    this.stats.windows += rows.filter((r) => r.replaces === undefined).length;
    this.stats.transactions++;
    for (const r of rows) this.stats.bytes += r.features.byteLength;
    return rows.length;
  }

  /** Forgets a baseline's windows, pending and written: a cancelled or failed teach-in teaches nothing. */
  discard(baselineId: number): void {
    this.pending = this.pending.filter((p) => p.baselineId !== baselineId);
    this.remove.run(baselineId);
    this.kept.set(baselineId, 0);
    this.learned.delete(baselineId);
    this.slots.delete(baselineId);
  }

  /** Deletes the windows of a device's earlier baselines of the model, once a newer one is active: a fine-tune learns from the newest. Returns how many. */
  superseded(device: string, model: string, activeId: number): number {
    return this.removeOthers.run(device, model, activeId).changes;
  }
}
