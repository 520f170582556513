// The standalone gateway: broker connection, pipelines, the SQLite log, the outbox publisher and
// the HTTP endpoints, started and stopped as one.
import { EventEmitter } from 'node:events';
// sparkplug-payload ships no types; encodePayload takes a plain payload object.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const sparkplug = (require('sparkplug-payload') as { get(version: string): { encodePayload(p: object): Uint8Array } }).get('spBv1.0');
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Server } from 'node:http';
import { ModelSession } from '../engine';
import { EdgeInferError, isEdgeInferError } from '../errors';
import { HotSwap } from '../hotswap';
import { ModelRegistry, type VariantEntry } from '../model';
import { count } from '../issues';
import { Problems, type ProblemWords, clockText, durationText } from '../problems';
import { loadOptionsFor } from '../quant';
import { type Dashboard, LogReader, type ModelStatic, createDashboard, modelStaticOf } from '../serve';
import { type HttpEndpoints, startHttp } from '../serve/http';
import { GatewayMetrics } from '../serve/metrics';
import { type CommitUnit, ResultStore } from '../store';
import { startEmbeddedBroker } from '../stream/embedded-broker';
import { DeviceWindows } from '../stream/device-windows';
import { type InboundPacket, MessageIdentity } from '../stream/identity';
import { MqttSource, type Subscription } from '../stream/mqtt-source';
import { Pipeline } from '../stream/pipeline';
import { withThreshold } from '../stream/results';
import { TeachIn } from '../teachin';
import { OutboxPublisher } from '../stream/publisher';
import { WorkerPool, defaultWorkers } from '../stream/pool';
import { type GatewayConfig, logWriting } from './config';
import { DeviceModelManager, type DeviceModelStatus } from './device-models';

/** How long a stop waits for the pipelines' last commits before it gives them up. */
const STOP_COMMITS_WITHIN_MS = 10_000;

export interface GatewayOptions {
  /** Where the config came from (its file): errors about a field name it, as config errors do. */
  source?: string;
  /** Least time between two reports of a problem that lasts (a broker away), ms (default 5 minutes). */
  remindEveryMs?: number;
}

/** A subscription as /health lists it: granted in this run, remembered from an earlier one's SUBSCRIBE. */
export interface HealthSubscription {
  filter: string;
  /** The QoS granted (128 and up: refused). */
  qos: number;
  /** Granted at an earlier run's SUBSCRIBE, kept by the broker's session since (this run subscribed to nothing). */
  remembered?: true;
  /** When a remembered grant was made (ISO time). */
  grantedAt?: string;
}

/** How a broker that cannot be reached is reported: once, a reminder while it lasts, and its end. */
function brokerAway(url: string): ProblemWords {
  return {
    code: 'E_BROKER',
    began: (err) => `broker ${url} unreachable (${err.message}); retrying`,
    lasting: (p) => `broker ${url} still unreachable after ${durationText(p.forMs)} (since ${clockText(p.sinceMs)}), ${count(p.count, 'failed attempt')}; last: ${p.last.message}`,
    ended: (p) => `broker ${url} reachable again after ${durationText(p.forMs)} down (since ${clockText(p.sinceMs)}), ${count(p.count, 'failed attempt')}`,
  };
}

/**
 * How messages that cannot be journaled (the log locked or full) are reported: each one's handler
 * fails, and each dropped connection brings them again, for as long as it lasts.
 */
const JOURNAL_FAILING: ProblemWords = {
  code: 'E_STORE_WRITE',
  lasting: (p) => `messages still cannot be journaled after ${durationText(p.forMs)} (since ${clockText(p.sinceMs)}), ${count(p.count, 'failure')}; last: ${p.last.message}`,
  ended: (p) => `messages are journaled again after ${durationText(p.forMs)} (since ${clockText(p.sinceMs)}), ${count(p.count, 'failure')}`,
};

/** What makes two connection failures the same cause: the socket's or the CONNACK's code. */
function causeOf(err: Error): string {
  const code = (err as { code?: unknown }).code;
  return code === undefined ? err.message : String(code);
}

/**
 * Emits 'logged' with each committed unit that holds results or alerts (for consoles and
 * dashboards that follow the plant live).
 */
export class Gateway extends EventEmitter {
  readonly metrics = new GatewayMetrics();
  private store: ResultStore | undefined;
  private registry: ModelRegistry | undefined;
  private source: MqttSource | undefined;
  /** Which message each inbound packet is, and whether it can be a redelivery (identity.ts). */
  private identity: MessageIdentity | undefined;
  private publisher: OutboxPublisher | undefined;
  /** Model hot-swap (config modelUpdates), when configured. */
  private hotSwap: HotSwap | undefined;
  private http: Server | undefined;
  /** The dashboard's reads of the log, on their own thread. */
  private reader: LogReader | undefined;
  private dashboard: Dashboard | undefined;
  /** Per-device baselines (runtime/teachin); undefined before start. */
  teachIn: TeachIn | undefined;
  /** Per-device model variants (device-models.ts); undefined before start. */
  private deviceModelManager: DeviceModelManager | undefined;
  private broker: { url: string; close(): Promise<void> } | undefined;
  private readonly sessions: ModelSession[] = [];
  /** Feature transforms and inference off the main thread (config workers > 0). */
  private workerPool: WorkerPool | undefined;
  readonly pipelines: Pipeline[] = [];

  /** The worker threads' pool, when the config asks for one. */
  get workers(): WorkerPool | undefined {
    return this.workerPool;
  }
  private readonly otherPartitionCounters = new Map<Pipeline, { inc(): void }>();
  private stopping: Promise<void> | undefined;
  private started = false;
  /** Sparkplug edge nodes to ask for a rebirth once connected (asked during the replay, or while away). */
  private readonly rebirths = new Map<string, { group: string; edgeNode: string }>();
  /** Where the broker is (the embedded one's URL when it runs inside). */
  brokerUrl = '';
  /** Port the HTTP endpoints listen on. */
  httpPort = 0;
  /** Problems that repeat (a broker away), reported once, then at their end. */
  private readonly problems: Problems;

  constructor(
    readonly config: GatewayConfig,
    private readonly report: (err: unknown) => void = (err) => process.emitWarning(err instanceof Error ? err : new Error(String(err))),
    private readonly options: GatewayOptions = {},
  ) {
    super();
    this.problems = new Problems((err) => this.report(err), { remindEveryMs: options.remindEveryMs });
  }

  /** A problem with pipeline i's settings, named like a config error: file, field, what is wrong. */
  private pipelineError(i: number, field: string | undefined, err: unknown): EdgeInferError {
    const where = `${this.options.source ?? 'config'}: pipelines[${i}]${field ? `.${field}` : ''}`;
    const message = err instanceof Error ? err.message : String(err);
    return new EdgeInferError(isEdgeInferError(err) ? err.code : 'E_ARGUMENT', `${where}: ${message}`, { cause: err });
  }

  /**
   * Starts everything: the models first (a config naming a model, variant or window that does not
   * fit fails before a log is created), then the log and the replay of messages a previous run
   * journaled but did not finish, then the broker connection, then HTTP.
   */
  async start(): Promise<void> {
    if (this.started) throw new EdgeInferError('E_ARGUMENT', 'the gateway is already started');
    this.started = true;
    const c = this.config;
    try {
      const registry = await ModelRegistry.open(c.models, { watch: false });
      this.registry = registry;
      for (const broken of registry.errors()) this.report(broken.error);
      const variants = c.pipelines.map((p, i) => {
        try {
          registry.get(p.model);
        } catch (err) {
          throw this.pipelineError(i, 'model', err);
        }
        let variant: VariantEntry;
        try {
          variant = registry.pick(p.model, p.variant);
        } catch (err) {
          throw this.pipelineError(i, 'variant', err);
        }
        try {
          // Window and hop against the model, also before the log is created.
          new DeviceWindows(variant.card, { window: p.window, hop: p.hop, maxGapS: p.maxGapS });
        } catch (err) {
          throw this.pipelineError(i, undefined, err);
        }
        return variant;
      });
      for (const [i, p] of c.pipelines.entries()) {
        const variant = variants[i];
        try {
          this.sessions.push(await ModelSession.load(variant.file, { backend: c.engine.backend, threads: c.engine.threads, name: `${p.name} (${variant.id} ${variant.variant})`, ...loadOptionsFor(variant.precision, c.engine.weights) }));
        } catch (err) {
          throw this.pipelineError(i, 'model', err);
        }
      }
      // Inbound keys recognise redeliveries, which only a persistent session makes, and only
      // while the broker keeps it: they are kept that long, not as long as the log's rows.
      const redeliveries = c.broker.persistentSession && (c.broker.protocol === 4 || c.broker.embedded !== undefined || c.broker.sessionExpiryS > 0);
      const writing = logWriting(c);
      const retention = redeliveries ? { ...c.storage.retention, inboundMaxAgeS: Math.max(c.broker.sessionExpiryS, 1) } : c.storage.retention;
      // A commit that fails is tried again by the log (nothing later passes it): reported here.
      this.store = ResultStore.open({ path: c.storage.path, sync: c.storage.sync, ...writing.store, retention, outboxLimit: c.storage.outboxLimit, onError: (err) => this.report(err) });
      const store = this.store;
      this.metrics.depths = () => (this.stopping ? undefined : { outbox: store.outboxDepth(), journal: store.journalDepth() });
      this.metrics.commits = () => ({ ...store.stats, commits: store.stats.commits + store.journalStats.commits });
      this.reader = await LogReader.open({ path: c.storage.path });
      const workers = c.workers === 'auto' ? defaultWorkers() : c.workers;
      if (workers > 0) {
        const pool = new WorkerPool({ size: workers, onError: (err) => this.report(err) });
        this.workerPool = pool;
        // Every thread loads the models before the first message comes.
        for (const [i, s] of this.sessions.entries()) {
          try {
            const windows = new DeviceWindows(variants[i].card, { window: c.pipelines[i].window, hop: c.pipelines[i].hop });
            const maxBatch = (c.pipelines[i].scheduler ?? c.scheduler).maxBatch;
            await pool.prepare(s, { input: windows.featureInput, dims: windows.dims, windows: maxBatch });
          } catch (err) {
            throw this.pipelineError(i, 'model', err);
          }
        }
      }
      // Teach-in: the cards the devices are judged by without a baseline (with a pipeline's override).
      const cards = new Map(c.pipelines.map((p, i) => [variants[i].id, withThreshold(variants[i].card, p.alerts?.threshold)]));
      // The K of each model's alert rule: its teach-ins learn the scores that rule acts on.
      const consecutive = new Map(c.pipelines.map((p, i) => [variants[i].id, p.alerts.consecutive]));
      const baselines = store.baselines();
      this.teachIn = new TeachIn(baselines, {
        card: (model) => cards.get(model),
        knows: (device, model) => baselines.hasResults(device, model),
        consecutive: (model) => consecutive.get(model) ?? 1,
        ended: (s, row) => this.report(new EdgeInferError('E_ARGUMENT', row.state === 'active' ? `teach-in of ${s.device} (${s.model}): active, threshold ${s.threshold} from ${row.windows} healthy windows (the card's: ${s.cardThreshold})` : `teach-in of ${s.device} (${s.model}): failed: ${row.reason}`)),
      }, c.teachIn);
      const teachIn = this.teachIn;
      for (const [i, p] of c.pipelines.entries()) {
        try {
          const pipeline = new Pipeline(
            { ...p, recordEvery: p.recordEvery ?? writing.recordEvery, scheduler: { ...(p.scheduler ?? c.scheduler), maxDelivering: writing.maxDelivering }, inboundKeys: redeliveries, workers: this.workerPool, teachIn, maxDeviceVariants: c.deviceModels.max },
            variants[i],
            this.sessions[i],
            this.store,
            this.metrics,
            (unit) => this.afterCommit(unit),
            (err) => this.report(err),
            (group, edgeNode) => this.requestRebirth(group, edgeNode),
          );
          this.pipelines.push(pipeline);
        } catch (err) {
          // window, hop or scheduler settings the model cannot take
          throw this.pipelineError(i, undefined, err);
        }
      }
      // Devices given models of their own are served them again before the replay: the windows a
      // previous run journaled run on the variant that would have served them.
      const engine = c.engine;
      this.deviceModelManager = new DeviceModelManager({
        pipelines: this.pipelines,
        store,
        policyOf: (p) => c.pipelines[this.pipelines.indexOf(p)].variant,
        load: (entry, p, device) => ModelSession.load(entry.file, { backend: engine.backend, threads: engine.threads, name: `${p.name} (${entry.id} ${entry.variant} of ${device})`, ...loadOptionsFor(entry.precision, engine.weights) }),
        healthBatches: c.deviceModels.healthBatches,
        report: (err) => this.report(err),
      });
      await this.deviceModelManager.restore();
      const deviceModels = this.deviceModelManager;
      for (const p of this.pipelines) {
        const n = await p.replay();
        const skipped = p.replaySkipped ? ` (${p.replaySkipped} window(s) not logged again: the log had them)` : '';
        if (n) this.report(new EdgeInferError('E_ARGUMENT', `${p.name}: replayed ${n} message(s) journaled before the last stop${skipped}`));
      }

      if (c.broker.embedded) {
        this.broker = await startEmbeddedBroker({ port: c.broker.embedded.port, host: c.broker.embedded.host });
        this.brokerUrl = this.broker.url;
      } else {
        this.brokerUrl = c.broker.url;
      }
      const tls = c.broker.tls;
      const source = new MqttSource({
        url: this.brokerUrl,
        // The embedded aedes broker speaks MQTT 3.1.1 only.
        protocolVersion: c.broker.embedded ? 4 : c.broker.protocol,
        clientId: c.broker.clientId,
        username: c.broker.username,
        password: c.broker.password,
        ca: tls?.ca ? readFileSync(tls.ca) : undefined,
        cert: tls?.cert ? readFileSync(tls.cert) : undefined,
        key: tls?.key ? readFileSync(tls.key) : undefined,
        rejectUnauthorized: tls?.rejectUnauthorized,
        persistentSession: c.broker.persistentSession,
        sessionExpiryS: c.broker.sessionExpiryS,
        keepaliveS: c.broker.keepaliveS,
        reconnectMs: c.broker.reconnectMs,
        // MQTT 5: the broker sends no more unacknowledged messages than the queues can take,
        // so a paused gateway holds a bounded number of them in memory.
        receiveMaximum: Math.min(65_535, Math.max(...this.pipelines.map((p) => p.scheduler.maxQueue))),
        incoming: this.store.incoming(c.broker.clientId),
        grants: this.store.grants(c.broker.clientId),
        // Partitioned: the other gateways' messages are dropped on arrival, before mqtt.js parses them.
        drops: this.pipelines.some((p) => p.spec.partition) ? (topic, messageId) => this.dropsEarly(topic, messageId) : undefined,
      });
      this.source = source;
      const identity = new MessageIdentity(this.store.deliveries(c.broker.clientId));
      this.identity = identity;
      // Before any message of the connection is handled: a broker without our session starts a new epoch.
      source.on('session', (present: boolean) => identity.session(present));
      // The broker read these acknowledgements: their packet ids may carry new messages now.
      source.on('acknowledged', (packets: object[]) => identity.acknowledged(packets));
      source.on('state', (state: string) => {
        this.metrics.brokerConnected.set(state === 'connected' ? 1 : 0);
        if (state === 'connected') {
          this.problems.cleared('broker');
          this.publisher?.kick();
          this.sendRebirths();
        }
      });
      source.on('broker-error', (err: unknown) => this.report(err));
      // While the journal cannot be written every message fails, and the connection is dropped so
      // that the broker brings them again: one problem until a message is journaled again.
      source.on('handler-error', (err: unknown) => {
        if (isEdgeInferError(err, 'E_STORE_WRITE')) this.problems.occurred('journal', err, JOURNAL_FAILING, err.code);
        // Stopping, the 'sd' profile lets go of the messages still held (samples in partial
        // windows): unacknowledged, the broker brings them again at the next start. Not a problem.
        else if (this.stopping && isEdgeInferError(err, 'E_STORE_CLOSED')) return;
        else this.report(err);
      });
      source.on('dropped', (err: EdgeInferError) => this.problems.occurred('journal', err, JOURNAL_FAILING, err.code));
      this.publisher = new OutboxPublisher(this.store, source, {}, {
        published: (n) => this.metrics.published.inc(n),
        refused: (code) => this.metrics.publishRefused.inc({ reason_code: `0x${code.toString(16).padStart(2, '0')}` }),
      });
      // ── hot-swap ── updates from MQTT and the models directory (runtime/hotswap)
      if (c.modelUpdates) {
        const engine = c.engine;
        this.hotSwap = new HotSwap({
          config: c.modelUpdates,
          modelsDir: c.models,
          stagingDir: c.modelUpdates.staging ?? path.join(path.dirname(path.resolve(c.storage.path)), 'model-updates'),
          pipelines: this.pipelines,
          store,
          load: (entry, p) => ModelSession.load(entry.file, { backend: engine.backend, threads: engine.threads, name: `${p.name} (${entry.id} ${entry.variant})`, ...loadOptionsFor(entry.precision, engine.weights) }),
          publish: (message) => store.commit({ outbox: [message] }).then(() => this.publisher?.kick()),
          report: (err) => this.report(err),
        });
        await this.hotSwap.start();
      }
      // ── end hot-swap ──
      // One subscription per filter, at the highest QoS any of its pipelines asks for.
      const subscriptions: Subscription[] = [];
      for (const p of this.pipelines) {
        const s = subscriptions.find((x) => x.filter === p.pattern.filter);
        if (!s) subscriptions.push({ filter: p.pattern.filter, qos: p.spec.qos });
        else s.qos = Math.max(s.qos, p.spec.qos) as 0 | 1 | 2;
      }
      if (this.hotSwap?.filter && c.modelUpdates) subscriptions.push({ filter: this.hotSwap.filter, qos: c.modelUpdates.qos });
      await source.start(subscriptions, (_topic, _payload, packet) => this.route(packet), () => this.backPressure());
      // Every retry while the broker is away fails alike: one problem, not a line per attempt. A
      // broker away at start is one too: the gateway has started and keeps connecting.
      const away = brokerAway(this.brokerUrl);
      source.on('connection-error', (err: Error) => this.problems.occurred('broker', err, away, causeOf(err)));
      if (source.state === 'connected') {
        this.metrics.brokerConnected.set(1);
        this.sendRebirths();
      } else if (source.lastError) {
        this.problems.occurred('broker', source.lastError, away, causeOf(source.lastError));
      }
      this.publisher.start();

      // Built again when a pipeline's variant changes (a hot-swap): the dashboard shows what serves.
      let models: ModelStatic[] = [];
      let serving: unknown[] = [];
      const modelsNow = (): ModelStatic[] => {
        if (serving.length === this.pipelines.length && this.pipelines.every((p, i) => p.variant === serving[i])) return models;
        serving = this.pipelines.map((p) => p.variant);
        // The variant's own card (precision, agreement), the pipeline's output (an operator's threshold).
        models = this.pipelines.map((p): ModelStatic => modelStaticOf({ pipeline: p.name, card: { ...p.variant.card, output: p.card.output }, variant: p.variant.variant, bytes: p.variant.sizeBytes, backend: p.session.backend }));
        return models;
      };
      this.dashboard = createDashboard({
        reader: this.reader,
        alerts: { acknowledge: (id, user, atMs) => store.acknowledgeAlert(id, user, atMs), clear: (id, user, atMs) => store.clearAlert(id, user, atMs) },
        models: modelsNow,
        health: () => this.health(),
        auth: { users: c.http.users, listen: c.http.host },
        host: 'gateway',
        deviceModels: {
          set: (device, model, folder) => deviceModels.set(device, model, folder),
          clear: (device, model) => deviceModels.clear(device, model),
          list: () => deviceModels.list(),
        },
        teachIn: {
          start: (device, model, target, by) => teachIn.start(device, model, target, by),
          cancel: (device, model) => teachIn.cancel(device, model),
          status: (device, model) => teachIn.status(device, model),
          list: () => teachIn.list(),
        },
      });
      const dashboard = this.dashboard;
      const endpoints: HttpEndpoints = { health: () => this.health(), metrics: () => this.metrics.text(), metricsContentType: this.metrics.contentType, dashboard: (req, res) => dashboard.handle(req, res) };
      const { server, port } = await startHttp(c.http.port, c.http.host, endpoints);
      this.http = server;
      this.httpPort = port;
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Sparkplug B: NCMD 'Node Control/Rebirth' = true, so the node publishes its births again.
   * Asked before the broker connection is up (the replay), it is sent once it is.
   */
  private requestRebirth(group: string, edgeNode: string): void {
    this.rebirths.set(`${group}/${edgeNode}`, { group, edgeNode });
    this.sendRebirths();
  }

  private sendRebirths(): void {
    const source = this.source;
    if (!source?.connected) return;
    for (const { group, edgeNode } of this.rebirths.values()) {
      const payload = sparkplug.encodePayload({ timestamp: Date.now(), metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: true }] });
      source.publish(`spBv1.0/${group}/NCMD/${edgeNode}`, Buffer.from(payload), 0).catch((err: unknown) => this.report(err));
    }
    this.rebirths.clear();
  }

  /**
   * Hands a message to every pipeline whose topic it matches and that takes its device, with its
   * identity: its key, and whether it can be a redelivery (only then do the pipelines look the
   * key up in the log). Resolves (and the broker gets its acknowledgement) once every pipeline
   * has journaled it and its packet id's record is on disk.
   */
  private async route(packet: InboundPacket): Promise<void> {
    const { topic, qos } = packet;
    // A model update: acknowledged once staged on disk (or refused); checked and swapped after.
    if (this.hotSwap?.matches(topic)) {
      const bytes = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      // Not a pipeline's message: the packet id lets go of the message it carried before (identity.ts).
      const passed = this.identity!.pass(packet, Date.now());
      await this.hotSwap.receive(topic, bytes);
      await passed;
      return;
    }
    const receivedMs = Date.now();
    // A device another gateway owns, for every pipeline here: dropped before its identity (a
    // hash of the whole payload) or anything else is computed, and acknowledged. (Most are
    // dropped earlier, on arrival: see dropsEarly.)
    const wanting = this.takers(topic, true);
    if (!wanting) return this.identity!.pass(packet, receivedMs);
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : Buffer.from(packet.payload.buffer, packet.payload.byteOffset, packet.payload.byteLength);
    const id = this.identity!.identify(packet, receivedMs);
    const intake = (async () => {
      // A redelivery of a message still being journaled: its fate (journaled or failed) decides.
      if (id.earlier) await id.earlier.catch(() => undefined);
      const message = { topic, payload, qos, redelivered: id.redelivered, receivedMs, key: id.key };
      // Every pipeline that takes the message journals it in the same group commit as the record.
      await Promise.all([id.recorded, ...wanting.map((p) => p.accept(message))]);
    })();
    if (qos > 0) this.identity!.intake(packet, intake);
    await intake;
    // Something was written: the journal takes messages again.
    if (qos > 0 || wanting.length > 0) this.problems.cleared('journal');
  }

  /**
   * The pipelines that take a message on this topic (none: it is dropped), the one decision of
   * route() and of the drop on arrival. With `count`, each pipeline the topic matches that does
   * not take it counts the message as another partition's.
   */
  private takers(topic: string, count: boolean): Pipeline[] | undefined {
    let wanting: Pipeline[] | undefined;
    for (const p of this.pipelines) {
      if (!p.matches(topic)) continue;
      if (p.wants(topic)) (wanting ??= []).push(p);
      else if (count) this.otherPartition(p).inc();
    }
    return wanting;
  }

  /**
   * The acknowledgement gate asks this for each inbound QoS 0/1 PUBLISH, before mqtt.js parses it:
   * true drops it there (acknowledged, counted as another partition's, nothing else). A packet id
   * that still carries a message of ours goes the long way, so that route() lets it go (pass).
   */
  private dropsEarly(topic: string, messageId: number | undefined): boolean {
    if (messageId !== undefined && this.identity?.carries(messageId) !== false) return false;
    if (this.hotSwap?.matches(topic)) return false;
    if (this.takers(topic, false)) return false;
    // No pipeline takes it: each that matches counts it as another partition's.
    for (const p of this.pipelines) if (p.matches(topic)) this.otherPartition(p).inc();
    return true;
  }

  /** The pipeline's counter of messages of other partitions, labelled once (it runs per message). */
  private otherPartition(p: Pipeline): { inc(): void } {
    let c = this.otherPartitionCounters.get(p);
    if (!c) this.otherPartitionCounters.set(p, (c = this.metrics.otherPartition.labels({ pipeline: p.name })));
    return c;
  }

  /** Under the 'pause' policy, a full queue stops the broker connection from reading until it has room. */
  private backPressure(): Promise<void> | undefined {
    const full = this.pipelines.filter((p) => p.spec.scheduler.policy === 'pause' && p.full);
    return full.length ? Promise.all(full.map((p) => p.readable())).then(() => undefined) : undefined;
  }

  private afterCommit(unit: CommitUnit): void {
    this.publisher?.kick();
    if (unit.results?.length || unit.alerts?.length) {
      this.dashboard?.live.publish(unit);
      this.emit('logged', unit);
    }
  }

  /**
   * Serves `device`'s windows of `model` from its own model folder (the registry's layout: the
   * fine-tune's output), once the folder passes the checks; logged, and served again after a
   * restart. Rejects with one line when anything is wrong, and nothing changes.
   */
  setDeviceModel(device: string, model: string, folder: string): Promise<DeviceModelStatus> {
    if (!this.deviceModelManager) return Promise.reject(new EdgeInferError('E_ARGUMENT', 'device-model set: the gateway is not running'));
    return this.deviceModelManager.set(device, model, folder);
  }

  /** Serves `device` from the shared variant of `model` again. */
  clearDeviceModel(device: string, model: string): Promise<DeviceModelStatus> {
    if (!this.deviceModelManager) return Promise.reject(new EdgeInferError('E_ARGUMENT', 'device-model clear: the gateway is not running'));
    return this.deviceModelManager.clear(device, model);
  }

  /** Every device given a model of its own, with its state (active, rolled-back, cleared). */
  deviceModels(): DeviceModelStatus[] {
    if (!this.deviceModelManager) throw new EdgeInferError('E_ARGUMENT', 'device-model list: the gateway is not running');
    return this.deviceModelManager.list();
  }

  /** Where a browser on this machine opens the dashboard (http://host:port/); '' before start. */
  get dashboardUrl(): string {
    if (!this.http) return '';
    const host = this.config.http.host;
    // The wildcard addresses are no place to browse to: this machine's loopback is.
    const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
    return `http://${shown}:${this.httpPort}/`;
  }

  /** What /health answers: ok while the log is open and takes messages and results, and the broker is connected. */
  health(): {
    ok: boolean;
    broker: string;
    /** Since when the broker has been in that state (connected, or not), ISO time. */
    brokerSince: string | null;
    /** While the broker is not connected: why the last attempt failed, or null. */
    brokerError: string | null;
    subscriptions: HealthSubscription[];
    pipelines: Array<{ name: string; model: string; variant: string; queue: number; devices: number }>;
    outbox: number;
    journal: number;
    /** Since when commits fail (ISO time), or null. */
    commitsFailingSince: string | null;
    /** Since when messages cannot be journaled (ISO time), or null: no window completes then, so no commit fails to say so. */
    journalFailingSince: string | null;
  } {
    const source = this.source;
    const broker = source?.state ?? 'disconnected';
    const failingSince = this.store?.stats.failingSinceMs ?? null;
    const journalFailingSince = this.journalFailingSince;
    return {
      ok: broker === 'connected' && this.store !== undefined && failingSince === null && journalFailingSince === null,
      broker,
      brokerSince: source ? new Date(source.stateSinceMs).toISOString() : null,
      brokerError: broker !== 'connected' ? (source?.lastError?.message ?? null) : null,
      subscriptions: source ? subscriptionsOf(source) : [],
      pipelines: this.pipelines.map((p) => ({ name: p.name, model: p.card.id, variant: p.variant.variant, queue: p.scheduler.depth, devices: p.windows.size })),
      outbox: this.store?.outboxDepth() ?? 0,
      journal: this.store?.journalDepth() ?? 0,
      commitsFailingSince: failingSince === null ? null : new Date(failingSince).toISOString(),
      journalFailingSince,
    };
  }

  /**
   * Since when messages cannot be journaled (the log locked or full), ISO time, or null: until a
   * message is journaled again (for the watchdog; commits of results are in health()).
   */
  get journalFailingSince(): string | null {
    const p = this.problems.get('journal');
    return p ? new Date(p.sinceMs).toISOString() : null;
  }

  /** The log (for the dashboard and the tests). */
  get log(): ResultStore {
    if (!this.store) throw new EdgeInferError('E_STORE_CLOSED', 'the gateway is not running');
    return this.store;
  }

  /**
   * Stops taking messages, runs and logs what is queued, stops publishing, closes the log.
   * Messages not yet journaled stay with the broker (persistent session).
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.source?.stop();
      await this.hotSwap?.close();
      this.deviceModelManager?.close();
      // Pipelines run and log what is queued; while the log cannot commit (a full disk, a lock held
      // elsewhere) that would wait without end, so after a bound the log closes, the units still
      // held back are given up (their messages stay journaled for the next start), and the rest
      // of the stop goes on.
      // The last commits go at once, not after a long batch interval (the 'sd' profile's second).
      this.store?.hurry();
      const closed = Promise.all(this.pipelines.map((p) => p.close().catch((err) => this.report(err))));
      let bound: NodeJS.Timeout | undefined;
      const inTime = await Promise.race([closed.then(() => true), new Promise<boolean>((resolve) => (bound = setTimeout(() => resolve(false), STOP_COMMITS_WITHIN_MS)))]);
      clearTimeout(bound);
      if (!inTime) {
        this.report(new EdgeInferError('E_STORE_WRITE', `the log still cannot commit after ${STOP_COMMITS_WITHIN_MS / 1000} s: stopping without it; the messages not logged stay journaled for the next start`));
        await this.publisher?.stop();
        await this.store?.close({ waitForLock: false });
        await closed;
      }
      // A swap on probation ended with its pipeline; its last status goes out before the publisher stops.
      await this.hotSwap?.settled();
      await this.publisher?.stop();
      // Live streams end first: a browser's open stream would keep the server from closing.
      this.dashboard?.close();
      await new Promise<void>((resolve) => {
        if (!this.http) return resolve();
        this.http.close(() => resolve());
        // close() waits for open keep-alive connections (a dashboard, a scraper): end them now.
        this.http.closeAllConnections();
      });
      await this.reader?.close();
      await this.broker?.close();
      for (const s of this.sessions) await s.dispose();
      // Variants swapped in since the start (dispose is idempotent: the first ones are among them).
      for (const p of this.pipelines) for (const s of [...p.slot.sessions(), ...p.devices.sessions()]) await s.dispose();
      await this.workerPool?.close();
      await this.registry?.close();
      // A learning teach-in's windows not yet grouped: written now rather than lost with the stop.
      try {
        if (inTime) this.teachIn?.recorder.flush();
      } catch (err) {
        this.report(err instanceof EdgeInferError ? err : new EdgeInferError('E_STORE_WRITE', `teach-in windows not written at stop: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
      }
      await this.store?.close();
    })();
    return this.stopping;
  }
}

/**
 * The subscriptions the broker's session holds: this run's grants, and the grants of an earlier
 * run's SUBSCRIBE that the session kept (a restart that found its session subscribes to nothing).
 */
function subscriptionsOf(source: MqttSource): HealthSubscription[] {
  const now = [...source.granted].map(([filter, qos]): HealthSubscription => ({ filter, qos }));
  const earlier = [...source.remembered.values()]
    .filter((g) => !source.granted.has(g.filter))
    .map((g): HealthSubscription => ({ filter: g.filter, qos: g.granted, remembered: true, grantedAt: new Date(g.grantedMs).toISOString() }));
  return [...now, ...earlier];
}
