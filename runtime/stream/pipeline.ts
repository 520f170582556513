// One pipeline of the gateway: a topic pattern, a decoder, a model variant. Messages are
// journaled (and may then be acknowledged), decoded, windowed per device, run in micro-batches,
// and their results, alerts, dead letters and outbound messages committed together; the commit
// also retires the journal rows of the messages whose windows are all logged.
import { createHash } from 'node:crypto';
import type { ModelSession } from '../engine';
import { EdgeInferError, isEdgeInferError } from '../errors';
import type { ModelCard, VariantEntry } from '../model';
import type { GatewayMetrics } from '../serve/metrics';
import type { AlertRecord, CommitUnit, ConsumedRef, DeadLetterRecord, InboundRef, OutboxMessage, ResultRecord, ResultStore, WindowRecord } from '../store';
import { type Decoder, type DecoderConfig, createDecoder, parseSparkplugTopic } from './decoders';
import { SparkplugBirths } from './births';
import { DeviceWindows, type ReadyWindow } from './device-windows';
import { type WindowResultRecord, resultPayload, resultRecord, withThreshold } from './results';
import { type BackPressurePolicy, Scheduler, type WindowResult } from './scheduler';
import { type TopicPattern, deviceFromTopic, filterMatcher, parseTopicPattern } from './topic';

export { resultPayload } from './results';

export interface AlertRule {
  /** Topic template for alerts: {device} and {model} are filled in. */
  topic: string;
  /** Anomalous windows in a row before an alert (default 1). */
  consecutive: number;
  /** Seconds after an alert before the same device raises another (default 60). */
  cooldownS: number;
  /** Replaces the card's threshold: for the results' labels and anomaly flags, what they publish, and the alerts. */
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
  /**
   * Keep the keys of consumed QoS 1/2 messages (the log's `inbound` table) to recognise a
   * redelivery that comes after them. Only a persistent session redelivers. Default true.
   */
  inboundKeys?: boolean;
}

/** One inbound message, as the gateway hands it to each pipeline that wants it. */
export interface InboundMessage {
  topic: string;
  payload: Buffer;
  receivedMs: number;
  /** The broker marked it as a redelivery (DUP), or it was recovered after a restart. */
  redelivered: boolean;
  /** messageKey(topic, payload), computed once per message. */
  key: string;
  qos: 0 | 1 | 2;
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

/** What still holds a journaled message; it retires (its journal row goes) when nothing does. */
interface Pending {
  /** Windows holding the message's samples that are queued, running or being committed. */
  windows: number;
  /** Device windows still buffering its samples: one per push that kept them, until released. */
  spans: number;
  /** True while process() is still pushing its sample groups. */
  open: boolean;
  /** Keep its key in `inbound` once consumed (a redelivery of it is possible). */
  remember: boolean;
  /** A Sparkplug birth kept until a newer birth or a death replaces it. */
  pinned?: boolean;
}

export class Pipeline {
  readonly pattern: TopicPattern;
  readonly decoder: Decoder;
  readonly windows: DeviceWindows;
  readonly scheduler: Scheduler;
  /** The variant's card, with the operator's threshold when the alert rule sets one. */
  readonly card: ModelCard;
  readonly matches: (topic: string) => boolean;
  /** Journal keys still needed, with what holds them. */
  private readonly pending = new Map<string, Pending>();
  /** Keys ready to retire with the next commit. */
  private consumable: Array<{ key: string; remember: boolean }> = [];
  /** Last committed window start per device: read from the log for the replay, and only for it. */
  private replayCursors: Map<string, number> | undefined;
  private readonly streak = new Map<string, { count: number; lastAlertMs: number }>();
  /** When each Sparkplug edge node was last asked to rebirth. */
  private readonly rebirthAsked = new Map<string, number>();
  /** Keys being journaled, or journaled and waiting for their turn to be processed. */
  private readonly journaling = new Set<string>();
  /** Keys retired whose journal rows are not deleted yet (their commit is under way). */
  private readonly retiring = new Set<string>();
  /** The last journaled message's turn to be processed: messages are processed in arrival order. */
  private turn: Promise<void> = Promise.resolve();
  /** Windows delivered, shed or failed: settled once only. */
  private readonly settled = new WeakSet<ReadyWindow>();
  private readonly rememberKeys: boolean;
  /** Sparkplug pipelines: the births kept journaled for a restart. */
  private readonly births: SparkplugBirths | undefined;
  private closing = false;
  private repeats = 0;
  private recorded = 0;
  /** Windows the last replay did not log again: the log had them before the restart. */
  replaySkipped = 0;

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
    this.matches = filterMatcher(this.pattern.filter);
    this.decoder = createDecoder(spec.decoder);
    // One card for everything the pipeline says: labels, anomaly flags, published threshold, alerts.
    this.card = withThreshold(variant.card, spec.alerts?.threshold);
    this.windows = new DeviceWindows(this.card, { window: spec.window, hop: spec.hop, maxGapS: spec.maxGapS, seqPerDevice: spec.decoder.kind !== 'sparkplug' });
    this.scheduler = new Scheduler(session, this.card, (results) => this.deliver(results), spec.scheduler, (err, windows) => this.failed(err, windows));
    this.rememberKeys = spec.inboundKeys ?? true;
    this.births = this.decoder.kind === 'sparkplug' ? new SparkplugBirths() : undefined;
  }

  get name(): string {
    return this.spec.name;
  }

  private owns(device: string): boolean {
    const p = this.spec.partition;
    return !p || partitionOf(device, p.count) === p.index;
  }

  /**
   * Takes one message. Resolves once the message may be acknowledged: it is journaled (or was
   * already handled) and processed; under the 'pause' policy processing waits for room in the
   * queue, so the acknowledgement (and the caller's next message) waits too.
   */
  async accept(m: InboundMessage): Promise<void> {
    this.metrics.messages.inc({ pipeline: this.name });
    let key = m.key;
    const inMemory = this.pending.has(key) || this.journaling.has(key) || this.retiring.has(key);
    // Only a message the broker marks as redelivered can be one the log already has; looking
    // every message up would cost a query each.
    if (m.redelivered && (inMemory || this.store.journaled(this.name, key) || this.store.seen(`${this.name}:${key}`))) {
      this.metrics.duplicates.inc({ pipeline: this.name });
      return;
    }
    // The same payload again, sent anew (a sensor repeating a value): a message of its own.
    if (inMemory) key = `${key}~${m.receivedMs}~${++this.repeats}`;
    // Devices of other partitions belong to other gateways; nothing to keep. A topic whose device
    // level is empty is journaled all the same: process() dead-letters it.
    if (this.spec.partition && this.pattern.deviceLevel >= 0) {
      const device = this.deviceOf(m.topic);
      if (device !== undefined && !this.owns(device)) return;
    }
    // In memory from here until process() has it in `pending`: a repeat of it meanwhile is a message of its own.
    this.journaling.add(key);
    try {
      // Grouped with the messages of this turn in one commit; the acknowledgement waits on it.
      const fresh = await this.store.journalSoon({ pipeline: this.name, key, topic: m.topic, payload: m.payload, receivedMs: m.receivedMs });
      // Journaled before a restart under this key and not yet replayed is impossible (replay comes
      // first), so a key already there is one of ours: nothing more to do.
      if (!fresh) return;
      const remember = this.rememberKeys && m.qos > 0;
      const turn = this.turn.then(async () => {
        if (this.spec.scheduler.policy === 'pause') await this.room();
        this.process(key, m.topic, m.payload, m.receivedMs, remember);
      });
      this.turn = turn;
      await turn;
    } finally {
      this.journaling.delete(key);
    }
  }

  /** Resolves when the queue has room (or the pipeline is closing). */
  async room(): Promise<void> {
    while (this.scheduler.full && !this.closing) await this.scheduler.room();
  }

  private deviceOf(topic: string): string | undefined {
    try {
      return deviceFromTopic(this.pattern, topic);
    } catch {
      return undefined;
    }
  }

  /** Replays journal rows left by a previous run, before new messages are taken. Returns how many. */
  async replay(): Promise<number> {
    // The rows re-form windows, some of which the log already has: those are not logged twice.
    // Live messages after the replay are windowed whatever their time (a device's clock may go back).
    this.replayCursors = this.store.cursors(this.name);
    this.replaySkipped = 0;
    let after = 0;
    let n = 0;
    try {
      for (;;) {
        const rows = this.store.pendingJournal(this.name, after, 500);
        if (rows.length === 0) break;
        for (const r of rows) {
          await this.room();
          // Messages between two journaled ones may have been consumed before the restart: their
          // order (Sparkplug seq) is not checked across the gap.
          this.decoder.resync?.();
          this.process(r.key, r.topic, r.payload, r.receivedMs, this.rememberKeys);
          after = r.id;
          n++;
        }
      }
      await this.scheduler.drain();
    } finally {
      this.replayCursors = undefined;
    }
    // The first live message may follow messages consumed before the restart.
    this.decoder.resync?.();
    return n;
  }

  /** Decode → windows → queue. Problems become dead letters; this never throws. */
  private process(key: string, topic: string, payload: Uint8Array, receivedMs: number, remember: boolean): void {
    // Closing: the message stays in the journal and the next start replays it.
    if (this.closing) return;
    const entry: Pending = { windows: 0, spans: 0, open: true, remember };
    this.pending.set(key, entry);
    const gaps = this.windows.gaps;
    let device: string | null = null;
    const ready: ReadyWindow[] = [];
    let failure: unknown;
    try {
      device = this.pattern.deviceLevel >= 0 ? deviceFromTopic(this.pattern, topic) : null;
      const groups = this.decoder.decode(payload, { topic, device: device ?? topic });
      for (const g of groups) {
        if (!this.owns(g.device)) continue;
        device = g.device;
        const { windows, released, buffered } = this.windows.push(g.device, g, key, receivedMs);
        if (buffered) entry.spans++;
        for (const w of windows) {
          if (this.loggedBeforeRestart(w)) continue;
          ready.push(w);
          for (const k of w.messageKeys) {
            const p = this.pending.get(k);
            if (p) p.windows++;
          }
        }
        for (const k of released) this.release(k);
      }
    } catch (err) {
      failure = err;
    }
    // Windows restarted by this message (a lost message or a jump in time before it).
    this.metrics.windowGaps.inc({ pipeline: this.name }, this.windows.gaps - gaps);
    // Windows completed before a later sample group failed are run all the same.
    if (ready.length) {
      this.metrics.windows.inc({ pipeline: this.name }, ready.length);
      try {
        const shed = this.scheduler.submit(ready);
        if (shed.length) this.shed(shed);
      } catch (err) {
        this.settle(ready);
        failure ??= err;
      }
    }
    if (this.births && failure === undefined) {
      const { keep, replaced } = this.births.took(topic, key);
      entry.pinned = keep;
      for (const k of replaced) this.unpin(k);
    }
    entry.open = false;
    this.maybeRetire(key, entry);
    if (failure !== undefined) this.deadLetter(topic, device, payload, failure);
    // Messages that fed no window (births, empty payloads) or were let go by a gap retire now,
    // in the writer's current batch, rather than whenever the next window is logged.
    else if (this.consumable.length > 0 && ready.length === 0) void this.write(this.consumedUnitParts());
    this.metrics.queueDepth.set({ pipeline: this.name }, this.scheduler.depth);
  }

  /** During a replay: true for a window the log had before the restart (counted, not logged again). */
  private loggedBeforeRestart(w: ReadyWindow): boolean {
    const cursor = this.replayCursors?.get(w.device);
    if (cursor === undefined || w.startMs > cursor) return false;
    this.replaySkipped++;
    this.metrics.replaySkipped.inc({ pipeline: this.name });
    return true;
  }

  /** A device window no longer buffers the message's samples. */
  private release(key: string): void {
    const p = this.pending.get(key);
    if (!p) return;
    p.spans--;
    this.maybeRetire(key, p);
  }

  /** A birth a newer birth or a death replaced: it may retire. */
  private unpin(key: string): void {
    const p = this.pending.get(key);
    if (!p) return;
    p.pinned = false;
    this.maybeRetire(key, p);
  }

  private maybeRetire(key: string, p: Pending): void {
    if (p.open || p.pinned || p.spans > 0 || p.windows > 0) return;
    this.pending.delete(key);
    this.consumable.push({ key, remember: p.remember });
  }

  private consumedUnitParts(): Pick<CommitUnit, 'consumed' | 'inbound'> {
    const keys = this.consumable;
    this.consumable = [];
    const consumed: ConsumedRef[] = [];
    const inbound: InboundRef[] = [];
    const now = Date.now();
    for (const k of keys) {
      consumed.push({ pipeline: this.name, key: k.key });
      this.retiring.add(k.key);
      // The inbound key outlives the journal row, so a redelivery after it is still recognised.
      if (k.remember) inbound.push({ key: `${this.name}:${k.key}`, topic: this.name, receivedMs: now });
    }
    return { consumed, inbound };
  }

  private deadLetter(topic: string, device: string | null, payload: Uint8Array, err: unknown): void {
    const code = isEdgeInferError(err) ? err.code : 'E_INPUT_VALUE';
    const reason = err instanceof Error ? err.message : String(err);
    // DATA from a Sparkplug node whose births this gateway has not seen (it started later, or
    // restarted): as a Sparkplug host does, ask the node to rebirth, once every few seconds.
    if (this.decoder.kind === 'sparkplug' && reason.includes('a rebirth is needed')) this.askRebirth(topic);
    this.metrics.decodeErrors.inc({ pipeline: this.name });
    this.metrics.deadLetters.inc({ pipeline: this.name, code });
    const letter: DeadLetterRecord = { timeMs: Date.now(), topic, device, reason, code, payload };
    void this.write({ deadLetters: [letter], ...this.consumedUnitParts() });
  }

  private askRebirth(topic: string): void {
    try {
      const t = parseSparkplugTopic(topic);
      if (t.type === 'STATE') return;
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

  /** Windows dropped by the shed-oldest policy: each becomes a dead letter naming its messages. */
  private shed(windows: ReadyWindow[]): void {
    this.metrics.shedWindows.inc({ pipeline: this.name }, windows.length);
    this.metrics.deadLetters.inc({ pipeline: this.name, code: 'E_SHED' }, windows.length);
    const letters = windows.map((w) => this.windowLetter(w, 'E_SHED', `inference could not keep up: window of ${w.device} from ${new Date(w.startMs).toISOString()} shed (policy shed-oldest)`));
    this.settle(windows);
    void this.write({ deadLetters: letters, ...this.consumedUnitParts() });
  }

  /** A run or delivery that failed as a whole: its windows not yet settled become dead letters. */
  private failed(err: unknown, windows: readonly ReadyWindow[]): void {
    this.onError(err);
    const open = windows.filter((w) => !this.settled.has(w));
    if (open.length === 0) return;
    const code = isEdgeInferError(err) ? err.code : 'E_RUN';
    const message = err instanceof Error ? err.message : String(err);
    this.metrics.deadLetters.inc({ pipeline: this.name, code }, open.length);
    const letters = open.map((w) => this.windowLetter(w, code, `${this.session.name}: window of ${w.device} from ${new Date(w.startMs).toISOString()} not logged: ${message}`));
    this.settle(open);
    void this.write({ deadLetters: letters, ...this.consumedUnitParts() });
  }

  private windowLetter(w: ReadyWindow, code: string, reason: string): DeadLetterRecord {
    const payload = new TextEncoder().encode(JSON.stringify({ device: w.device, model: this.card.id, window: { startMs: w.startMs, endMs: w.endMs }, messages: w.messageKeys }));
    return { timeMs: Date.now(), topic: this.spec.topic, device: w.device, reason, code, payload };
  }

  /** The windows are done (logged or dead-lettered): their messages may retire. */
  private settle(windows: readonly ReadyWindow[]): void {
    for (const w of windows) {
      if (this.settled.has(w)) continue;
      this.settled.add(w);
      for (const k of w.messageKeys) {
        const p = this.pending.get(k);
        if (!p) continue;
        p.windows--;
        this.maybeRetire(k, p);
      }
    }
  }

  /**
   * Results of one run: interpreted, alerted on, published and logged in one commit. The unit is
   * handed to the log before this returns (so units reach it in run order); the promise settles
   * when it is committed.
   */
  private deliver(results: WindowResult[]): Promise<void> {
    const now = Date.now();
    const unit: CommitUnit = { results: [], alerts: [], deadLetters: [], outbox: [], windows: [], cursors: [] };
    const model = this.card.id;
    const variant = this.variant.variant;
    const lastStart = new Map<string, number>();
    for (const { window: w, outcome } of results) {
      let made: WindowResultRecord | undefined;
      let error: EdgeInferError | undefined;
      if (outcome.ok) {
        this.metrics.inferences.inc({ pipeline: this.name, model, variant });
        try {
          made = resultRecord(this.card, variant, w, outcome, now);
        } catch (err) {
          error = isEdgeInferError(err) ? err : new EdgeInferError('E_RUN', err instanceof Error ? err.message : String(err), { cause: err });
        }
      } else {
        error = outcome.error;
      }
      if (!made) {
        const e = error as EdgeInferError;
        this.metrics.deadLetters.inc({ pipeline: this.name, code: e.code });
        // The runtime's own message ("the model failed while running: ...") does not say which
        // model, nor which window: a dead letter read later must.
        const reason = e.message.startsWith(this.session.name) ? e.message : outcome.ok ? `${this.session.name}: ${e.message}` : `${this.session.name}: window of ${w.device} from ${new Date(w.startMs).toISOString()}: ${e.message}`;
        unit.deadLetters!.push(this.windowLetter(w, e.code, reason));
        continue;
      }
      const { record, probabilities } = made;
      unit.results!.push(record);
      unit.outbox!.push({ topic: fillTopic(this.spec.results, w.device, model), payload: JSON.stringify(resultPayload(this.card, variant, record, probabilities)), qos: this.spec.resultsQos });
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
    for (const [device, ms] of lastStart) unit.cursors!.push({ pipeline: this.name, device, lastWindowStartMs: ms });
    this.metrics.batchSize.observe({ pipeline: this.name }, results.length);
    const ran = results.find((r) => r.outcome.ok);
    if (ran && ran.outcome.ok) this.metrics.inferenceSeconds.observe({ pipeline: this.name }, ran.outcome.ms / 1000);
    this.settle(results.map((r) => r.window));
    Object.assign(unit, this.consumedUnitParts());
    this.metrics.alerts.inc({ pipeline: this.name }, unit.alerts!.length);
    const written = this.write(unit);
    this.metrics.queueDepth.set({ pipeline: this.name }, this.scheduler.depth);
    return written;
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
    const threshold = this.card.output.threshold;
    const what = this.card.task === 'classification' ? `${r.label} (${(r.score * 100).toFixed(0)} %)` : `score ${r.score.toPrecision(3)} over threshold ${threshold}`;
    const record: AlertRecord = {
      timeMs: r.timeMs,
      device: r.device,
      model: r.model,
      variant: r.variant,
      kind: this.card.task === 'classification' ? 'fault' : 'anomaly',
      label: r.label,
      score: r.score,
      threshold: threshold ?? null,
      message: `${r.device}: ${this.card.title} reports ${what} for ${s.count} window${s.count > 1 ? 's' : ''} in a row`,
    };
    return { record, message: { topic: fillTopic(rule.topic, r.device, r.model), payload: JSON.stringify({ ...record, time: new Date(record.timeMs).toISOString() }), qos: 1 } };
  }

  /** Hands the unit to the log (at once) and resolves when it is committed; never rejects. */
  private async write(unit: CommitUnit): Promise<void> {
    const t0 = performance.now();
    try {
      await this.store.commit(unit);
      this.metrics.dbWriteSeconds.observe((performance.now() - t0) / 1000);
      this.onCommit(unit);
    } catch (err) {
      // The journal still holds the messages: a restart replays them. Report, keep going.
      this.onError(new EdgeInferError(isEdgeInferError(err) ? err.code : 'E_STORE_WRITE', `${this.name}: results not logged: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
    } finally {
      for (const c of unit.consumed ?? []) this.retiring.delete(c.key);
    }
  }

  /** Processes what is journaled, runs what is queued and waits until it is logged. */
  async drain(): Promise<void> {
    await this.turn;
    await this.scheduler.drain();
    if (this.consumable.length) await this.write(this.consumedUnitParts());
  }

  /** Stops processing (messages not yet processed stay journaled for the next start); runs and logs what is queued. */
  async close(): Promise<void> {
    this.closing = true;
    // Closing the scheduler wakes the messages waiting for room; they find the pipeline closing.
    await this.scheduler.close();
    await this.turn;
    if (this.consumable.length) await this.write(this.consumedUnitParts());
  }
}
