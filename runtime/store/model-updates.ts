// The log of model hot-swaps (table model_updates, migration 11): each state an update reaches,
// with its reason. Written in its own transaction when the step happens, committed when the call
// returns: an update is rare, and its trail must not wait on, nor slow, the results' batches.
import type Database from 'better-sqlite3';

export const UPDATE_STATES = ['staged', 'checked', 'active', 'refused', 'rolled-back'] as const;
export type UpdateState = (typeof UPDATE_STATES)[number];

/** One step of one update. */
export interface ModelUpdateRecord {
  /** Wall time, ms since the epoch. */
  timeMs: number;
  model: string;
  /** The pipeline it concerns (null: refused before any pipeline looked at it). */
  pipeline: string | null;
  /** The variant name from its card (null: its card could not be read). */
  variant: string | null;
  /** sha256 of the ONNX bytes, hex (null: not known, e.g. a payload that did not parse). */
  sha256: string | null;
  /** Where it came from: `mqtt:<topic>` or `file:<path>`. */
  source: string;
  state: UpdateState;
  reason: string | null;
}

export interface ModelUpdateRow extends ModelUpdateRecord {
  id: number;
}

export class ModelUpdates {
  private readonly insert: Database.Statement;
  private readonly select: Database.Statement;
  private readonly selectUndecided: Database.Statement;
  private readonly selectDecisions: Database.Statement;

  constructor(db: Database.Database) {
    this.insert = db.prepare('INSERT INTO model_updates (time_ms, model, pipeline, variant, sha256, source, state, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    this.selectUndecided = db.prepare(
      `SELECT id, time_ms AS timeMs, model, pipeline, variant, sha256, source, state, reason FROM model_updates s
       WHERE state = 'staged' AND NOT EXISTS (SELECT 1 FROM model_updates d WHERE d.model = s.model AND d.sha256 = s.sha256 AND d.id > s.id AND d.state IN ('active', 'refused', 'rolled-back'))
       ORDER BY id`,
    );
    this.selectDecisions = db.prepare(
      `SELECT id, time_ms AS timeMs, model, pipeline, variant, sha256, source, state, reason FROM model_updates
       WHERE pipeline IS NOT NULL AND sha256 IS NOT NULL AND state IN ('active', 'refused', 'rolled-back') ORDER BY id`,
    );
    this.select = db.prepare('SELECT id, time_ms AS timeMs, model, pipeline, variant, sha256, source, state, reason FROM model_updates WHERE (? IS NULL OR model = ?) ORDER BY id DESC LIMIT ?');
  }

  /**
   * Updates staged and not decided since (no later active, refused or rolled-back step of the same
   * model and sha256): acknowledged to their sender, not yet in service nor refused, oldest first.
   */
  undecided(): ModelUpdateRow[] {
    return this.selectUndecided.all() as ModelUpdateRow[];
  }

  /**
   * Per model and pipeline, the update that served it when the gateway stopped, as the log tells
   * it step by step: an update serves from its 'active' step; one rolled back hands the pipeline
   * back to what it replaced; one refused while it served (put back after a restart, its files
   * gone) leaves the configured variant serving; an update put back after a restart replaced the
   * configured variant. None where the configured variant serves.
   */
  inService(): ModelUpdateRow[] {
    const state = new Map<string, { current: ModelUpdateRow | null; before: Array<ModelUpdateRow | null> }>();
    for (const row of this.selectDecisions.all() as ModelUpdateRow[]) {
      const at = `${row.model}\u0000${row.pipeline}`;
      let s = state.get(at);
      if (!s) state.set(at, (s = { current: null, before: [] }));
      const serving = s.current?.sha256 === row.sha256;
      if (row.state === 'active') {
        if (serving) s.before = [];
        else s.before.push(s.current);
        s.current = row;
      } else if (serving && row.state === 'rolled-back') {
        s.current = s.before.pop() ?? null;
      } else if (serving && row.state === 'refused') {
        s.current = null;
        s.before = [];
      }
    }
    return [...state.values()].flatMap((s) => (s.current ? [s.current] : []));
  }

  /** Logs one step; committed when this returns. */
  add(r: ModelUpdateRecord): number {
    return Number(this.insert.run(r.timeMs, r.model, r.pipeline, r.variant, r.sha256, r.source, r.state, r.reason).lastInsertRowid);
  }

  /** The newest steps first, of one model or of all. */
  list(opts: { model?: string; limit?: number } = {}): ModelUpdateRow[] {
    const model = opts.model ?? null;
    return this.select.all(model, model, opts.limit ?? 100) as ModelUpdateRow[];
  }
}
