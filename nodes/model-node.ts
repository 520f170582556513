// One node type per model: `edge-infer-<id>`. A node keeps a window per device, runs the model on
// every complete window (micro-batched across devices), commits the results (and alert changes)
// to its runtime's log, then sends one message per window on output 1 and each alert change on
// output 2, and only then calls done() for the message: a message done without an error has its
// results in SQLite. Status shows the backend, rate, latency, the last label and shed windows.
import type { ModelSession, WindowOutcome } from '../runtime/engine';
import { EdgeInferError, isEdgeInferError } from '../runtime/errors';
import { modelStaticOf } from '../runtime/serve';
import { DEFAULT_POLICY, type ModelCard, type VariantEntry, formatPolicy } from '../runtime/model';
import type { AlertRecord, Baselines, CommitUnit } from '../runtime/store';
import { type AlertPolicy, AlertTracker, alertRecord } from '../runtime/stream/alerts';
import { DeviceWindows, type ReadyWindow } from '../runtime/stream/device-windows';
import { isoTime, resultPayload, resultRecord, withThreshold } from '../runtime/stream/results';
import { Scheduler, type WindowResult } from '../runtime/stream/scheduler';
import { TEACH_IN_DEFAULTS, TeachIn, type TeachInSettings, type TeachInStatus } from '../runtime/teachin';
import type { ModelCatalog } from './catalog';
import { nodeTypeOf } from './help';
import { samplesFromPayload } from './payload';
import type { DoneFunction, Node, NodeMessage, RED, SendFunction } from './red';
import { type RuntimeResources, whyNotNative } from './resources';
import { type RuntimeNode, defaultResources } from './runtime-node';

interface ModelNodeConfig {
  name?: string;
  runtime?: string;
  /** A variant name or a policy (smallest-within:1, ...). */
  variant?: string;
  /** Overrides the card's threshold; '' keeps it. */
  threshold?: string | number;
  /** Message property holding the device id (default topic). */
  device?: string;
  /** Log results to the runtime's SQLite file (default true). */
  log?: boolean;
  /** Anomalous windows in a row before an alert ('' or absent: 3). */
  alertConsecutive?: string | number;
  /** Seconds of data time before the same device alerts again ('' or absent: 300). */
  alertCooldownS?: string | number;
  /** Normal windows in a row that clear an alert ('' or absent: as alertConsecutive). */
  alertClearAfter?: string | number;
  /** Teach-in: quantile of a device's healthy scores, margin above it, fewest windows ('' or absent: the defaults). */
  teachInQuantile?: string | number;
  teachInMargin?: string | number;
  teachInMinWindows?: string | number;
}

/** The node's teach-in settings; a field that is set but not a number is an error naming it (TeachIn checks the ranges). */
export function teachInSettingsOf(config: Pick<ModelNodeConfig, 'teachInQuantile' | 'teachInMargin' | 'teachInMinWindows'>): Partial<TeachInSettings> {
  const out: Partial<TeachInSettings> = {};
  for (const [field, key] of [['teachInQuantile', 'quantile'], ['teachInMargin', 'margin'], ['teachInMinWindows', 'minWindows']] as const) {
    const v = config[field];
    if (v === undefined || (typeof v === 'string' && v.trim() === '')) continue;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new EdgeInferError('E_ARGUMENT', `${field} must be a number, got '${String(v)}'`);
    out[key] = n;
  }
  if (out.minWindows !== undefined && out.minWindows > TEACH_IN_DEFAULTS.maxWindows) out.maxWindows = out.minWindows;
  return out;
}

/** A teach-in's progress in a few words, for the node's status. */
function teachInText(s: TeachInStatus): string {
  if (s.state === 'learning') {
    const l = s.learning!;
    return `teach-in ${s.device} ${l.windows}/${l.targetWindows ?? `${l.targetMinutes} min`}`;
  }
  return s.state === 'active' ? `${s.device} baseline ${Number(s.threshold).toPrecision(3)}` : `${s.device} no baseline`;
}

export const ALERT_DEFAULTS = { consecutive: 3, cooldownS: 300 } as const;

/** The node's alert settings; a field that is set but not a number is an error naming it. */
export function alertPolicyOf(config: Pick<ModelNodeConfig, 'alertConsecutive' | 'alertCooldownS' | 'alertClearAfter'>): AlertPolicy {
  const field = (name: string, v: string | number | undefined): number | undefined => {
    if (v === undefined || (typeof v === 'string' && v.trim() === '')) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new EdgeInferError('E_ARGUMENT', `${name} must be a number, got '${String(v)}'`);
    return n;
  };
  const consecutive = field('alertConsecutive', config.alertConsecutive) ?? ALERT_DEFAULTS.consecutive;
  const cooldownS = field('alertCooldownS', config.alertCooldownS) ?? ALERT_DEFAULTS.cooldownS;
  const clearAfter = field('alertClearAfter', config.alertClearAfter);
  // AlertTracker checks the ranges (whole numbers ≥ 1, a cooldown ≥ 0) and names the field.
  new AlertTracker({ consecutive, cooldownS, clearAfter });
  return clearAfter === undefined ? { consecutive, cooldownS } : { consecutive, cooldownS, clearAfter };
}

interface Waiting {
  msg: NodeMessage;
  send: SendFunction;
  done: DoneFunction;
  device: string;
  windows: number;
  error?: Error;
  /** Done was called early (the node closed first): later results are logged, not sent. */
  settled?: boolean;
}

/** How long a close may take before Node-RED is told it is done anyway. */
const CLOSE_WITHIN_MS = 800;

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * The session as the scheduler sees it: a run that fails as a whole (a closed session, a backend
 * error) fails each of its windows, so their messages still reach done(err); the scheduler
 * would otherwise only report the error and never deliver them.
 */
function failingPerWindow(session: ModelSession): ModelSession {
  const runWindows: ModelSession['runWindows'] = async (feeds) => {
    try {
      return await session.runWindows(feeds);
    } catch (err) {
      const error = err instanceof EdgeInferError ? err : new EdgeInferError('E_RUN', `${session.name}: ${asError(err).message}`, { cause: err });
      return feeds.map((): WindowOutcome => ({ ok: false, error }));
    }
  };
  return new Proxy(session, {
    get: (target, prop) => {
      if (prop === 'runWindows') return runWindows;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Registers the node type of one model of the catalog. */
export function registerModelNode(RED: RED, catalog: ModelCatalog, modelId: string): void {
  RED.nodes.registerType(nodeTypeOf(modelId), function (this: Node, config: ModelNodeConfig) {
    RED.nodes.createNode(this, config);
    const node = this;
    const runtimeNode = config.runtime ? (RED.nodes.getNode(config.runtime) as RuntimeNode | null) : null;
    const resources: RuntimeResources = runtimeNode?.resources ?? defaultResources(RED);
    resources.register(node);
    const deviceProperty = config.device?.trim() || 'topic';
    const policy = config.variant?.trim() || formatPolicy(DEFAULT_POLICY);

    let variant: VariantEntry | undefined;
    let card: ModelCard | undefined;
    let windows: DeviceWindows | undefined;
    let scheduler: Scheduler | undefined;
    let alerts: AlertTracker | undefined;
    /** Per-device baselines, in the runtime's log (none when this node does not log). */
    let teachIn: TeachIn | undefined;
    /** The teach-in that ended last, shown in the status until the next one starts. */
    let teachInEnded = '';
    let closed = false;
    /** Windows dropped because inference (or the log) could not keep up, since the deploy. */
    let shedTotal = 0;
    let backendText = '';
    const waiting = new Map<ReadyWindow, Waiting>();
    const stats = { windows: 0, totalMs: 0, last: '', anomaly: false, since: Date.now() };
    let recorded = 0;

    /**
     * The node's teach-in, made on first need: its baselines live in the runtime's log, which is
     * opened when it is first written (a redeploy's new runtime must not open it while the old one
     * still commits its windows in flight), and a log that cannot be opened must not stop results.
     */
    const teachInOf = (): TeachIn | undefined => {
      if (teachIn || config.log === false || !card) return teachIn;
      let baselines: Baselines | undefined;
      try {
        baselines = resources.log()?.baselines();
      } catch {
        return undefined; // the results' commit reports why the log cannot be written
      }
      if (!baselines) return undefined;
      const log = baselines;
      const served = card;
      teachIn = new TeachIn(log, {
        card: (m) => (m === served.id ? served : undefined),
        knows: (d, m) => log.hasResults(d, m),
        // The node's own alert rule: its baselines learn the scores that rule acts on.
        consecutive: () => alerts?.consecutive ?? alertPolicyOf(config).consecutive,
        ended: (s, row) => {
          teachInEnded = row.state === 'active' ? teachInText(s) : `teach-in ${s.device} failed`;
          if (row.state !== 'active') node.warn(`teach-in of ${s.device}: failed: ${row.reason}`);
        },
      }, teachInSettingsOf(config));
      return teachIn;
    };

    const deliver = async (results: WindowResult[]): Promise<void> => {
      const unit: CommitUnit = { results: [], alerts: [], windows: [] };
      // What each message sends once the unit is committed, in window order: [result, alert change].
      const outgoing = new Map<Waiting, Array<[NodeMessage, NodeMessage | null]>>();
      for (const { window: w, outcome } of results) {
        const owner = waiting.get(w);
        waiting.delete(w);
        if (!owner) continue;
        owner.windows--;
        if (!outgoing.has(owner)) outgoing.set(owner, []);
        // One window that cannot be read (interpret, send) fails its message, not the rest of the run.
        if (!outcome.ok) {
          owner.error ??= outcome.error;
          continue;
        }
        try {
          // The device's own threshold once its teach-in is active, as in the gateway.
          const judged = teachInOf()?.judgedCard(card!, w.device);
          const judgedCard = judged?.card ?? card!;
          const { record, probabilities } = resultRecord(judgedCard, variant!.variant, w, outcome, Date.now());
          const result = { ...owner.msg, payload: resultPayload(judgedCard, variant!.variant, record, probabilities, judged?.state) };
          teachIn?.learn(card!, record, w.features);
          stats.windows++;
          stats.totalMs += record.latencyMs;
          stats.last = record.label ?? record.score.toPrecision(3);
          stats.anomaly = record.anomaly;
          unit.results!.push(record);
          // Data time (the window's end), as in the gateway: a replayed or fast-forwarded stream
          // alerts as it would live. (Samples without a time are dated at receipt; the tracker's
          // clock for a device never runs back, so their overlapping windows hold a cooldown too.)
          const change = alerts!.observe(w.device, record.anomaly, record.timeMs);
          let alertMsg: NodeMessage | null = null;
          if (change) {
            const alert = alertRecord(judgedCard, variant!.variant, change, record, change.timeMs, record.processedMs);
            unit.alerts!.push(alert);
            alertMsg = { ...owner.msg, topic: owner.msg.topic, payload: { ...alert, change: change.kind, windows: change.windows, time: isoTime(alert.timeMs), processed: isoTime(alert.processedMs ?? Date.now()) } };
          }
          outgoing.get(owner)!.push([result, alertMsg]);
          if (resources.options.recordEvery > 0 && recorded++ % resources.options.recordEvery === 0) unit.windows!.push({ timeMs: record.timeMs, device: w.device, model: card!.id, features: w.features, dims: w.dims });
        } catch (err) {
          owner.error ??= err instanceof EdgeInferError ? err : new EdgeInferError('E_RUN', `${card!.id}: the result of a window of ${w.device} could not be read: ${asError(err).message}`, { cause: err });
        }
      }
      if (config.log !== false && unit.results!.length) {
        try {
          const log = resources.log();
          if (log) {
            await log.commit(unit);
            // Committed: browsers following the plant live may see it now.
            resources.dashboard?.committed(unit);
          }
        } catch (err) {
          // Each message whose windows were in the failed unit hears of it, so a Catch node can act.
          for (const owner of outgoing.keys()) {
            owner.error ??= new EdgeInferError(isEdgeInferError(err) && err.code !== 'E_ARGUMENT' ? err.code : 'E_STORE_WRITE', `${card!.id} (${variant!.variant}), device ${owner.device}: results not logged: ${resources.options.dbPath}: ${asError(err).message}`, { cause: err });
          }
        }
      }
      // Sent after the commit: whatever leaves this node is already in the log (or its message
      // fails with done(err)); a failed commit still sends, so the plant still sees its alerts.
      for (const [owner, messages] of outgoing) {
        if (!owner.settled) for (const pair of messages) owner.send(pair);
        if (owner.windows === 0) owner.done(owner.error);
      }
    };


    let session: ModelSession | undefined;
    const ready: Promise<void> = (async () => {
      alerts = new AlertTracker(alertPolicyOf(config));
      variant = catalog.pick(modelId, policy);
      card = withThreshold(variant.card, config.threshold !== undefined && config.threshold !== '' && Number.isFinite(Number(config.threshold)) ? Number(config.threshold) : undefined);
      // With the runtime's worker threads the windows carry their samples and the threads make the features.
      const pool = resources.workerPool((err) => node.warn(err.message));
      windows = new DeviceWindows(card, { deferFeatures: pool !== undefined });
      node.status({ fill: 'yellow', shape: 'ring', text: RED._('edge-infer.status.loading') });
      session = await resources.session(variant);
      if (pool) await pool.prepare(session);
      const why = whyNotNative(resources.options.backend, session.backend);
      backendText = session.backend;
      if (config.log !== false) resources.dashboard?.modelInUse(node, modelStaticOf({ pipeline: null, card, variant: variant.variant, bytes: variant.sizeBytes, backend: session.backend }));
      // Said once, in the log and the debug sidebar: a gateway that expected native should hear why not.
      if (why && resources.options.backend === 'auto') node.warn(`${modelId} ${variant.variant} runs on wasm: ${why}`);
      // Shed-oldest: Node-RED cannot pause its inputs, and a flow must never back up into its
      // memory. A delivery waits for its commit, so a slow log fills this queue too. Shed windows
      // fail their messages with done(err) and are counted in the status.
      // A run that fails as a whole (on the threads: one that killed its thread three times) fails
      // its windows' messages, so that each message still ends with done(err).
      scheduler = new Scheduler(failingPerWindow(session), card, deliver, { maxBatch: 32, maxWaitMs: 2, maxQueue: 1024, policy: 'shed-oldest', pool: pool && { pool, input: windows.featureInput } }, (err, failed) => {
        node.error(asError(err));
        for (const w of failed) {
          const o = waiting.get(w);
          waiting.delete(w);
          if (!o) continue;
          o.error ??= asError(err);
          if (--o.windows === 0) o.done(o.error);
        }
      });
      node.status({ fill: 'green', shape: 'dot', text: `${variant.variant} · ${backendText} · ${RED._('edge-infer.status.ready')}` });
    })();
    ready.catch((err: unknown) => node.status({ fill: 'red', shape: 'ring', text: asError(err).message.slice(0, 60) }));

    /** What the status adds about teach-ins: those learning, else the last that ended. */
    const teachInSuffix = (): string => {
      const learning = teachIn?.list().filter((t) => t.state === 'learning') ?? [];
      const text = learning.length ? learning.slice(0, 2).map(teachInText).join(', ') + (learning.length > 2 ? ` +${learning.length - 2}` : '') : teachInEnded;
      return text ? ` · ${text}` : '';
    };

    let showingRate = false;
    const ticker = setInterval(() => {
      if (!scheduler || closed) return;
      const seconds = (Date.now() - stats.since) / 1000;
      const rate = stats.windows / Math.max(1, seconds);
      const ms = stats.windows ? stats.totalMs / stats.windows : 0;
      const shed = shedTotal ? ` · ${shedTotal} ${RED._('edge-infer.status.shed')}` : '';
      if (stats.windows) {
        node.status({ fill: stats.anomaly ? 'red' : 'green', shape: shedTotal ? 'ring' : 'dot', text: `${backendText} · ${rate.toFixed(1)}/s · ${ms.toFixed(1)} ms · ${stats.last}${shed}${teachInSuffix()}` });
        showingRate = true;
      } else if (showingRate) {
        // No window this second: the last rate would be a lie.
        node.status({ fill: stats.anomaly ? 'red' : 'green', shape: 'ring', text: `${variant!.variant} · ${backendText} · ${RED._('edge-infer.status.idle')} · ${stats.last}${shed}${teachInSuffix()}` });
        showingRate = false;
      }
      stats.windows = 0;
      stats.totalMs = 0;
      stats.since = Date.now();
    }, 1000);
    ticker.unref();

    node.on('input', (msg, send, done) => {
      ready.then(
        () => {
          if (closed) return done();
          const device = String(RED.util.getMessageProperty(msg, deviceProperty) ?? msg.topic ?? 'default');
          // msg.teachIn = { action: 'start', windows | minutes } or { action: 'cancel' }: for this message's device.
          if (msg.teachIn !== undefined) return done(teachInCommand(device, msg.teachIn));
          const samples = samplesFromPayload(msg.payload, card!.input.channels.map((c) => c.name), device);
          const { windows: complete } = windows!.push(device, samples, String(msg._msgid ?? ''), Date.now());
          if (complete.length === 0) return done();
          const owner: Waiting = { msg, send, done, device, windows: complete.length };
          for (const w of complete) waiting.set(w, owner);
          const shed = scheduler!.submit(complete);
          for (const w of shed) {
            const o = waiting.get(w);
            waiting.delete(w);
            if (!o) continue;
            shedTotal++;
            o.error ??= new EdgeInferError('E_RUN', `${card!.id}: inference or the log could not keep up; a window of ${w.device} was dropped (${shedTotal} shed since the deploy)`);
            if (--o.windows === 0) o.done(o.error);
          }
        },
        (err: unknown) => done(asError(err)),
      ).catch((err: unknown) => done(asError(err)));
    });

    /** Starts or cancels the device's teach-in; the error to fail the message with, if any. */
    const teachInCommand = (device: string, command: unknown): Error | undefined => {
      try {
        const teachIn = teachInOf();
        if (!teachIn) throw new EdgeInferError('E_ARGUMENT', config.log === false ? `${modelId}: teach-in needs the runtime's log, and this node does not log` : `${modelId}: teach-in needs the runtime's log, which cannot be opened`);
        if (typeof command !== 'object' || command === null) throw new EdgeInferError('E_ARGUMENT', `msg.teachIn: expected { action: 'start', windows } or { action: 'cancel' }, got ${JSON.stringify(command)}`);
        const { action, windows, minutes } = command as { action?: unknown; windows?: unknown; minutes?: unknown };
        if (action === 'start') teachIn.start(device, card!.id, { windows, minutes }, `node-red:${node.id}`);
        else if (action === 'cancel') teachIn.cancel(device, card!.id);
        else throw new EdgeInferError('E_ARGUMENT', `msg.teachIn.action: expected 'start' or 'cancel', got ${JSON.stringify(action) ?? 'none'}`);
        teachInEnded = '';
        node.status({ fill: 'blue', shape: 'ring', text: `${variant!.variant} · ${backendText}${teachInSuffix() || ` · ${device} teach-in cancelled`}` });
        return undefined;
      } catch (err) {
        return asError(err);
      }
    };

    node.on('close', (_removed, done) => {
      closed = true;
      clearInterval(ticker);
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        // Messages whose windows have not run by now fail, so Complete and Catch nodes hear of
        // them; their windows still run and are logged, but nothing more is sent.
        for (const owner of new Set(waiting.values())) {
          if (owner.settled) continue;
          owner.settled = true;
          const ownerDone = owner.done;
          owner.send = () => undefined;
          owner.done = () => undefined;
          ownerDone(owner.error ?? new EdgeInferError('E_CANCELLED', `${modelId}: the node closed before ${owner.windows} window${owner.windows === 1 ? '' : 's'} of this message ran`));
        }
        done();
      };
      // Node-RED waits on every close; never longer than a moment, even with a stuck log.
      setTimeout(finish, CLOSE_WITHIN_MS).unref();
      (async () => {
        await ready.catch(() => undefined);
        await scheduler?.close().catch(() => undefined);
        resources.dashboard?.modelGone(node);
        if (variant) await resources.release(variant).catch(() => undefined);
        await resources.deregister(node).catch(() => undefined);
      })().then(finish, finish);
    });
  } as never);
}
