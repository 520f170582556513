// What the dashboard's page and its server say to each other: the JSON of each route under the
// page's base (`/` and `/dashboard` on the gateway, `<httpNodeRoot>/edge-infer/` in Node-RED; the
// page uses relative URLs, so one page serves both). Types only: the server builds these, the
// page (runtime/serve/page) reads them, and the tests check them. Times are ms since the epoch,
// in data time (a result's window end) unless named otherwise.
//
//   GET  api/session                    → SessionView
//   POST api/login   {user, password}   → SessionView (sets the session cookie) | 401 ApiError
//   POST api/logout                     → SessionView
//   GET  api/overview                   → OverviewView
//   GET  api/chart?device&model&from&to&points[&field=score|rms]
//                                       → ChartView | 400 ApiError (bad argument) | 404 ApiError (no such device/model)
//   GET  api/alerts?[active=1][&device][&limit]
//                                       → AlertsView
//   POST api/alerts/<id>/ack            → AlertView | 401 (login needed) | 404 (no such alert)
//   POST api/alerts/<id>/clear          → AlertView | 401 | 404
//   GET  api/models                     → ModelsView
//   GET  api/health                     → HealthView
//   GET  api/live[?device]              → server-sent events: `results` (LivePoint[]), `alerts` (LiveAlert[])
//   GET  api/teach-in[?device&model]    → TeachInListView (every device learning or with a baseline) | TeachInView (one)
//                                         | 404 ApiError (teach-in not available here: inside Node-RED; model not served; device not seen)
//   POST api/teach-in/start {device, model, windows | minutes}
//                                       → TeachInView | 400 (bad target; a classifier) | 401 | 404 | 409 (already learning)
//   POST api/teach-in/cancel {device, model}
//                                       → TeachInView | 401 | 404 (none learning)
//   GET  api/teach-in/last?device&model → TeachInLastView (the newest teach-in of the pair that ended, from the log) | 400
//
// POSTs send `content-type: application/json` (a body of {} when there is nothing to say): any
// other type is refused with 415, which keeps forms on other sites out.
//
// Every error answer is ApiError with a status that says what kind: 400 a bad argument (the
// message names it), 401 a login needed, 404 nothing by that name, 503 the log is busy (retry).

import type { AlertRecord, ChartPoint, SeriesSource } from '../store/types';

export interface ApiError {
  error: string;
  /** The runtime's error code (E_ARGUMENT, E_QUERY_TIMEOUT, ...), when there is one. */
  code?: string;
}

export interface SessionView {
  /** Who is logged in (null: nobody). */
  user: string | null;
  /** This dashboard asks for a login (it is reachable from other machines). */
  loginRequired: boolean;
  /** Whether this session may acknowledge and clear alerts. */
  canAcknowledge: boolean;
  /** Where the page is served: 'gateway' or 'node-red'. */
  host: 'gateway' | 'node-red';
}

/** A machine's state: fault while an alert of one of its models is active, warning while its latest window of a model is anomalous, else normal. */
export type MachineState = 'normal' | 'warning' | 'fault';

export interface OverviewView {
  /** The server's clock when it answered (wall time), for "how long ago". */
  nowMs: number;
  machines: MachineView[];
}

export interface MachineView {
  device: string;
  state: MachineState;
  /** One entry per model that logged results of this machine, by model id. */
  models: MachineModelView[];
}

export interface MachineModelView {
  model: string;
  /** The model card's title ("Vibration anomaly detector"). */
  title: string;
  task: 'anomaly' | 'classification' | 'regression';
  variant: string;
  /** The latest result: its data time, score, label and whether it was anomalous. */
  timeMs: number;
  score: number;
  label: string | null;
  anomaly: boolean;
  /** The card's threshold (the score an anomaly must pass), or null for models without one. */
  threshold: number | null;
  /** RMS of the main channel over the latest window, when logged. */
  rms: number | null;
  /** The alert active now for this machine and model (raised or reminded, not cleared by the model or an operator). */
  activeAlert: AlertView | null;
}

export interface ChartView {
  device: string;
  model: string;
  field: 'score' | 'rms';
  fromMs: number;
  toMs: number;
  /** The card's threshold, for the line on the score chart. */
  threshold: number | null;
  labels: string[] | null;
  source: SeriesSource;
  bucketMs: number;
  /** At most `points` (see the query); each bucket keeps its min and max, so a spike is never lost. */
  points: ChartPoint[];
}

export interface AlertView {
  id: number;
  timeMs: number;
  device: string;
  model: string;
  variant: string;
  /** The log's kind: the task's word for a raised alert ('anomaly', 'fault'), 'reminder' or 'clear'. */
  kind: string;
  label: string | null;
  score: number;
  threshold: number | null;
  message: string;
  /** Who acknowledged it and when (wall time), or null. */
  ackedBy: string | null;
  ackedMs: number | null;
  /** Who cleared it from the list and when (wall time), or null. */
  clearedBy: string | null;
  clearedMs: number | null;
}

export interface AlertsView {
  alerts: AlertView[];
}

export interface ModelView {
  /** The gateway pipeline that runs it (null inside Node-RED). */
  pipeline: string | null;
  model: string;
  title: string;
  task: 'anomaly' | 'classification' | 'regression';
  variant: string;
  precision: string;
  /** Size of the model file, bytes. */
  bytes: number;
  /** The engine backend running it (wasm, native), when known. */
  backend: string | null;
  threshold: number | null;
  labels: string[] | null;
  /** Windows logged per second over the last minute (wall time). */
  windowsPerS: number;
  /** Inference latency per window over the last results logged (ms), null before any. */
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
  /** What the card says of this variant against fp32 (quantized variants; 0..1), or null. */
  cardAgreement: number | null;
  /** Live A/B: the same windows run in fp32 and in this variant (both logged), how often they agree. */
  agreement: { withVariant: string; windows: number; agree: number } | null;
}

export interface ModelsView {
  models: ModelView[];
}

export interface HealthView {
  ok: boolean;
  /** The gateway's /health (broker, subscriptions, pipelines with their queue depths, outbox, journal); null inside Node-RED. */
  gateway: Record<string, unknown> | null;
  deadLetters: {
    total: number;
    recent: Array<{ id: number; timeMs: number; topic: string; device: string | null; code: string; reason: string }>;
  };
  counts: { results: number; alerts: number; deadLetters: number; outbox: number; windows: number };
  /** Browsers on the live feed now, and those let go because they could not keep up. */
  live: { browsers: number; dropped: number };
}

/** One result as the live feed (api/live, event `results`) sends it: only new ones, never history. */
export interface LivePoint {
  device: string;
  model: string;
  variant: string;
  /** Data time: the window's end, ms since the epoch. */
  timeMs: number;
  score: number;
  label: string | null;
  anomaly: boolean;
  /** RMS of the window's main channel, when logged. */
  rms: number | null;
  /** When the gateway made the result (its wall clock): the page measures result to pixel from it. */
  processedMs: number;
}

/** One alert change as the live feed (event `alerts`) sends it (no id: the page reads api/alerts for that). */
export type LiveAlert = Pick<AlertRecord, 'device' | 'model' | 'variant' | 'kind' | 'label' | 'score' | 'threshold' | 'message' | 'timeMs'>;

/** A device's baseline for a model: none (the card's threshold applies), learning, or active (its own threshold). */
export type BaselineState = 'learning' | 'active' | 'none';

/** Where a device's teach-in stands (runtime/teachin's TeachInStatus, as JSON). */
export interface TeachInView {
  device: string;
  model: string;
  state: BaselineState;
  /** The threshold the device's windows are judged by now: the baseline's when active, else the card's. */
  threshold: number | null;
  /** The card's threshold (or the pipeline's override), which applies without a baseline. */
  cardThreshold: number | null;
  /** While learning: windows learned so far and the target (windows, or minutes of data time from the first window). */
  learning?: { windows: number; targetWindows: number | null; targetMinutes: number | null; startedMs: number; firstWindowMs: number | null };
  /** The baseline in force (also while a new teach-in learns); activeSinceMs is wall time. */
  baseline?: { threshold: number; windows: number; quantile: number; margin: number; median: number | null; maxScore: number | null; activeSinceMs: number | null };
}

export interface TeachInListView {
  teachIns: TeachInView[];
  /** false where this host has no teach-in (the dashboard inside Node-RED); absent where it has. */
  available?: false;
}

/** A teach-in that has ended, as the log keeps it: how it ended and, for one that failed, why. */
export interface TeachInEndedView {
  state: 'active' | 'superseded' | 'cancelled' | 'failed';
  /** Why it failed (the gateway's words), else null. */
  reason: string | null;
  /** Windows learned. */
  windows: number;
  targetWindows: number | null;
  targetMinutes: number | null;
  /** Who started it (a dashboard user, 'cli', a Node-RED node) and when; when it ended (wall time). */
  startedBy: string | null;
  startedMs: number;
  endedMs: number | null;
  /** The threshold it derived (active, superseded), else null. */
  threshold: number | null;
}

export interface TeachInLastView {
  /** null: the device's model has no teach-in that ended. */
  last: TeachInEndedView | null;
}
