// One pipeline of the gateway: a topic pattern, a decoder, a model variant. Messages are
// journaled (and may then be acknowledged), decoded, windowed per device, run in micro-batches,
// and their results, alerts, dead letters and outbound messages committed together; the commit
// also retires the journal rows of the messages whose windows are all logged.
import { createHash } from 'node:crypto';
import type { ModelSession } from '../engine';
import { EdgeInferError, isEdgeInferError } from '../errors';
import { type ModelCard, type VariantEntry, interpret } from '../model';
import type { GatewayMetrics } from '../serve/metrics';
import type { AlertRecord, CommitUnit, DeadLetterRecord, OutboxMessage, ResultRecord, ResultStore, WindowRecord } from '../store';
import { type Decoder, type DecoderConfig, createDecoder, parseSparkplugTopic } from './decoders';
import { DeviceWindows, type ReadyWindow } from './device-windows';
import { type BackPressurePolicy, Scheduler, type WindowResult } from './scheduler';
import { type TopicPattern, deviceFromTopic, parseTopicPattern, topicMatches } from './topic';

export interface AlertRule {
  /** Topic template for alerts: {device} and {model} are filled in. */
  topic: string;
  /** Anomalous windows in a row before an alert (default 1). */
  consecutive: number;
  /** Seconds after an alert before the same device raises another (default 60). */
  cooldownS: number;
  /** Overrides the card's threshold. */
  threshold?: number;
}

export interface PipelineSpec {
  name: string;
  /** Topic pattern with an optional {device} level; may start with $share/<group>/. */
  topic: string;
  qos: 0 | 1 | 2;
  decoder: DecoderConfig;
  window?: number;
  hop?: number;
  maxGapS?: number;
  /** Topic template for results: {device} and {model} are filled in. */
  results: string;
  resultsQos: 0 | 1 | 2;
  alerts?: AlertRule;
  /** Only devices whose hash falls in this slot (worker index of count) are handled here. */
  partition?: { index: number; count: number };
  /** Keep every n-th window's features for on-gateway calibration (0: none). */
  recordEvery: number;
  scheduler: { maxBatch: number; maxWaitMs: number; maxQueue: number; policy: BackPressurePolicy };
}

/** Least time between two rebirth requests to one Sparkplug edge node. */
const REBIRTH_EVERY_MS = 5000;

/** A message's identity for recognising a redelivery: a hash of its topic and payload. */
export function messageKey(topic: string, payload: Uint8Array): string {
  return createHash('sha1').update(topic).update('\u0000').update(payload).digest('base64url');
}

/** Which of `count` workers owns a device: a stable hash, so a device's windows stay on one process. */
export function partitionOf(device: string, count: number): number {
  let h = 2166136261;
  for (let i = 0; i < device.length; i++) h = Math.imul(h ^ device.charCodeAt(i), 16777619);
  return (h >>> 0) % count;
}

/** Fills {device} and {model} into a topic template. */
export function fillTopic(template: string, device: string, model: string): string {
  return template.replaceAll('{device}', device).replaceAll('{model}', model);
}

/** The JSON a result is published as (the Node-RED nodes emit the same shape). */
export function resultPayload(card: ModelCard, variant: string, r: ResultRecord, probabilities?: Record<string, number>): Record<string, unknown> {
  return {
    device: r.device,
    model: r.model,
    variant,
    time: new Date(r.timeMs).toISOString(),
    score: r.score,
    label: r.label,
    probabilities,
    anomaly: r.anomaly,
    threshold: card.output.threshold ?? null,
    latencyMs: Number(r.latencyMs.toFixed(3)),
    window: { start: new Date(r.windowStartMs).toISOString(), end: new Date(r.windowEndMs).toISOString() },
  };
}

interface Pending {
  /** Windows holding the message's samples that are queued or running. */
  windows: number;
  /** False once no future window will read the message. */
  buffered: boolean;
  topic: string;
  receivedMs: number;
}

export class Pipeline {
  readonly pattern: TopicPattern;
  readonly decoder: Decoder;
  readonly windows: DeviceWindows;
  readonly scheduler: Scheduler;
  readonly card: ModelCard;
  /** Journal keys still needed, with what holds them. */
  private readonly pending = new Map<string, Pending>();
  /** Keys ready to retire with the next commit. */
  private consumable: string[] = [];
  /** Last committed window start per device (from the log, then as windows commit). */
  private readonly cursors: Map<string, number>;
  private readonly streak = new Map<string, { count: number; lastAlertMs: number }>();
  /** When each Sparkplug edge node was last asked to rebirth. */
  private readonly rebirthAsked = new Map<string, number>();
  /** Keys whose journal commit is under way. */
  private readonly journaling = new Set<string>();
  private repeats = 0;
  private recorded = 0;

  constructor(
    readonly spec: PipelineSpec,
    readonly variant: VariantEntry,
    readonly session: ModelSession,
    private readonly store: ResultStore,
    private readonly metrics: GatewayMetrics,
    /** Called after each commit (the outbox publisher waits on it). */
    private readonly onCommit: (unit: CommitUnit) => void = () => undefined,
    private readonly onError: (err: unknown) => void = () => undefined,
    /** Asks a Sparkplug edge node to publish its births again (the gateway sends the NCMD). */
    private readonly requestRebirth: (group: string, edgeNode: string) => void = () => undefined,
  ) {
    this.pattern = parseTopicPattern(spec.topic);
    this.decoder = createDecoder(spec.decoder);
    this.card = variant.card;
    this.windows = new DeviceWindows(this.card, { window: spec.window, hop: spec.hop, maxGapS: spec.maxGapS, seqPerDevice: spec.decoder.kind !== 'sparkplug' });
    this.scheduler = new Scheduler(session, this.card, (results) => this.deliver(results), spec.scheduler, onError);
    this.cursors = store.cursors(spec.name);
  }

  get name(): string {
    return this.spec.name;
  }

  matches(topic: string): boolean {
    return topicMatches(this.pattern.filter, topic);
  }

  private owns(device: string): boolean {
    const p = this.spec.partition;
    return !p || partitionOf(device, p.count) === p.index;
  }

  /**
   * Takes one message. Resolves once the message may be acknowledged: it is journaled (or was
   * already handled), and under the 'pause' policy there is room in the queue.
   */
  async accept(topic: string, payload: Buffer, receivedMs: number, redelivered: boolean): Promise<void> {
    this.metrics.messages.inc({ pipeline: this.name, topic });
    let key = messageKey(topic, payload);
    const inMemory = this.pending.has(key) || this.journaling.has(key);
    // Only a message the broker marks as redelivered can be one the log already has; looking
    // every message up would cost a query each.
    if (redelivered && (inMemory || this.store.journaled(this.name, key) || this.store.seen(`${this.name}:${key}`))) {
      this.metrics.duplicates.inc({ pipeline: this.name });
      return;
    }
    // The same payload again, sent anew (a sensor repeating a value): a message of its own.
    if (inMemory) key = `${key}~${receivedMs}~${++this.repeats}`;
    // Devices of other partitions belong to other gateways; nothing to keep.
    const device = this.pattern.deviceLevel >= 0 ? deviceFromTopic(this.pattern, topic) : undefined;
    if (device !== undefined && !this.owns(device)) return;
    this.journaling.add(key);
    let fresh: boolean;
    try {
      // Grouped with the messages of this turn in one commit; the acknowledgement waits on it.
      fresh = await this.store.journalSoon({ pipeline: this.name, key, topic, payload, receivedMs });
    } finally {
      this.journaling.delete(key);
    }
    // Journaled before a restart under this key and not yet replayed is impossible (replay comes
    // first), so a key already there is one of ours: nothing more to do.
    if (!fresh) return;
    // Groups commit in order and resolve in order: messages are processed as they came.
    this.process(key, topic, payload, receivedMs);
    if (this.spec.scheduler.policy === 'pause') await this.scheduler.room();
  }

  /** Replays journal rows left by a previous run, before new messages are taken. */
  async replay(): Promise<number> {
    let after = 0;
    let n = 0;
    for (;;) {
      const rows = this.store.pendingJournal(this.name, after, 500);
      if (rows.length === 0) break;
      for (const r of rows) {
        this.process(r.key, r.topic, Buffer.from(r.payload), r.receivedMs);
        after = r.id;
        n++;
        if (this.scheduler.full) await this.scheduler.room();
      }
    }
    await this.scheduler.drain();
    return n;
  }

  /** Decode → windows → queue. Problems become dead letters; this never throws. */
  private process(key: string, topic: string, payload: Buffer, receivedMs: number): void {
    const entry: Pending = { windows: 0, buffered: true, topic, receivedMs };
    this.pending.set(key, entry);
    const gaps = this.windows.gaps;
    let device: string | null = null;
    try {
      device = this.pattern.deviceLevel >= 0 ? deviceFromTopic(this.pattern, topic) : null;
      const groups = this.decoder.decode(payload, { topic, device: device ?? topic });
      const ready: ReadyWindow[] = [];
      let fed = false;
      for (const g of groups) {
        if (!this.owns(g.device)) continue;
        device = g.device;
        fed = true;
        const { windows, released } = this.windows.push(g.device, g, key, receivedMs);
        for (const w of windows) {
          // A window already logged before a restart is not logged again.
          const cursor = this.cursors.get(w.device);
          if (cursor !== undefined && w.startMs <= cursor) continue;
          ready.push(w);
          for (const k of w.messageKeys) {
            const p = this.pending.get(k);
            if (p) p.windows++;
          }
        }
        for (const k of released) this.release(k);
      }
      if (!fed) this.release(key);
      // Windows restarted by this message (a lost message or a jump in time before it).
      this.metrics.windowGaps.inc({ pipeline: this.name }, this.windows.gaps - gaps);
      if (ready.length) {
        this.metrics.windows.inc({ pipeline: this.name }, ready.length);
        const shed = this.scheduler.submit(ready);
        if (shed.length) this.shed(shed);
      }
    } catch (err) {
      this.deadLetter(key, topic, device, payload, err);
    }
    this.metrics.queueDepth.set({ pipeline: this.name }, this.scheduler.depth);
  }

  /** No future window reads the message; it retires once its queued windows are logged. */
  private release(key: string): void {
    const p = this.pending.get(key);
    if (!p || !p.buffered) return;
    p.buffered = false;
    if (p.windows === 0) this.retire(key);
  }

  private retire(key: string): void {
    this.pending.delete(key);
    this.consumable.push(key);
  }

  private consumedUnitParts(): Pick<CommitUnit, 'consumed' | 'inbound'> {
    const keys = this.consumable;
    this.consumable = [];
    return {
      consumed: keys.map((key) => ({ pipeline: this.name, key })),
      // The inbound key outlives the journal row, so a redelivery after it is still recognised.
      inbound: keys.map((key) => ({ key: `${this.name}:${key}`, topic: this.name, receivedMs: Date.now() })),
    };
  }

  private deadLetter(key: string, topic: string, device: string | null, payload: Uint8Array, err: unknown): void {
    const code = isEdgeInferError(err) ? err.code : 'E_INPUT_VALUE';
    const reason = err instanceof Error ? err.message : String(err);
    // DATA from a Sparkplug node whose births this gateway has not seen (it started later, or
    // restarted): as a Sparkplug host does, ask the node to rebirth, once every few seconds.
    if (this.decoder.kind === 'sparkplug' && reason.includes('a rebirth is needed')) {
      try {
        const t = parseSparkplugTopic(topic);
        if (t.type === 'STATE') throw new Error('no edge node');
        const node = `${t.group}/${t.edgeNode}`;
        const last = this.rebirthAsked.get(node) ?? -Infinity;
        if (Date.now() - last > REBIRTH_EVERY_MS) {
          this.rebirthAsked.set(node, Date.now());
          this.requestRebirth(t.group, t.edgeNode);
        }
      } catch {
        // not a Sparkplug topic: nothing to ask
      }
    }
    this.metrics.decodeErrors.inc({ pipeline: this.name });
    this.metrics.deadLetters.inc({ pipeline: this.name, code });
    const p = this.pending.get(key);
    if (p) {
      p.buffered = false;
      if (p.windows === 0) this.retire(key);
    }
    const letter: DeadLetterRecord = { timeMs: Date.now(), topic, device, reason, code, payload };
    this.write({ deadLetters: [letter], ...this.consumedUnitParts() });
  }

  /** Windows dropped by the shed-oldest policy: each becomes a dead letter naming its messages. */
  private shed(windows: ReadyWindow[]): void {
    this.metrics.shedWindows.inc({ pipeline: this.name }, windows.length);
    this.metrics.deadLetters.inc({ pipeline: this.name, code: 'E_SHED' }, windows.length);
    const letters = windows.map((w) => this.windowLetter(w, 'E_SHED', `inference could not keep up: window of ${w.device} from ${new Date(w.startMs).toISOString()} shed (policy shed-oldest)`));
    this.settle(windows);
    this.write({ deadLetters: letters, ...this.consumedUnitParts() });
  }

  private windowLetter(w: ReadyWindow, code: string, reason: string): DeadLetterRecord {
    const payload = new TextEncoder().encode(JSON.stringify({ device: w.device, model: this.card.id, window: { startMs: w.startMs, endMs: w.endMs }, messages: w.messageKeys }));
    return { timeMs: Date.now(), topic: this.spec.topic, device: w.device, reason, code, payload };
  }

  /** The windows are done (logged or dead-lettered): their messages may retire. */
  private settle(windows: readonly ReadyWindow[]): void {
    for (const w of windows) {
      for (const k of w.messageKeys) {
        const p = this.pending.get(k);
        if (!p) continue;
        p.windows--;
        if (p.windows <= 0 && !p.buffered) this.retire(k);
      }
    }
  }

  /** Results of one run: interpreted, alerted on, published and logged in one commit. */
  private async deliver(results: WindowResult[]): Promise<void> {
    const now = Date.now();
    const unit: CommitUnit = { results: [], alerts: [], deadLetters: [], outbox: [], windows: [], cursors: [] };
    const model = this.card.id;
    const variant = this.variant.variant;
    const lastStart = new Map<string, number>();
    for (const { window: w, outcome } of results) {
      if (!outcome.ok) {
        this.metrics.deadLetters.inc({ pipeline: this.name, code: outcome.error.code });
        // The runtime's own message ("the model failed while running: ...") does not say which
        // model, nor which window: a dead letter read later must.
        const message = outcome.error.message;
        const reason = message.startsWith(this.session.name) ? message : `${this.session.name}: window of ${w.device} from ${new Date(w.startMs).toISOString()}: ${message}`;
        unit.deadLetters!.push(this.windowLetter(w, outcome.error.code, reason));
        continue;
      }
      this.metrics.inferences.inc({ pipeline: this.name, model, variant });
      const output = outcome.outputs[this.card.output.tensor]?.data as Float32Array;
      const meaning = interpret(this.card, output);
      const threshold = this.spec.alerts?.threshold;
      const anomaly = threshold !== undefined ? meaning.score >= threshold && meaning.label !== 'normal' : meaning.anomaly;
      const record: ResultRecord = {
        timeMs: now,
        device: w.device,
        model,
        variant,
        score: meaning.score,
        label: meaning.label ?? null,
        anomaly,
        outputs: Array.from(output),
        latencyMs: outcome.ms / outcome.batch,
        windowStartMs: w.startMs,
        windowEndMs: w.endMs,
        messageKeys: w.messageKeys,
      };
      unit.results!.push(record);
      unit.outbox!.push({ topic: fillTopic(this.spec.results, w.device, model), payload: JSON.stringify(resultPayload(this.card, variant, record, meaning.probabilities)), qos: this.spec.resultsQos });
      const alert = this.alertFor(record);
      if (alert) {
        unit.alerts!.push(alert.record);
        unit.outbox!.push(alert.message);
      }
      if (this.spec.recordEvery > 0 && this.recorded++ % this.spec.recordEvery === 0) {
        unit.windows!.push({ timeMs: now, device: w.device, model, features: w.features, dims: w.dims } satisfies WindowRecord);
      }
      lastStart.set(w.device, Math.max(lastStart.get(w.device) ?? -Infinity, w.startMs));
    }
    for (const [device, ms] of lastStart) {
      unit.cursors!.push({ pipeline: this.name, device, lastWindowStartMs: ms });
      this.cursors.set(device, Math.max(this.cursors.get(device) ?? -Infinity, ms));
    }
    this.metrics.batchSize.observe({ pipeline: this.name }, results.length);
    const ms = results.find((r) => r.outcome.ok);
    if (ms && ms.outcome.ok) this.metrics.inferenceSeconds.observe({ pipeline: this.name }, ms.outcome.ms / 1000);
    this.settle(results.map((r) => r.window));
    Object.assign(unit, this.consumedUnitParts());
    this.metrics.alerts.inc({ pipeline: this.name }, unit.alerts!.length);
    await this.write(unit);
    this.metrics.queueDepth.set({ pipeline: this.name }, this.scheduler.depth);
  }

  /** An alert when a device has been anomalous `consecutive` windows in a row, outside its cooldown. */
  private alertFor(r: ResultRecord): { record: AlertRecord; message: OutboxMessage } | undefined {
    const rule = this.spec.alerts;
    if (!rule) return undefined;
    const s = this.streak.get(r.device) ?? { count: 0, lastAlertMs: -Infinity };
    this.streak.set(r.device, s);
    s.count = r.anomaly ? s.count + 1 : 0;
    if (s.count < rule.consecutive || r.timeMs - s.lastAlertMs < rule.cooldownS * 1000) return undefined;
    s.lastAlertMs = r.timeMs;
    const what = this.card.task === 'classification' ? `${r.label} (${(r.score * 100).toFixed(0)} %)` : `score ${r.score.toPrecision(3)} over threshold ${this.card.output.threshold}`;
    const record: AlertRecord = {
      timeMs: r.timeMs,
      device: r.device,
      model: r.model,
      variant: r.variant,
      kind: this.card.task === 'classification' ? 'fault' : 'anomaly',
      label: r.label,
      score: r.score,
      threshold: rule.threshold ?? this.card.output.threshold ?? null,
      message: `${r.device}: ${this.card.title} reports ${what} for ${s.count} window${s.count > 1 ? 's' : ''} in a row`,
    };
    return { record, message: { topic: fillTopic(rule.topic, r.device, r.model), payload: JSON.stringify({ ...record, time: new Date(record.timeMs).toISOString() }), qos: 1 } };
  }

  private async write(unit: CommitUnit): Promise<void> {
    const t0 = performance.now();
    try {
      await this.store.commit(unit);
      this.metrics.dbWriteSeconds.observe((performance.now() - t0) / 1000);
      this.onCommit(unit);
    } catch (err) {
      // The journal still holds the messages: a restart replays them. Report, keep going.
      this.onError(new EdgeInferError(isEdgeInferError(err) ? err.code : 'E_STORE_WRITE', `${this.name}: results not logged: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
    }
  }

  /** Runs what is queued and waits until it is logged. */
  async drain(): Promise<void> {
    await this.scheduler.drain();
    if (this.consumable.length) await this.write(this.consumedUnitParts());
  }

  async close(): Promise<void> {
    await this.scheduler.close();
    if (this.consumable.length) await this.write(this.consumedUnitParts());
  }
}
