// One node type per model: `edge-infer-<id>`. A node keeps a window per device, runs the model on
// every complete window (micro-batched across devices), sends one message per window, logs the
// results through its runtime, and shows rate, latency and the last label in its status.
import type { ModelSession, WindowOutcome } from '../runtime/engine';
import { EdgeInferError } from '../runtime/errors';
import { DEFAULT_POLICY, type ModelCard, type VariantEntry, formatPolicy } from '../runtime/model';
import type { CommitUnit } from '../runtime/store';
import { DeviceWindows, type ReadyWindow } from '../runtime/stream/device-windows';
import { resultPayload, resultRecord, withThreshold } from '../runtime/stream/results';
import { Scheduler, type WindowResult } from '../runtime/stream/scheduler';
import type { ModelCatalog } from './catalog';
import { nodeTypeOf } from './help';
import { samplesFromPayload } from './payload';
import type { DoneFunction, Node, NodeMessage, RED, SendFunction } from './red';
import type { RuntimeResources } from './resources';
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
}

interface Waiting {
  msg: NodeMessage;
  send: SendFunction;
  done: DoneFunction;
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
    let closed = false;
    const waiting = new Map<ReadyWindow, Waiting>();
    const stats = { windows: 0, totalMs: 0, last: '', anomaly: false, since: Date.now() };
    let recorded = 0;

    const deliver = async (results: WindowResult[]): Promise<void> => {
      const unit: CommitUnit = { results: [], alerts: [], windows: [] };
      for (const { window: w, outcome } of results) {
        const owner = waiting.get(w);
        waiting.delete(w);
        if (!owner) continue;
        owner.windows--;
        // One window that cannot be read (interpret, send) fails its message, not the rest of the run.
        if (!outcome.ok) {
          owner.error ??= outcome.error;
        } else try {
          const { record, probabilities } = resultRecord(card!, variant!.variant, w, outcome, Date.now());
          owner.send({ ...owner.msg, payload: resultPayload(card!, variant!.variant, record, probabilities) });
          stats.windows++;
          stats.totalMs += record.latencyMs;
          stats.last = record.label ?? record.score.toPrecision(3);
          stats.anomaly = record.anomaly;
          unit.results!.push(record);
          if (record.anomaly) {
            unit.alerts!.push({ timeMs: record.timeMs, device: w.device, model: card!.id, variant: variant!.variant, kind: card!.task === 'classification' ? 'fault' : 'anomaly', label: record.label, score: record.score, threshold: card!.output.threshold ?? null, message: `${w.device}: ${card!.title} reports ${record.label ?? 'an anomaly'}` });
          }
          if (resources.options.recordEvery > 0 && recorded++ % resources.options.recordEvery === 0) unit.windows!.push({ timeMs: record.timeMs, device: w.device, model: card!.id, features: w.features, dims: w.dims });
        } catch (err) {
          owner.error ??= err instanceof EdgeInferError ? err : new EdgeInferError('E_RUN', `${card!.id}: the result of a window of ${w.device} could not be read: ${asError(err).message}`, { cause: err });
        }
        if (owner.windows === 0) owner.done(owner.error);
      }
      if (config.log !== false && unit.results!.length) {
        try {
          await resources.log()?.commit(unit);
        } catch (err) {
          node.error(new EdgeInferError('E_STORE_WRITE', `results not logged: ${asError(err).message}`));
        }
      }
    };

    let session: ModelSession | undefined;
    const ready: Promise<void> = (async () => {
      variant = catalog.pick(modelId, policy);
      card = withThreshold(variant.card, config.threshold !== undefined && config.threshold !== '' && Number.isFinite(Number(config.threshold)) ? Number(config.threshold) : undefined);
      windows = new DeviceWindows(card);
      node.status({ fill: 'yellow', shape: 'ring', text: RED._('edge-infer.status.loading') });
      session = await resources.session(variant);
      // Shed-oldest: a flow must never back up into Node-RED's memory; shed windows fail their messages.
      scheduler = new Scheduler(failingPerWindow(session), card, deliver, { maxBatch: 32, maxWaitMs: 2, maxQueue: 1024, policy: 'shed-oldest' }, (err) => node.error(asError(err)));
      node.status({ fill: 'green', shape: 'dot', text: `${variant.variant} · ${RED._('edge-infer.status.ready')}` });
    })();
    ready.catch((err: unknown) => node.status({ fill: 'red', shape: 'ring', text: asError(err).message.slice(0, 60) }));

    let showingRate = false;
    const ticker = setInterval(() => {
      if (!scheduler || closed) return;
      const seconds = (Date.now() - stats.since) / 1000;
      const rate = stats.windows / Math.max(1, seconds);
      const ms = stats.windows ? stats.totalMs / stats.windows : 0;
      if (stats.windows) {
        node.status({ fill: stats.anomaly ? 'red' : 'green', shape: 'dot', text: `${rate.toFixed(1)}/s · ${ms.toFixed(1)} ms · ${stats.last}` });
        showingRate = true;
      } else if (showingRate) {
        // No window this second: the last rate would be a lie.
        node.status({ fill: stats.anomaly ? 'red' : 'green', shape: 'ring', text: `${variant!.variant} · ${RED._('edge-infer.status.idle')} · ${stats.last}` });
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
          const samples = samplesFromPayload(msg.payload, card!.input.channels.map((c) => c.name), device);
          const { windows: complete } = windows!.push(device, samples, String(msg._msgid ?? ''), Date.now());
          if (complete.length === 0) return done();
          const owner: Waiting = { msg, send, done, windows: complete.length };
          for (const w of complete) waiting.set(w, owner);
          const shed = scheduler!.submit(complete);
          for (const w of shed) {
            const o = waiting.get(w);
            waiting.delete(w);
            if (!o) continue;
            o.error ??= new EdgeInferError('E_RUN', `${card!.id}: inference could not keep up; a window of ${w.device} was dropped`);
            if (--o.windows === 0) o.done(o.error);
          }
        },
        (err: unknown) => done(asError(err)),
      ).catch((err: unknown) => done(asError(err)));
    });

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
        if (variant) await resources.release(variant).catch(() => undefined);
        await resources.deregister(node).catch(() => undefined);
      })().then(finish, finish);
    });
  } as never);
}
