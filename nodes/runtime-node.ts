// The `edge-infer-runtime` config node: the engine settings and the SQLite log that model nodes
// share. Without one, model nodes share a default runtime (auto backend, log in the user dir).
import * as path from 'node:path';
import type { BackendChoice } from '../runtime/engine';
import type { WeightLoading } from '../runtime/quant';
import { DEFAULT_RUNTIME_ID, RuntimeDashboard, dashboardDeployed, dashboardRemoved, userOfRequest } from './dashboard';
import type { Node, RED } from './red';
import { defaultWorkers } from '../runtime/stream/pool';
import { RuntimeResources } from './resources';

export const RUNTIME_TYPE = 'edge-infer-runtime';

/**
 * How long the runtime waits at close for its model nodes to run what they hold, log it and
 * leave. Node-RED closes them all at once, and every close must be done within a second (model
 * nodes give up on their windows after 800 ms).
 */
export const RUNTIME_CLOSE_WITHIN_MS = 900;

const DEFAULT_RETENTION_DAYS = 30;

interface RuntimeConfig {
  name?: string;
  backend?: BackendChoice;
  threads?: number | string;
  weights?: WeightLoading;
  dbPath?: string;
  retentionDays?: number | string;
  recordEvery?: number | string;
  /** Worker threads: a number (0: none) or 'auto'. */
  workers?: number | string;
  log?: boolean;
}

export interface RuntimeNode extends Node {
  resources: RuntimeResources;
}

export function defaultDb(RED: RED): string {
  return path.join(RED.settings.userDir ?? process.cwd(), 'edge-infer.db');
}

function numberOr(v: number | string | undefined, fallback: number): number {
  const n = typeof v === 'string' ? (v.trim() === '' ? Number.NaN : Number(v)) : v;
  return n !== undefined && Number.isFinite(n) ? n : fallback;
}

/** Threads from the dialog: 'auto' (cores but one), a whole number 0–64; anything else warns and is 0. */
function workersOf(node: Node, v: number | string | undefined): number {
  if (v === undefined || v === '') return 0;
  if (typeof v === 'string' && v.trim() === 'auto') return defaultWorkers();
  const n = typeof v === 'string' ? Number(v) : v;
  if (Number.isInteger(n) && n >= 0 && n <= 64) return n;
  node.warn(`workers must be auto or a whole number of threads from 0 to 64, got ${String(v)}; running in Node-RED's thread`);
  return 0;
}

let fallback: RuntimeResources | undefined;

/** The default runtime of model nodes that name none. */
export function defaultResources(RED: RED): RuntimeResources {
  if (!fallback) {
    fallback = new RuntimeResources({ backend: 'auto', threads: 1, weights: 'fast', dbPath: defaultDb(RED), retentionDays: DEFAULT_RETENTION_DAYS, recordEvery: 20 });
    // It lives as long as Node-RED, and so does its dashboard (one reader thread at most).
    fallback.dashboard = new RuntimeDashboard(fallback, userOfRequest(RED.settings));
    dashboardDeployed(DEFAULT_RUNTIME_ID, fallback.dashboard);
  }
  return fallback;
}

export function registerRuntimeNode(RED: RED): void {
  RED.nodes.registerType(RUNTIME_TYPE, function (this: RuntimeNode, config: RuntimeConfig) {
    RED.nodes.createNode(this, config);
    let retentionDays = numberOr(config.retentionDays, DEFAULT_RETENTION_DAYS);
    if (retentionDays <= 0) {
      // The log refuses an age limit of zero or less at every open; one bad field must not cost every result.
      this.warn(`retentionDays must be more than 0, got ${String(config.retentionDays)}; keeping ${DEFAULT_RETENTION_DAYS} days`);
      retentionDays = DEFAULT_RETENTION_DAYS;
    }
    this.resources = new RuntimeResources({
      backend: config.backend ?? 'auto',
      threads: Math.max(1, Math.round(numberOr(config.threads, 1))),
      weights: config.weights ?? 'fast',
      dbPath: config.log === false ? '' : config.dbPath?.trim() || defaultDb(RED),
      retentionDays,
      recordEvery: Math.max(0, Math.round(numberOr(config.recordEvery, 20))),
      workers: workersOf(this, config.workers),
    });
    const dashboard = this.resources.options.dbPath ? new RuntimeDashboard(this.resources, userOfRequest(RED.settings)) : undefined;
    this.resources.dashboard = dashboard;
    if (dashboard) dashboardDeployed(this.id, dashboard);
    this.on('close', (_removed, done) => {
      // No request reaches it from now on; shutdown closes its reader and live feed.
      if (dashboard) dashboardRemoved(this.id, dashboard);
      // Node-RED closes the model nodes at the same time as this one: wait for them to run and
      // log what they hold and to leave, then close for good (no session or log opens after).
      this.resources.shutdown(RUNTIME_CLOSE_WITHIN_MS).then(() => done(), () => done());
    });
  } as never);
}
