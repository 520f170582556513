// One pipeline of the gateway: a topic pattern, a decoder, a model variant. It reads top-down as
// the data moves through its stages, each a module of its own:
//   intake (identity, journal, acknowledgement) → decode → per-device windows → schedule
//   (micro-batched inference) → deliver (results, alerts, outbox) → commit (with the journal
//   rows of the messages the commit retires).
// The ledger says what still holds each journaled message. Whatever goes wrong in one message or
// window becomes a dead letter naming it; nothing here ends the process.
import type { ModelSession } from '../engine';
import { EdgeInferError, isEdgeInferError } from '../errors';
import type { ModelCard, VariantEntry } from '../model';
import type { GatewayMetrics } from '../serve/metrics';
import type { CommitUnit, DeadLetterRecord, DeviceCursor, JournalRow, ResultStore } from '../store';
import type { TeachIn } from '../teachin';
import { SparkplugBirths } from './births';
import { Committer } from './commit';
import { decodeMessage, topicDevice } from './decode';
import { type Decoder, type DecoderConfig, createDecoder, parseSparkplugTopic } from './decoders';
import { type AlertRule, Delivery } from './deliver';
import { DeviceWindows, type ReadyWindow } from './device-windows';
import { DEFAULT_MAX_DEVICE_VARIANTS, DeviceVariants } from './device-variants';
import { type InboundMessage, Intake, type JournaledMessage } from './intake';
import { MessageLedger } from './ledger';
import { DevicePartition, type PartitionSpec } from './partition';
import { type ReplayTarget, replayJournal } from './replay';
import { isoTime, withThreshold } from './results';
import { ModelSlot } from './model-slot';
import type { WorkerPool } from './pool';
import { type BackPressurePolicy, Scheduler, type WindowResult } from './scheduler';
import { type TopicPattern, filterMatcher, parseTopicPattern } from './topic';

export { resultPayload } from './results';
export { fillTopic } from './deliver';
export type { AlertRule } from './deliver';
export type { InboundMessage } from './intake';

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
  /** Only the devices of this slot (index of count: by the map, else by hash) are handled here. */
  partition?: PartitionSpec;
  /** Keep every n-th window for on-gateway calibration (0: none). */
  recordEvery: number;
  /** maxDelivering: runs whose results may wait for their commit at once (default 2). */
  scheduler: { maxBatch: number; maxWaitMs: number; maxQueue: number; policy: BackPressurePolicy; maxDelivering?: number };
  /** Feature transforms and inference on these worker threads (unset: in this thread). */
  workers?: WorkerPool;
  /**
   * Keep the keys of consumed QoS 1/2 messages (the log's `inbound` table) to recognise a
   * redelivery that comes after them. Only a persistent session redelivers. Default true.
   */
  inboundKeys?: boolean;
  /**
   * Most devices followed at once (default 10,000), how long a silent device is kept (default
   * 600 s) and how far ahead of the gateway's clock its samples may be dated (default one day).
   */
  devices?: { max: number; idleS: number; maxAheadS?: number };
  /** Per-device baselines (runtime/teachin), shared by the gateway's pipelines. */
  teachIn?: TeachIn;
  /** Most devices with a model variant of their own (default 32): one session each. */
  maxDeviceVariants?: number;
}

/** Least time between two rebirth requests to one Sparkplug edge node. */
const REBIRTH_EVERY_MS = 5000;

/** Default seconds a silent device keeps its partial window. */
export const DEFAULT_IDLE_S = 600;

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((k, i) => k === b[i]);
}

export class Pipeline {
  readonly pattern: TopicPattern;
  readonly matches: (topic: string) => boolean;
  readonly decoder: Decoder;
  readonly windows: DeviceWindows;
  readonly scheduler: Scheduler;
  /** The model variant served, swappable between batches (runtime/hotswap). */
  readonly slot: ModelSlot;
  /** Devices served by model variants of their own (runtime/gateway device-models). */
  readonly devices: DeviceVariants;
  /** The variant's card, with the operator's threshold when the alert rule sets one. */
  readonly card: ModelCard;
  readonly idleMs: number;
  /** The devices this gateway handles, when several gateways share them. */
  private readonly partition: DevicePartition | undefined;
  private readonly ledger: MessageLedger;
  private readonly intake: Intake;
  private readonly delivery: Delivery;
  private readonly committer: Committer;
  /** Sparkplug pipelines: the births kept journaled for a restart. */
  private readonly births: SparkplugBirths | undefined;
  /** When each Sparkplug edge node was last asked to rebirth. */
  private readonly rebirthAsked = new Map<string, number>();
  /** Last committed window per device: read from the log for the replay, and only for it. */
  private replayCursors: Map<string, DeviceCursor> | undefined;
  private readonly sweeper: NodeJS.Timeout;
  /** When the resume points of devices that did not come back after the restart are dropped. */
  private resumePointsUntilMs = Infinity;
  private closing = false;
  /** Windows the last replay did not log again: the log had them before the restart. */
  replaySkipped = 0;

  constructor(
    readonly spec: PipelineSpec,
    variant: VariantEntry,
    session: ModelSession,
    private readonly store: ResultStore,
    private readonly metrics: GatewayMetrics,
    /** Called after each commit (the outbox publisher waits on it). */
    onCommit: (unit: CommitUnit) => void = () => undefined,
    private readonly onError: (err: unknown) => void = () => undefined,
    /** Asks a Sparkplug edge node to publish its births again (the gateway sends the NCMD). */
    private readonly requestRebirth: (group: string, edgeNode: string) => void = () => undefined,
  ) {
    this.pattern = parseTopicPattern(spec.topic);
    this.matches = filterMatcher(this.pattern.filter);
    this.decoder = createDecoder(spec.decoder);
    // One card for everything the pipeline says: labels, anomaly flags, published threshold, alerts.
    this.card = withThreshold(variant.card, spec.alerts?.threshold);
    const devices: { max?: number; idleS: number; maxAheadS?: number } = spec.devices ?? { idleS: DEFAULT_IDLE_S };
    if (!(devices.idleS > 0)) throw new EdgeInferError('E_ARGUMENT', `devices.idleS: expected seconds > 0, got ${devices.idleS}`);
    this.idleMs = devices.idleS * 1000;
    this.windows = new DeviceWindows(this.card, { window: spec.window, hop: spec.hop, maxGapS: spec.maxGapS, seqPerDevice: spec.decoder.kind !== 'sparkplug', maxDevices: devices.max, maxAheadS: devices.maxAheadS, deferFeatures: spec.workers !== undefined });
    // Hot-swap: the slot holds the variant serving now; the scheduler takes it batch by batch.
    this.slot = new ModelSlot({ session, variant: variant.variant, entry: variant }, this.card.output.tensor, onError);
    this.devices = new DeviceVariants(this.card.output.tensor, spec.maxDeviceVariants ?? DEFAULT_MAX_DEVICE_VARIANTS, onError);
    const pool = spec.workers && { pool: spec.workers, input: this.windows.featureInput };
    this.scheduler = new Scheduler(this.slot, this.card, (results) => this.deliver(results), { ...spec.scheduler, pool, devices: this.devices }, (err, windows) => this.failed(err, windows));
    this.births = this.decoder.kind === 'sparkplug' ? new SparkplugBirths() : undefined;
    this.partition = spec.partition && new DevicePartition(spec.partition);
    this.ledger = new MessageLedger(spec.name);
    this.delivery = new Delivery(this.card, { pipeline: spec.name, topic: spec.topic, sessionName: session.name, variant: variant.variant, results: spec.results, resultsQos: spec.resultsQos, alerts: spec.alerts, recordEvery: spec.recordEvery, teachIn: spec.teachIn }, metrics);
    this.committer = new Committer(spec.name, store, this.ledger, metrics, onCommit, onError);
    this.intake = new Intake(
      {
        pipeline: spec.name,
        rememberKeys: spec.inboundKeys ?? true,
        wants: (topic) => this.wants(topic),
        room: () => (this.spec.scheduler.policy === 'pause' ? this.room() : undefined),
        process: (m) => this.process(m),
      },
      store,
      this.ledger,
      metrics,
    );
    // Idle devices are let go a few times per idle bound (at least once a minute).
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, Math.max(250, this.idleMs / 4)));
    this.sweeper.unref();
  }

  get name(): string {
    return this.spec.name;
  }

  /** The variant serving now (it changes with a hot-swap). */
  get variant(): VariantEntry {
    return this.slot.serving.entry!;
  }

  /** The session serving now. */
  get session(): ModelSession {
    return this.slot.serving.session;
  }

  private owns(device: string): boolean {
    return !this.partition || this.partition.owns(device);
  }

  /**
   * False for a topic whose device another gateway owns: the gateway drops such a message before
   * it computes anything for it. A topic whose device level is empty is taken: decode dead-letters it.
   */
  wants(topic: string): boolean {
    if (!this.partition) return true;
    const device = topicDevice(this.pattern, topic);
    return device === undefined || this.partition.owns(device);
  }

  // ── intake ──────────────────────────────────────────────────────────────────────────────

  /**
   * Takes one message. Resolves once the message may be acknowledged: it is journaled (or was
   * already handled) and processed; under the 'pause' policy processing waits for room in the
   * queue, so the acknowledgement (and the caller's next message) waits too.
   */
  accept(m: InboundMessage): Promise<void> {
    return this.intake.accept(m);
  }

  /** Resolves when the queue has room (or the pipeline is closing). */
  async room(): Promise<void> {
    while (this.scheduler.full && !this.closing) await this.scheduler.room();
  }

  /**
   * True while the pipeline should take no more messages: its queue is full, or as many messages
   * as the queue holds are taken and not processed yet (a burst read before the queue filled).
   */
  get full(): boolean {
    return this.scheduler.full || this.intake.backlog >= this.scheduler.maxQueue;
  }

  /** Resolves when the pipeline may take messages again (or is closing). */
  async readable(): Promise<void> {
    while (this.full && !this.closing) {
      if (this.scheduler.full) await this.scheduler.room();
      else await this.intake.shrunk();
    }
  }

  /** Replays journal rows left by a previous run, before new messages are taken. Returns how many. */
  async replay(): Promise<number> {
    // The rows re-form windows on the grid each device had; windows the log already has are not
    // logged twice. Live messages after the replay are never checked against the log: a device
    // whose clock went back loses nothing.
    this.replayCursors = this.store.cursorWindows(this.name);
    // Alert state resumes where the log's last commit left it: the replayed windows come after it.
    const refused = this.delivery.alerts?.restore(this.store.alertStates(this.name)) ?? [];
    if (refused.length) this.onError(new EdgeInferError('E_STORE_SCHEMA', `${this.name}: the alert state the log kept for ${refused.slice(0, 3).join(', ')}${refused.length > 3 ? ` and ${refused.length - 3} more` : ''} is not one this gateway writes; those devices start with none`));
    this.windows.resumeFrom(new Map([...this.replayCursors].map(([device, c]) => [device, c.startMs])));
    this.replaySkipped = 0;
    const target: ReplayTarget = {
      room: () => this.room(),
      process: (r) => this.process({ key: r.key, topic: r.topic, payload: r.payload, receivedMs: r.receivedMs, remember: this.spec.inboundKeys ?? true }),
      drain: () => this.drain(),
      poisoned: (r) => this.poisoned(r),
      resync: () => this.decoder.resync?.(),
    };
    try {
      return (await replayJournal(this.name, this.store, target)).messages;
    } finally {
      this.replayCursors = undefined;
      // Messages the broker redelivers now (never journaled before the stop) resume the grid too,
      // for as long as an idle device is kept.
      this.resumePointsUntilMs = Date.now() + this.idleMs;
    }
  }

  // ── decode → windows → schedule ────────────────────────────────────────────────────────

  /** Decode → windows → queue. Problems become dead letters; this never throws. */
  private process(m: JournaledMessage): void {
    // Closing: the message stays in the journal and the next start replays it.
    if (this.closing) return;
    const { key, topic, payload, receivedMs } = m;
    this.ledger.open(key, m.remember);
    const gaps = this.windows.gaps;
    let device: string | null = null;
    const ready: ReadyWindow[] = [];
    let failure: unknown;
    try {
      const decoded = decodeMessage(this.pattern, this.decoder, topic, payload, (d) => this.owns(d));
      device = decoded.device;
      for (const g of decoded.groups) {
        device = g.device;
        const { windows, released, buffered } = this.windows.push(g.device, g, key, receivedMs);
        if (buffered) this.ledger.buffered(key);
        const fresh = windows.filter((w) => !this.loggedBeforeRestart(w));
        this.ledger.hold(fresh);
        ready.push(...fresh);
        for (const k of released) this.ledger.release(k);
      }
    } catch (err) {
      failure = err;
    }
    try {
      // Windows restarted by this message (a lost message or a jump in time before it).
      this.metrics.windowGaps.inc({ pipeline: this.name }, this.windows.gaps - gaps);
      // Windows completed before a later sample group failed are run all the same.
      if (ready.length) this.schedule(ready);
      let pinned = false;
      if (this.births && failure === undefined) {
        const { keep, replaced } = this.births.took(topic, key);
        pinned = keep;
        for (const k of replaced) this.ledger.unpin(k);
      }
      this.ledger.close(key, pinned);
    } catch (err) {
      // A fault of ours, not of the message: named as such, and the message is still accounted for.
      failure ??= this.internal('process', err);
      this.ledger.settle(ready);
      this.ledger.close(key);
    }
    // The topic's device names a letter whose payload failed before any sample group was read.
    if (failure !== undefined) this.deadLetter(topic, device ?? topicDevice(this.pattern, topic) ?? null, payload, failure);
    // Messages that fed no window (births, empty payloads) or were let go by a gap retire now,
    // in the writer's current batch, rather than whenever the next window is logged.
    else if (ready.length === 0) void this.committer.retireNow();
    this.metrics.queueDepth.set({ pipeline: this.name }, this.scheduler.depth);
    this.metrics.devices.set({ pipeline: this.name }, this.windows.size);
  }

  private schedule(ready: ReadyWindow[]): void {
    this.metrics.windows.inc({ pipeline: this.name }, ready.length);
    try {
      const shed = this.scheduler.submit(ready);
      if (shed.length) this.shed(shed);
    } catch (err) {
      // A closed scheduler: the windows are let go, their messages stay journaled until they retire.
      this.ledger.settle(ready);
      throw err;
    }
  }

  /**
   * During a replay: true for a window the log had before the restart (counted, not logged again):
   * one that starts before the device's last logged window, or is that window (same start, same
   * messages: untimed readings dated by their arrival can start two windows in one ms).
   */
  private loggedBeforeRestart(w: ReadyWindow): boolean {
    const cursor = this.replayCursors?.get(w.device);
    if (cursor === undefined || w.startMs > cursor.startMs) return false;
    if (w.startMs === cursor.startMs && cursor.keys && !sameKeys(cursor.keys, w.messageKeys)) return false;
    this.replaySkipped++;
    this.metrics.replaySkipped.inc({ pipeline: this.name });
    return true;
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
    void this.committer.write({ deadLetters: [letter] });
  }

  /** A journal row that was being replayed each time the process stopped: a dead letter now, not another crash. */
  private async poisoned(r: JournalRow): Promise<void> {
    const reason = `${this.name}: the gateway stopped ${r.attempts} times while processing this message (received ${isoTime(r.receivedMs)}); it is set aside unprocessed`;
    this.metrics.deadLetters.inc({ pipeline: this.name, code: 'E_POISON' });
    this.onError(new EdgeInferError('E_POISON', `${reason} (topic ${r.topic})`));
    // Not through the ledger: the row never entered it. Its journal row goes with the letter.
    const letter: DeadLetterRecord = { timeMs: Date.now(), topic: r.topic, device: topicDevice(this.pattern, r.topic) ?? null, reason, code: 'E_POISON', payload: r.payload };
    await this.committer.write({ deadLetters: [letter], consumed: [{ pipeline: this.name, key: r.key }] });
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
    this.settleAsLetters(windows, 'E_SHED', (w) => `inference could not keep up: window of ${w.device} from ${isoTime(w.startMs)} shed (policy shed-oldest)`);
  }

  /** A run or delivery that failed as a whole: its windows not yet settled become dead letters. */
  private failed(err: unknown, windows: readonly ReadyWindow[]): void {
    this.onError(err);
    const code = isEdgeInferError(err) ? err.code : 'E_RUN';
    const message = err instanceof Error ? err.message : String(err);
    this.settleAsLetters(windows, code, (w) => `${this.session.name}: window of ${w.device} from ${isoTime(w.startMs)} not logged: ${message}`);
  }

  private settleAsLetters(windows: readonly ReadyWindow[], code: string, reason: (w: ReadyWindow) => string): void {
    const open = this.ledger.settle(windows);
    if (open.length === 0) return;
    void this.committer.write(this.delivery.lettersFor(open, code, reason));
  }

  // ── deliver → commit ───────────────────────────────────────────────────────────────────

  /**
   * Results of one run: interpreted, alerted on, published and logged in one commit. The unit is
   * handed to the log before this returns (so units reach it in run order); the promise settles
   * when it is committed. Never rejects.
   */
  private deliver(results: WindowResult[]): Promise<void> {
    const windows = results.map((r) => r.window);
    let unit: CommitUnit;
    try {
      unit = this.delivery.unitFor(results);
    } catch (err) {
      // A fault of ours (each window is guarded on its own): the run's windows become dead letters.
      const e = this.internal('deliver', err);
      unit = this.delivery.lettersFor(windows, e.code, (w) => `${this.session.name}: window of ${w.device} from ${isoTime(w.startMs)} not logged: ${e.message}`);
    }
    this.metrics.batchSize.observe({ pipeline: this.name }, results.length);
    const ran = results.find((r) => r.outcome.ok);
    if (ran && ran.outcome.ok) this.metrics.inferenceSeconds.observe({ pipeline: this.name }, ran.outcome.ms / 1000);
    this.ledger.settle(windows);
    // A unit the log refuses becomes dead letters; the alert states its windows left still commit,
    // or a restart would resume from states older than the alerts the tracker already judged.
    const written = this.committer.write(unit, (err) => ({
      ...this.delivery.lettersFor(windows, err.code, (w) => `${this.session.name}: window of ${w.device} from ${isoTime(w.startMs)}: the log refused its results: ${err.message}`),
      alertStates: unit.alertStates,
    }));
    this.metrics.queueDepth.set({ pipeline: this.name }, this.scheduler.depth);
    return written;
  }

  /** An unexpected error inside a stage: reported and counted; the caller turns it into dead letters. */
  private internal(stage: string, err: unknown): EdgeInferError {
    this.metrics.internalErrors.inc({ pipeline: this.name, stage });
    const e = new EdgeInferError('E_INTERNAL', `${this.name}: unexpected error in ${stage}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    this.onError(e);
    return e;
  }

  // ── devices ────────────────────────────────────────────────────────────────────────────

  /**
   * Lets go of devices silent for longer than the idle bound: their partial windows will not
   * complete, so the messages they held retire, and what the pipeline kept of them (alert state)
   * goes. Runs on a timer; returns the devices evicted.
   */
  sweep(nowMs = Date.now()): string[] {
    if (this.replayCursors || this.closing) return [];
    if (nowMs > this.resumePointsUntilMs) {
      this.windows.dropResumePoints();
      this.resumePointsUntilMs = Infinity;
    }
    const { devices, released } = this.windows.evictIdle(nowMs - this.idleMs);
    for (const k of released) this.ledger.release(k);
    for (const d of devices) this.delivery.alerts?.forget(d);
    for (const [node, ms] of this.rebirthAsked) if (nowMs - ms > REBIRTH_EVERY_MS) this.rebirthAsked.delete(node);
    if (devices.length) {
      this.metrics.evictedDevices.inc({ pipeline: this.name }, devices.length);
      this.metrics.devices.set({ pipeline: this.name }, this.windows.size);
      void this.committer.retireNow();
    }
    return devices;
  }

  // ── drain, close ───────────────────────────────────────────────────────────────────────

  /** Processes what is journaled, runs what is queued and waits until it is logged. */
  async drain(): Promise<void> {
    await this.intake.settled();
    await this.scheduler.drain();
    await this.committer.retireNow();
  }

  /** Stops processing (messages not yet processed stay journaled for the next start); runs and logs what is queued. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    // Closing the scheduler wakes the messages waiting for room; they find the pipeline closing.
    await this.scheduler.close();
    this.slot.close();
    this.devices.close();
    await this.intake.settled();
    await this.committer.retireNow();
  }
}
