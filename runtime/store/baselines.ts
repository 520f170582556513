// The log of teach-ins (table baselines, migrations 12 and 15): one row per teach-in of a device's model,
// from learning to active (or cancelled, failed), an active one superseded by the next. Written in
// its own transaction when the step happens: a teach-in changes state rarely, and must survive a
// restart the moment the operator is told it started or became active.
import type Database from 'better-sqlite3';

export const BASELINE_STATES = ['learning', 'active', 'cancelled', 'failed', 'superseded'] as const;
export type BaselineRowState = (typeof BASELINE_STATES)[number];

export interface BaselineRow {
  id: number;
  device: string;
  model: string;
  state: BaselineRowState;
  /** Wall time the operator started it, ms since the epoch. */
  startedMs: number;
  /** Who started it (the dashboard's user, 'cli', a Node-RED node); null when not said. */
  startedBy: string | null;
  /** Windows to learn (null: a period). */
  targetWindows: number | null;
  /** Minutes of data time to learn (null: a number of windows). */
  targetMinutes: number | null;
  /** Data time of the first window learned (null: none yet). */
  firstWindowMs: number | null;
  /** Windows learned (kept when it ends; while learning, counted in memory). */
  windows: number;
  quantile: number;
  margin: number;
  /** How the threshold is derived: 'windows', the quantile of single windows' scores (K = 1); 'runs', of the lowest score of each run of K windows. */
  rule: 'windows' | 'runs';
  /** K: the alert's windows in a row the baseline was derived for (1 for every baseline before migration 15). */
  consecutive: number;
  /** The threshold in force when it started (the card's, or the pipeline's override). */
  cardThreshold: number | null;
  /** The derived threshold (active, superseded). */
  threshold: number | null;
  median: number | null;
  maxScore: number | null;
  /** The highest of the K-runs' lowest scores taught (the threshold's floor; K = 1: maxScore); null before migration 15. */
  maxRunScore: number | null;
  endedMs: number | null;
  reason: string | null;
}

const COLUMNS = `id, device, model, state, started_ms AS startedMs, started_by AS startedBy, target_windows AS targetWindows, target_minutes AS targetMinutes,
  first_window_ms AS firstWindowMs, windows, quantile, margin, rule, consecutive, card_threshold AS cardThreshold, threshold, median, max_score AS maxScore,
  max_run_score AS maxRunScore, ended_ms AS endedMs, reason`;

export class Baselines {
  private readonly insert: Database.Statement;
  private readonly selectCurrent: Database.Statement;
  private readonly selectOne: Database.Statement;
  private readonly setFirst: Database.Statement;
  private readonly end: Database.Statement;
  private readonly supersede: Database.Statement;
  private readonly selectScores: Database.Statement;
  private readonly selectStream: Database.Statement;
  private readonly activate: Database.Transaction<(row: BaselineRow) => void>;

  /** The log's connection: the teach-in's window recorder (runtime/finetune) writes its own table beside this one. */
  constructor(readonly db: Database.Database) {
    this.insert = db.prepare(`INSERT INTO baselines (device, model, state, started_ms, started_by, target_windows, target_minutes, quantile, margin, rule, consecutive, card_threshold)
      VALUES (?, ?, 'learning', ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    // The rows that matter now: each pair's learning row and its newest active row.
    this.selectCurrent = db.prepare(`SELECT ${COLUMNS} FROM baselines WHERE state IN ('learning', 'active') ORDER BY id`);
    this.selectOne = db.prepare(`SELECT ${COLUMNS} FROM baselines WHERE id = ?`);
    this.setFirst = db.prepare('UPDATE baselines SET first_window_ms = ? WHERE id = ? AND first_window_ms IS NULL');
    this.end = db.prepare(`UPDATE baselines SET state = ?, windows = ?, threshold = ?, median = ?, max_score = ?, max_run_score = ?, ended_ms = ?, reason = ? WHERE id = ? AND state = 'learning'`);
    this.supersede = db.prepare(`UPDATE baselines SET state = 'superseded' WHERE device = ? AND model = ? AND state = 'active' AND id <> ?`);
    // Through the (device, model, time_ms) index: the device's own results since the first window
    // learned, in data-time order (the K-run rule needs the windows in order, whatever order a
    // backlog was committed in).
    this.selectScores = db.prepare('SELECT score, outputs FROM results WHERE device = ? AND model = ? AND time_ms >= ? ORDER BY time_ms, id LIMIT ?');
    this.selectStream = db.prepare('SELECT 1 FROM result_streams WHERE device = ? AND model = ?');
    this.activate = db.transaction((row: BaselineRow) => {
      this.end.run('active', row.windows, row.threshold, row.median, row.maxScore, row.maxRunScore, row.endedMs, row.reason, row.id);
      this.supersede.run(row.device, row.model, row.id);
    });
  }

  /** Logs a teach-in that starts learning (its rule follows from K: single windows for 1, runs for more); committed when this returns. */
  start(r: Pick<BaselineRow, 'device' | 'model' | 'startedMs' | 'startedBy' | 'targetWindows' | 'targetMinutes' | 'quantile' | 'margin' | 'cardThreshold'> & Partial<Pick<BaselineRow, 'consecutive'>>): BaselineRow {
    const k = r.consecutive ?? 1;
    const id = Number(this.insert.run(r.device, r.model, r.startedMs, r.startedBy, r.targetWindows, r.targetMinutes, r.quantile, r.margin, k === 1 ? 'windows' : 'runs', k, r.cardThreshold).lastInsertRowid);
    return this.get(id)!;
  }

  get(id: number): BaselineRow | undefined {
    return this.selectOne.get(id) as BaselineRow | undefined;
  }

  /** Learning and active rows, oldest first. */
  current(): BaselineRow[] {
    return this.selectCurrent.all() as BaselineRow[];
  }

  /** Notes the data time of the first window learned (once): a restart reads the scores from it. */
  firstWindow(id: number, timeMs: number): void {
    this.setFirst.run(timeMs, id);
  }

  /** The learning row becomes active (and the pair's earlier active one superseded), in one transaction. */
  activated(row: BaselineRow): void {
    this.activate.immediate(row);
  }

  /** The learning row ends without a baseline: cancelled by the operator, or failed (too few windows). */
  ended(id: number, state: 'cancelled' | 'failed', windows: number, endedMs: number, reason: string | null): void {
    this.end.run(state, windows, null, null, null, null, endedMs, reason, id);
  }

  /** Whether the log has any result of the device's model (a device the gateway has seen). */
  hasResults(device: string, model: string): boolean {
    return this.selectStream.get(device, model) !== undefined;
  }

  /** The device's logged results of the model from a data time on, oldest first (a learning teach-in after a restart). */
  scoresSince(device: string, model: string, fromMs: number, limit: number): Array<{ score: number; outputs: string }> {
    return this.selectScores.all(device, model, fromMs, limit) as Array<{ score: number; outputs: string }>;
  }
}
