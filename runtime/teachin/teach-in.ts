// Teach-in per machine: an operator declares a device healthy for a number of windows or a period
// of data time; its model's scores of those windows give it a threshold of its own (derive.ts),
// which replaces the card's for that device once active. One class for the gateway and the
// Node-RED model nodes, so both learn and judge the same way; the log (baselines, migrations 12
// and 15) keeps every teach-in, so a restart resumes learning, or applies the baseline, where it
// was. Each host passes the K of the alert rule that judges the model's windows (K anomalous
// windows in a row raise an alert): the baseline is derived from the scores that rule acts on.
import { EdgeInferError } from '../errors';
import type { ModelCard } from '../model';
import type { BaselineRow, Baselines, ResultRecord } from '../store';
import { withThreshold } from '../stream/results';
// The recorder's own file, not runtime/finetune's index: the fine-tune engine imports teach-in's rule.
import { TaughtWindows } from '../finetune/recorder';
import { type ThresholdRule, type ThresholdRuleName, checkConsecutive, checkRule, deriveThreshold, taughtScore } from './derive';

/** What a device's results say of its teach-in. */
export type BaselineState = 'learning' | 'active' | 'none';

/** The rule's numbers; its K comes from the host's alert rule (TeachInHooks.consecutive), per model. */
export interface TeachInSettings extends Omit<ThresholdRule, 'consecutive'> {
  /** Fewest windows a baseline is derived from: a teach-in asking for fewer is refused, a period that gave fewer fails (default 100). */
  minWindows: number;
  /** Most windows one teach-in keeps (a period ends early there): bounds its memory (default 100,000, 800 kB). */
  maxWindows: number;
}

export const TEACH_IN_DEFAULTS: TeachInSettings = { quantile: 0.999, margin: 1, minWindows: 100, maxWindows: 100_000 };

/**
 * The margin of the K-run rule (K > 1) when none is set. Measured over 24 simulated healthy hours
 * on each of the demo plant's six machines and the unseen mixer (BENCHMARKS.md, teach-in): with
 * 1, two machines raised false alerts (3 and 1); with 2, none did, and every fault was still
 * alerted within the windows the card's threshold takes; with 3, pump-2's bearing took 32 windows
 * instead of 15. K = 1 keeps TEACH_IN_DEFAULTS.margin, today's rule.
 */
export const RUN_MARGIN_DEFAULT = 2;

/** How long a teach-in learns: a number of windows, or minutes of the device's data time from its first window learned. */
export type TeachInTarget = { windows: number; minutes?: undefined } | { minutes: number; windows?: undefined };

export interface TeachInStatus {
  device: string;
  model: string;
  state: BaselineState;
  /** The threshold the device's windows are judged by now: the baseline's when active, else the card's (or the pipeline's override). */
  threshold: number | null;
  /** The card's threshold (or the pipeline's override), which applies without a baseline. */
  cardThreshold: number | null;
  /** While learning: windows learned so far and the target. */
  learning?: { windows: number; targetWindows: number | null; targetMinutes: number | null; startedMs: number; firstWindowMs: number | null; rule: ThresholdRuleName; consecutive: number };
  /** The baseline in force (also while a new teach-in learns); rule and consecutive say how it was derived (K windows in a row). */
  baseline?: {
    threshold: number; windows: number; quantile: number; margin: number; rule: ThresholdRuleName; consecutive: number;
    median: number | null; maxScore: number | null; maxRunScore: number | null; activeSinceMs: number | null;
  };
}

export interface TeachInHooks {
  /** The card each model served now is judged by (with a pipeline's threshold override); undefined: not served here. */
  card(model: string): ModelCard | undefined;
  /** Whether the device is one this host has seen for the model. */
  knows(device: string, model: string): boolean;
  /**
   * K of the alert rule that judges the model's windows here (alerts after K anomalous windows in
   * a row): a teach-in started now derives its threshold from each K-run's lowest score. Absent
   * (or 1): from the single windows' scores.
   */
  consecutive?(model: string): number;
  /** Told when a teach-in ends (active, failed): the gateway reports it, a node shows it. */
  ended?(status: TeachInStatus, row: BaselineRow): void;
  now?(): number;
}

interface Learning {
  row: BaselineRow;
  scores: number[];
}

const key = (device: string, model: string): string => `${device}\u0000${model}`;

/** Checks a teach-in target, naming what is wrong in one line. */
export function checkTarget(target: unknown, settings: Pick<TeachInSettings, 'minWindows' | 'maxWindows'>): TeachInTarget {
  if (typeof target !== 'object' || target === null) throw new EdgeInferError('E_ARGUMENT', 'teach-in: expected { windows } or { minutes }');
  const { windows, minutes } = target as { windows?: unknown; minutes?: unknown };
  if (windows !== undefined && minutes !== undefined) throw new EdgeInferError('E_ARGUMENT', 'teach-in: give windows or minutes, not both');
  if (windows !== undefined) {
    if (typeof windows !== 'number' || !Number.isInteger(windows) || windows < 1) throw new EdgeInferError('E_ARGUMENT', `teach-in: windows must be a whole number ≥ 1, got ${JSON.stringify(windows) ?? String(windows)}`);
    if (windows < settings.minWindows) throw new EdgeInferError('E_ARGUMENT', `teach-in: windows must be at least ${settings.minWindows} (fewer say nothing of a high quantile), got ${windows}`);
    if (windows > settings.maxWindows) throw new EdgeInferError('E_ARGUMENT', `teach-in: windows must be at most ${settings.maxWindows}, got ${windows}`);
    return { windows };
  }
  if (minutes !== undefined) {
    if (typeof minutes !== 'number' || !Number.isFinite(minutes) || minutes <= 0) throw new EdgeInferError('E_ARGUMENT', `teach-in: minutes must be a number > 0, got ${JSON.stringify(minutes) ?? String(minutes)}`);
    return { minutes };
  }
  throw new EdgeInferError('E_ARGUMENT', 'teach-in: expected windows or minutes, got neither');
}

export class TeachIn {
  readonly settings: TeachInSettings;
  private readonly learning = new Map<string, Learning>();
  private readonly active = new Map<string, BaselineRow>();
  /** Each device's card with its own threshold, made once per baseline rather than once per window. */
  private readonly judgedCards = new Map<string, { base: ModelCard; card: ModelCard }>();
  private readonly now: () => number;
  /** An anomaly model's learned windows, kept for a fine-tune on the device's own data (taught_windows). */
  readonly recorder: TaughtWindows;
  /** Whether the host set the margin: if not, each teach-in takes the default of its rule (1 for K = 1, RUN_MARGIN_DEFAULT for K > 1). */
  private readonly marginGiven: boolean;

  constructor(
    private readonly log: Baselines,
    private readonly hooks: TeachInHooks,
    settings: Partial<TeachInSettings> = {},
  ) {
    this.marginGiven = settings.margin !== undefined;
    const s = { ...TEACH_IN_DEFAULTS, ...settings, margin: settings.margin ?? TEACH_IN_DEFAULTS.margin };
    checkRule(s, 'teachIn');
    if (!Number.isInteger(s.minWindows) || s.minWindows < 1) throw new EdgeInferError('E_ARGUMENT', `teachIn: minWindows must be a whole number ≥ 1, got ${String(s.minWindows)}`);
    if (!Number.isInteger(s.maxWindows) || s.maxWindows < s.minWindows) throw new EdgeInferError('E_ARGUMENT', `teachIn: maxWindows must be a whole number ≥ minWindows (${s.minWindows}), got ${String(s.maxWindows)}`);
    this.settings = s;
    this.now = hooks.now ?? Date.now;
    this.recorder = new TaughtWindows(log.db);
    this.load();
  }

  /** Takes up what the log holds: active baselines, and teach-ins still learning with the scores their windows logged. */
  private load(): void {
    for (const row of this.log.current()) {
      const k = key(row.device, row.model);
      if (row.state === 'active') {
        this.active.set(k, row);
        continue;
      }
      const card = this.hooks.card(row.model);
      const limit = row.targetWindows ?? this.settings.maxWindows;
      const scores = row.firstWindowMs === null || !card ? [] : this.log.scoresSince(row.device, row.model, row.firstWindowMs, limit).map((r) => taughtScore(card, r.score, outputsOf(r.outputs, card.output.tensor)));
      this.learning.set(k, { row, scores });
    }
  }

  /** Starts learning a device's normal for a model. E_NOT_FOUND for a model not served or a device not seen; E_CONFLICT while one learns. */
  start(device: string, model: string, target: unknown, by: string | null = null): TeachInStatus {
    const card = this.served(device, model);
    // Measured on the demo plant (BENCHMARKS.md, teach-in): healthy windows reach a fault label's
    // top probability (0.95 to 1.0) now and then, so the rule lands at 1 and the classifier never
    // alerts again. Refused rather than blinding it.
    if (card.task === 'classification') throw new EdgeInferError('E_ARGUMENT', `teach-in: model '${model}' is a classifier; a threshold of its own from healthy windows reaches 1 and would hide its faults (teach an anomaly model)`);
    const t = checkTarget(target, this.settings);
    const consecutive = checkConsecutive(this.hooks.consecutive?.(model) ?? 1, `teach-in of ${device} (${model})`);
    if (t.windows !== undefined && t.windows < consecutive) throw new EdgeInferError('E_ARGUMENT', `teach-in of ${device} (${model}): windows (${t.windows}) must be at least the alert's ${consecutive} in a row`);
    const k = key(device, model);
    const running = this.learning.get(k);
    if (running) throw new EdgeInferError('E_CONFLICT', `teach-in of ${device} (${model}): already learning (${running.scores.length} windows so far); cancel it first`);
    const row = this.log.start({
      device, model, startedMs: this.now(), startedBy: by, targetWindows: t.windows ?? null, targetMinutes: t.minutes ?? null,
      quantile: this.settings.quantile, margin: this.marginGiven || consecutive === 1 ? this.settings.margin : RUN_MARGIN_DEFAULT, cardThreshold: card.output.threshold ?? null,
      consecutive,
    });
    this.learning.set(k, { row, scores: [] });
    return this.status(device, model);
  }

  /** Stops a teach-in that learns; the threshold in force before it stays. E_NOT_FOUND when none learns. */
  cancel(device: string, model: string): TeachInStatus {
    this.served(device, model);
    const k = key(device, model);
    const l = this.learning.get(k);
    if (!l) throw new EdgeInferError('E_NOT_FOUND', `teach-in of ${device} (${model}): none is running to cancel`);
    this.learning.delete(k);
    this.recorder.discard(l.row.id);
    this.log.ended(l.row.id, 'cancelled', l.scores.length, this.now(), null);
    return this.status(device, model);
  }

  /** Where a device's teach-in stands (state 'none' for a device never taught). E_NOT_FOUND for a model not served or a device not seen. */
  status(device: string, model: string): TeachInStatus {
    const card = this.served(device, model);
    return this.statusOf(device, model, card.output.threshold);
  }

  /** Every device with a teach-in learning or a baseline active. */
  list(): TeachInStatus[] {
    const pairs = new Map<string, [string, string]>();
    for (const r of [...this.active.values(), ...[...this.learning.values()].map((l) => l.row)]) pairs.set(key(r.device, r.model), [r.device, r.model]);
    return [...pairs.values()].map(([d, m]) => this.statusOf(d, m, this.hooks.card(m)?.output.threshold));
  }

  /**
   * The threshold a device's window is judged by and what its results say of the teach-in: the
   * active baseline's; while learning, the one in force before the teach-in started (the card's,
   * or an earlier baseline's). Undefined threshold: the card's applies.
   */
  judge(device: string, model: string): { threshold: number | undefined; state: BaselineState } {
    const k = key(device, model);
    const a = this.active.get(k);
    const state: BaselineState = this.learning.has(k) ? 'learning' : a ? 'active' : 'none';
    return { threshold: a?.threshold ?? undefined, state };
  }

  /**
   * The card a device's window is judged by (`card` with the device's own threshold once its
   * baseline is active) and what its results say of the teach-in.
   */
  judgedCard(card: ModelCard, device: string): { card: ModelCard; state: BaselineState } {
    const { threshold, state } = this.judge(device, card.id);
    if (threshold === undefined) return { card, state };
    const k = key(device, card.id);
    const made = this.judgedCards.get(k);
    if (made && made.base === card && made.card.output.threshold === threshold) return { card: made.card, state };
    const judged = withThreshold(card, threshold);
    this.judgedCards.set(k, { base: card, card: judged });
    return { card: judged, state };
  }

  /**
   * One result of a device, judged: learned when its teach-in is learning. Returns the status when
   * this window ended the teach-in (active, or failed with too few windows), else undefined.
   * `features`, the window's model input, is recorded for an anomaly model's fine-tune.
   */
  learn(card: ModelCard, r: Pick<ResultRecord, 'device' | 'model' | 'score' | 'outputs' | 'timeMs'>, features?: Float32Array): TeachInStatus | undefined {
    const k = key(r.device, r.model);
    const l = this.learning.get(k);
    if (!l) return undefined;
    if (l.row.firstWindowMs === null) {
      l.row.firstWindowMs = r.timeMs;
      this.log.firstWindow(l.row.id, r.timeMs);
    }
    const reached = l.row.targetMinutes !== null && r.timeMs - l.row.firstWindowMs >= l.row.targetMinutes * 60_000;
    // The window that reaches a period's end is not part of it.
    if (!reached) {
      l.scores.push(taughtScore(card, r.score, Array.isArray(r.outputs) ? r.outputs : (r.outputs[card.output.tensor] ?? [])));
      if (card.task === 'anomaly' && features) this.recorder.add(l.row.id, r.timeMs, features, l.scores.length);
    }
    const done = reached || l.scores.length >= (l.row.targetWindows ?? this.settings.maxWindows);
    return done ? this.finish(r.device, r.model, l, card) : undefined;
  }

  private finish(device: string, model: string, l: Learning, card: ModelCard): TeachInStatus {
    const k = key(device, model);
    this.learning.delete(k);
    const endedMs = this.now();
    // A period can end with fewer windows than a baseline needs (or than one run of K).
    const needed = Math.max(this.settings.minWindows, l.row.consecutive);
    if (l.scores.length < needed) {
      const reason = `${l.scores.length} windows learned in ${l.row.targetMinutes} min, fewer than the ${needed} a baseline needs`;
      this.recorder.discard(l.row.id);
      this.log.ended(l.row.id, 'failed', l.scores.length, endedMs, reason);
      const status = this.statusOf(device, model, card.output.threshold);
      this.hooks.ended?.(status, { ...l.row, state: 'failed', reason, endedMs, windows: l.scores.length });
      return status;
    }
    // The rule and K recorded when it started: a restart or a changed alert setting does not change a teach-in under way.
    const d = deriveThreshold(l.scores, { quantile: l.row.quantile, margin: l.row.margin, consecutive: l.row.consecutive });
    const threshold = d.threshold;
    // Its windows are in the log before the baseline is active: a fine-tune of it finds them all.
    this.recorder.flush();
    const row: BaselineRow = { ...l.row, state: 'active', windows: d.windows, threshold, median: d.median, maxScore: d.maxScore, maxRunScore: d.maxRunScore, endedMs, reason: null };
    this.log.activated(row);
    this.recorder.superseded(device, model, row.id);
    this.active.set(k, row);
    const status = this.statusOf(device, model, card.output.threshold);
    this.hooks.ended?.(status, row);
    return status;
  }

  private served(device: string, model: string): ModelCard {
    if (typeof device !== 'string' || device === '') throw new EdgeInferError('E_ARGUMENT', `teach-in: device must be a name, got ${JSON.stringify(device) ?? String(device)}`);
    if (typeof model !== 'string' || model === '') throw new EdgeInferError('E_ARGUMENT', `teach-in: model must be a name, got ${JSON.stringify(model) ?? String(model)}`);
    const card = this.hooks.card(model);
    if (!card) throw new EdgeInferError('E_NOT_FOUND', `teach-in: model '${model}' is not served here`);
    if (!this.learning.has(key(device, model)) && !this.active.has(key(device, model)) && !this.hooks.knows(device, model)) {
      throw new EdgeInferError('E_NOT_FOUND', `teach-in: device '${device}' has no results of model '${model}' yet`);
    }
    return card;
  }

  private statusOf(device: string, model: string, cardThreshold: number | undefined): TeachInStatus {
    const k = key(device, model);
    const { threshold, state } = this.judge(device, model);
    const s: TeachInStatus = { device, model, state, threshold: threshold ?? cardThreshold ?? null, cardThreshold: cardThreshold ?? null };
    const l = this.learning.get(k);
    if (l) s.learning = { windows: l.scores.length, targetWindows: l.row.targetWindows, targetMinutes: l.row.targetMinutes, startedMs: l.row.startedMs, firstWindowMs: l.row.firstWindowMs, rule: l.row.rule, consecutive: l.row.consecutive };
    const a = this.active.get(k);
    if (a && a.threshold !== null) {
      s.baseline = {
        threshold: a.threshold, windows: a.windows, quantile: a.quantile, margin: a.margin, rule: a.rule, consecutive: a.consecutive,
        median: a.median, maxScore: a.maxScore, maxRunScore: a.maxRunScore, activeSinceMs: a.endedMs,
      };
    }
    return s;
  }
}

/** The outputs column as the log keeps it (JSON: the output's values, or its values by tensor). */
function outputsOf(text: string, tensor: string): number[] {
  try {
    const v: unknown = JSON.parse(text);
    const values = Array.isArray(v) ? v : typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[tensor] : undefined;
    return Array.isArray(values) ? values.map(Number) : [];
  } catch {
    return [];
  }
}
