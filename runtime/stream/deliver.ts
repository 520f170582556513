// The deliver stage: one run's results become one commit unit — result records, alerts (as
// changes of state), the messages to publish (through the outbox), windows kept for calibration,
// and each device's cursor. A window whose result cannot be built becomes a dead letter on its
// own; nothing here may fail the other windows of the run.
import { EdgeInferError, isEdgeInferError } from '../errors';
import type { ModelCard } from '../model';
import type { TeachIn } from '../teachin';
import type { GatewayMetrics } from '../serve/metrics';
import type { AlertRecord, CommitUnit, CursorRecord, DeadLetterRecord, OutboxMessage, ResultRecord } from '../store';
import { type AlertChange, AlertTracker, alertRecord } from './alerts';
import type { ReadyWindow } from './device-windows';
import { isoTime, resultPayload, resultRecord } from './results';
import type { WindowResult } from './scheduler';

export interface AlertRule {
  /** Topic template for alerts: {device} and {model} are filled in. */
  topic: string;
  /** Anomalous windows in a row before an alert (default 1). */
  consecutive: number;
  /** Seconds after an alert before the same device raises another (default 60). */
  cooldownS: number;
  /** Normal windows in a row that clear a raised alert (default: consecutive). */
  clearAfter?: number;
  /** Longest gap between a device's windows, in data time, that its alert state survives (default 600 s). */
  maxGapS?: number;
  /** Replaces the card's threshold: for the results' labels and anomaly flags, what they publish, and the alerts. */
  threshold?: number;
}

export interface DeliverySpec {
  /** The pipeline's name (cursors, metrics). */
  pipeline: string;
  /** The pipeline's topic pattern, named by its dead letters. */
  topic: string;
  /** The model session's name: dead letters say which model. */
  sessionName: string;
  variant: string;
  /** Topic template for results: {device} and {model} are filled in. */
  results: string;
  resultsQos: 0 | 1 | 2;
  alerts?: AlertRule;
  /** Keep every n-th window's features (0: none). */
  recordEvery: number;
  /** Per-device baselines: a device's own threshold replaces the card's once active, and its teach-in learns from its results. */
  teachIn?: TeachIn;
}

/** Fills {device} and {model} into a topic template. */
export function fillTopic(template: string, device: string, model: string): string {
  return template.replaceAll('{device}', device).replaceAll('{model}', model);
}

export class Delivery {
  readonly alerts: AlertTracker | undefined;
  private recorded = 0;

  constructor(
    /** The variant's card, with the operator's threshold when the alert rule sets one. */
    readonly card: ModelCard,
    readonly spec: DeliverySpec,
    private readonly metrics: GatewayMetrics,
  ) {
    this.alerts = spec.alerts ? new AlertTracker(spec.alerts) : undefined;
  }

  /** The unit one run's results are committed in, with the windows it settles. */
  unitFor(results: readonly WindowResult[], nowMs = Date.now()): CommitUnit {
    const unit: CommitUnit = { results: [], alerts: [], deadLetters: [], outbox: [], windows: [], cursors: [] };
    const { pipeline } = this.spec;
    const model = this.card.id;
    for (const { window: w, outcome, variant: ran, own } of results) {
      // The variant that ran this window's batch (a hot-swapped one), else the pipeline's.
      const variant = ran || this.spec.variant;
      let record: ResultRecord | undefined;
      let payload: string | undefined;
      let error: EdgeInferError | undefined;
      // A device's own variant is judged by its own card (its threshold was made for its scores);
      // else the device's teach-in threshold once active; the card's (or the rule's) until then.
      const judged = own ? undefined : this.spec.teachIn?.judgedCard(this.card, w.device);
      const card = own?.card ?? judged?.card ?? this.card;
      if (outcome.ok) {
        this.metrics.inferences.inc({ pipeline, model, variant });
        try {
          const made = resultRecord(card, variant, w, outcome, nowMs);
          record = made.record;
          const body = resultPayload(card, variant, record, made.probabilities, judged?.state);
          if (own) {
            record.modelSha256 = own.sha256;
            body.modelSha256 = own.sha256;
          }
          payload = JSON.stringify(body);
          // Learned after it was judged: the window that completes a teach-in is still judged by
          // the threshold before it. A device variant's scores are not the shared model's: not learned.
          if (!own) this.spec.teachIn?.learn(this.card, record, w.features);
        } catch (err) {
          error = isEdgeInferError(err) ? err : new EdgeInferError('E_INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
        }
      } else {
        error = outcome.error;
      }
      if (!record || payload === undefined) {
        const e = error as EdgeInferError;
        // The runtime's own message does not say which model, nor which window: a dead letter read later must.
        const name = this.spec.sessionName;
        const reason = e.message.startsWith(name) ? e.message : outcome.ok ? `${name}: ${e.message}` : `${name}: window of ${w.device} from ${isoTime(w.startMs)}: ${e.message}`;
        this.metrics.deadLetters.inc({ pipeline, code: e.code });
        unit.deadLetters!.push(this.windowLetter(w, e.code, reason));
        continue;
      }
      unit.results!.push(record);
      unit.outbox!.push({ topic: fillTopic(this.spec.results, w.device, model), payload, qos: this.spec.resultsQos });
      const change = this.alerts?.observe(w.device, record.anomaly, w.endMs);
      if (change) {
        const alert = this.alertFor(card, change, record);
        unit.alerts!.push(alert.record);
        unit.outbox!.push(alert.message);
      }
      if (this.spec.recordEvery > 0 && this.recorded++ % this.spec.recordEvery === 0) {
        unit.windows!.push({ timeMs: w.endMs, device: w.device, model, features: w.features, dims: w.dims });
      }
    }
    // Each device's alert state commits with the results that changed it: a replay after a crash
    // resumes from it and raises what the run without the crash would have, no more, no less.
    if (this.alerts) unit.alertStates = this.alerts.takeChanged().map(([device, state]) => ({ pipeline, device, state }));
    // Dead-lettered windows move the cursor too: a replay must not make (and fail) them again.
    unit.cursors = this.cursorsOf(results.map((r) => r.window));
    this.metrics.alerts.inc({ pipeline }, unit.alerts!.length);
    return unit;
  }

  /** A unit recording windows as dead letters (shed, failed runs, a unit the log refused). */
  lettersFor(windows: readonly ReadyWindow[], code: string, reason: (w: ReadyWindow) => string): CommitUnit {
    if (windows.length) this.metrics.deadLetters.inc({ pipeline: this.spec.pipeline, code }, windows.length);
    return { deadLetters: windows.map((w) => this.windowLetter(w, code, reason(w))), cursors: this.cursorsOf(windows) };
  }

  /** The last window per device among the windows (its start and messages): where a replay resumes. */
  cursorsOf(windows: readonly ReadyWindow[]): CursorRecord[] {
    const last = new Map<string, ReadyWindow>();
    for (const w of windows) {
      const before = last.get(w.device);
      if (!before || w.startMs >= before.startMs) last.set(w.device, w);
    }
    return [...last].map(([device, w]) => ({ pipeline: this.spec.pipeline, device, lastWindowStartMs: w.startMs, lastWindowKeys: w.messageKeys }));
  }

  windowLetter(w: ReadyWindow, code: string, reason: string): DeadLetterRecord {
    const payload = new TextEncoder().encode(JSON.stringify({ device: w.device, model: this.card.id, window: { startMs: w.startMs, endMs: w.endMs }, messages: w.messageKeys }));
    return { timeMs: Date.now(), topic: this.spec.topic, device: w.device, reason, code, payload };
  }

  /** The record and message of one change of a device's alert state. */
  private alertFor(card: ModelCard, change: AlertChange, r: ResultRecord): { record: AlertRecord; message: OutboxMessage } {
    const record = alertRecord(card, r.variant, change, r, change.timeMs, r.processedMs);
    const topic = fillTopic(this.spec.alerts!.topic, r.device, r.model);
    return { record, message: { topic, payload: JSON.stringify({ ...record, change: change.kind, time: isoTime(record.timeMs), processed: isoTime(record.processedMs ?? Date.now()) }), qos: 1 } };
  }
}
