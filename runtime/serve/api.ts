// The dashboard's data routes (api/...): each reads the log through the log reader (a worker, off
// the ingest thread), shapes what the contract says, and checks its parameters at the door with
// messages that name them. Who may call them is decided before (dashboard.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AlertRow, ResultRow } from '../store';
import type {
  AlertView, AlertsView, ChartView, HealthView, MachineModelView, MachineState, MachineView, ModelView, ModelsView, OverviewView,
} from './dashboard-contract';
import type { LiveFeed } from './live';
import type { LogReader } from './log-reader';
import type { ModelStatic } from './model-views';
import { ApiFailure } from './respond';

/** Writes of an operator's decisions on alerts; both answer the alert as the log has it now, and reject E_NOT_FOUND for an unknown id. */
export interface AlertWrites {
  acknowledge(id: number, user: string, atMs: number): AlertRow | Promise<AlertRow>;
  clear(id: number, user: string, atMs: number): AlertRow | Promise<AlertRow>;
}

/** Most points a chart may ask for: about two per pixel of the widest screen. */
export const MAX_PAGE_POINTS = 5000;
/** Most alerts one list answers. */
export const MAX_ALERTS = 1000;
/** Dead letters shown on the health view. */
const RECENT_DEAD_LETTERS = 20;
/** What windows/s are counted over (wall time). */
const RATE_WINDOW_MS = 60_000;
/** Live agreement is counted over the windows of this last stretch of data time. */
const AGREEMENT_WINDOW_MS = 3600_000;
/** The variant live agreement is measured against. */
const REFERENCE_VARIANT = 'fp32';

export interface ApiContext {
  reader: LogReader;
  alerts: AlertWrites;
  models: () => readonly ModelStatic[];
  health: (() => { ok: boolean } & Record<string, unknown>) | null;
  live: LiveFeed;
  now: () => number;
}

export function alertView(r: AlertRow): AlertView {
  return {
    id: r.id, timeMs: r.timeMs, device: r.device, model: r.model, variant: r.variant, kind: r.kind, label: r.label, score: r.score, threshold: r.threshold, message: r.message,
    ackedBy: r.ackedBy ?? null, ackedMs: r.ackedMs ?? null, clearedBy: r.clearedBy ?? null, clearedMs: r.clearedMs ?? null,
  };
}

// --- parameters ---------------------------------------------------------------------------------

const NUMBER = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;

function required(q: URLSearchParams, name: string): string {
  const v = q.get(name);
  if (v === null || v === '') throw new ApiFailure(400, `${name}: expected a value, got none`, 'E_ARGUMENT');
  return v;
}

/** A time in ms since the epoch. */
function time(q: URLSearchParams, name: string): number {
  const v = required(q, name);
  const n = Number(v);
  if (!NUMBER.test(v) || !Number.isFinite(n) || Math.abs(n) > 8.64e15) throw new ApiFailure(400, `${name}: expected a time in ms since the epoch, got '${v.slice(0, 40)}'`, 'E_ARGUMENT');
  return n;
}

function whole(q: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new ApiFailure(400, `${name}: expected a whole number from ${min} to ${max.toLocaleString('en-US')}, got '${v.slice(0, 40)}'`, 'E_ARGUMENT');
  return n;
}

function optionalName(q: URLSearchParams, name: string): string | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (v === '') throw new ApiFailure(400, `${name}: expected a name, got an empty value`, 'E_ARGUMENT');
  return v;
}

/** An alert's id from its path segment. */
export function alertId(text: string): number {
  const n = Number(text);
  if (!/^[1-9]\d{0,15}$/.test(text) || !Number.isSafeInteger(n)) throw new ApiFailure(400, `alert id: expected a whole number ≥ 1, got '${decodeURIComponentSafe(text).slice(0, 40)}'`, 'E_ARGUMENT');
  return n;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// --- routes -------------------------------------------------------------------------------------

export class DashboardApi {
  constructor(private readonly c: ApiContext) {}

  /** The static view of a model: the one of this variant when it runs, else of any variant of the id. */
  private staticOf(model: string, variant?: string): ModelStatic | undefined {
    const all = this.c.models();
    return all.find((m) => m.model === model && m.variant === variant) ?? all.find((m) => m.model === model);
  }

  async overview(): Promise<OverviewView> {
    const latest = await this.c.reader.query('latestPerDevice', {});
    // By device and model: a plant of 10,000 machines must not compare every card with every alert.
    const active = new Map((await this.activeAlerts()).map((a) => [`${a.device}\u0000${a.model}`, a]));
    const byDevice = new Map<string, MachineModelView[]>();
    for (const r of latest) {
      const list = byDevice.get(r.device) ?? [];
      byDevice.set(r.device, list);
      const alert = active.get(`${r.device}\u0000${r.model}`);
      list.push(this.machineModel(r, alert ? alertView(alert) : null));
    }
    const machines: MachineView[] = [...byDevice].map(([device, models]) => ({ device, state: stateOf(models), models }));
    machines.sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));
    return { nowMs: this.c.now(), machines };
  }

  /** Alerts active now, newest first (one per device and model: the newest). */
  private async activeAlerts(): Promise<AlertRow[]> {
    const rows = await this.c.reader.query('alerts', { active: true, limit: MAX_ALERTS });
    return rows;
  }

  private machineModel(r: ResultRow, activeAlert: AlertView | null): MachineModelView {
    const s = this.staticOf(r.model, r.variant);
    return {
      model: r.model,
      title: s?.title ?? r.model,
      task: s?.task ?? (r.label === null ? 'regression' : r.label === 'anomaly' || r.label === 'normal' ? 'anomaly' : 'classification'),
      variant: r.variant,
      timeMs: r.timeMs,
      score: r.score,
      label: r.label,
      anomaly: r.anomaly,
      threshold: s?.threshold ?? null,
      rms: r.rms ?? null,
      activeAlert,
    };
  }

  async chart(q: URLSearchParams): Promise<ChartView> {
    const device = required(q, 'device');
    const model = required(q, 'model');
    const fromMs = time(q, 'from');
    const toMs = time(q, 'to');
    if (toMs < fromMs) throw new ApiFailure(400, `to: expected a time ≥ from (${fromMs}), got ${toMs}`, 'E_ARGUMENT');
    const points = whole(q, 'points', 1, MAX_PAGE_POINTS);
    if (points === undefined) throw new ApiFailure(400, 'points: expected a value, got none', 'E_ARGUMENT');
    const field = q.get('field') ?? 'score';
    if (field !== 'score' && field !== 'rms') throw new ApiFailure(400, `field: expected score or rms, got '${field.slice(0, 40)}'`, 'E_ARGUMENT');
    const series = await this.c.reader.query('chart', { device, model, fromMs, toMs, maxPoints: points, field });
    if (series.points.length === 0) await this.mustExist(device, model);
    const s = this.staticOf(model);
    return { device, model, field, fromMs, toMs, threshold: s?.threshold ?? null, labels: s?.labels ?? null, source: series.source, bucketMs: series.bucketMs, points: series.points };
  }

  /** 404 for a device or model the log has no result of at all (an empty range of a known pair is no error). */
  private async mustExist(device: string, model: string): Promise<void> {
    const rows = await this.c.reader.query('latestPerDevice', { model });
    if (rows.length === 0) throw new ApiFailure(404, `model '${model}': no results logged`, 'E_NOT_FOUND');
    if (!rows.some((r) => r.device === device)) throw new ApiFailure(404, `device '${device}': no results logged of model '${model}'`, 'E_NOT_FOUND');
  }

  async alerts(q: URLSearchParams): Promise<AlertsView> {
    const activeText = q.get('active');
    if (activeText !== null && !['1', '0', 'true', 'false'].includes(activeText)) throw new ApiFailure(400, `active: expected 1 or 0, got '${activeText.slice(0, 40)}'`, 'E_ARGUMENT');
    const active = activeText === '1' || activeText === 'true' ? true : undefined;
    const device = optionalName(q, 'device');
    const limit = whole(q, 'limit', 1, MAX_ALERTS);
    const rows = await this.c.reader.query('alerts', { active, device, limit });
    return { alerts: rows.map(alertView) };
  }

  async acknowledge(id: number, user: string): Promise<AlertView> {
    return alertView(await this.c.alerts.acknowledge(id, user, this.c.now()));
  }

  async clear(id: number, user: string): Promise<AlertView> {
    return alertView(await this.c.alerts.clear(id, user, this.c.now()));
  }

  async models(): Promise<ModelsView> {
    const now = this.c.now();
    const stats = await this.c.reader.query('modelStats', { sinceMs: now - RATE_WINDOW_MS });
    // An hour, not a minute: an A/B pair needs enough windows for its share to mean something.
    const agreement = await this.c.reader.query('agreement', { sinceMs: now - AGREEMENT_WINDOW_MS, reference: REFERENCE_VARIANT });
    const models: ModelView[] = this.c.models().map((m) => {
      const s = stats.find((x) => x.model === m.model && x.variant === m.variant);
      const a = m.variant === REFERENCE_VARIANT ? undefined : agreement.find((x) => x.model === m.model && x.variant === m.variant);
      return {
        ...m,
        windowsPerS: s ? s.windows / (RATE_WINDOW_MS / 1000) : 0,
        latencyP50Ms: s?.latencyP50Ms ?? null,
        latencyP99Ms: s?.latencyP99Ms ?? null,
        agreement: a && a.windows > 0 ? { withVariant: a.reference, windows: a.windows, agree: a.agree } : null,
      };
    });
    return { models };
  }

  async health(): Promise<HealthView> {
    const counts = await this.c.reader.query('counts');
    const recent = await this.c.reader.query('deadLetters', { limit: RECENT_DEAD_LETTERS });
    const gateway = this.c.health ? this.c.health() : null;
    return {
      ok: gateway ? gateway.ok : true,
      gateway,
      deadLetters: { total: counts.deadLetters, recent: recent.map((d) => ({ id: d.id, timeMs: d.timeMs, topic: d.topic, device: d.device, code: d.code, reason: d.reason })) },
      counts: { results: counts.results, alerts: counts.alerts, deadLetters: counts.deadLetters, outbox: counts.outbox, windows: counts.windows },
      live: { browsers: this.c.live.size, dropped: this.c.live.dropped },
    };
  }

  /** The live feed: only what is committed from now on. */
  live(req: IncomingMessage, res: ServerResponse): void {
    this.c.live.attach(req, res);
  }
}

/** fault while an alert is active; warning while a model's latest window is anomalous; else normal. */
function stateOf(models: readonly MachineModelView[]): MachineState {
  if (models.some((m) => m.activeAlert)) return 'fault';
  if (models.some((m) => m.anomaly)) return 'warning';
  return 'normal';
}
