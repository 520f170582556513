// The dashboard inside Node-RED: the handler the gateway serves (createDashboard), mounted on
// RED.httpNode at <httpNodeRoot>/edge-infer/, so Node-RED's own httpNodeAuth guards it. Each
// edge-infer runtime that logs has a dashboard of its log: a reader on its own thread (opened at
// the first request), a live feed the model nodes publish each committed unit to, and the models
// its nodes run. `/edge-infer/` shows the runtime logging to <userDir>/edge-infer.db (the example
// flows' runtime, and the default one); `/edge-infer/runtime/<config node id>/` any runtime.
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as path from 'node:path';
import { EdgeInferError } from '../runtime/errors';
import { type Dashboard, LogReader, type ModelStatic, createDashboard } from '../runtime/serve';
import type { CommitUnit } from '../runtime/store';
import type { RED } from './red';
import type { RuntimeResources } from './resources';

/** Where the dashboard is mounted under httpNodeRoot. */
export const DASHBOARD_MOUNT = '/edge-infer';

/** The id the default runtime (of model nodes that name none) has in `runtime/<id>/`. */
export const DEFAULT_RUNTIME_ID = 'default';

/** Who acknowledges: Node-RED's authenticated user, when its httpNodeAuth names one. */
export type UserOf = (req: IncomingMessage) => string;

/**
 * The request's user: one a custom httpNodeAuth middleware put on the request, else the user of
 * httpNodeAuth's basic auth (Node-RED has checked the password before any httpNode route runs),
 * else 'node-red' (httpNode routes are as open as Node-RED makes them).
 */
export function userOfRequest(settings: Record<string, unknown>): UserOf {
  const auth = settings.httpNodeAuth as { user?: unknown } | undefined;
  const basic = auth && typeof auth === 'object' && !Array.isArray(auth) && typeof auth.user === 'string' && auth.user !== '' ? auth.user : undefined;
  return (req) => {
    const user = (req as { user?: { username?: unknown } }).user;
    return typeof user?.username === 'string' && user.username !== '' ? user.username : (basic ?? 'node-red');
  };
}

/** A runtime's dashboard: its log's reader and live feed, and the models its nodes run. */
export class RuntimeDashboard {
  private readonly models = new Map<object, ModelStatic>();
  private opening: Promise<Dashboard> | undefined;
  private reader: LogReader | undefined;
  private dashboard: Dashboard | undefined;
  private closed = false;

  constructor(
    private readonly resources: RuntimeResources,
    private readonly userOf: UserOf,
  ) {
    if (!resources.options.dbPath) throw new EdgeInferError('E_ARGUMENT', 'dashboard: this edge-infer runtime logs nowhere (its log is off), so there is nothing to show');
  }

  /** The log it reads. */
  get logPath(): string {
    return this.resources.options.dbPath;
  }

  /** Worker threads of its reader (for the tests of redeploys). */
  get readerThreads(): number {
    return this.reader?.threads ?? 0;
  }

  /** A model node that logs to this runtime's log runs this model (until `modelGone`). */
  modelInUse(user: object, model: ModelStatic): void {
    this.models.set(user, model);
  }

  modelGone(user: object): void {
    this.models.delete(user);
  }

  /** The models in use, one per variant. */
  modelsInUse(): ModelStatic[] {
    const seen = new Map<string, ModelStatic>();
    for (const m of this.models.values()) seen.set(`${m.model}\u0000${m.variant}`, m);
    return [...seen.values()];
  }

  /** A unit the log has committed: to the browsers following the plant live. */
  committed(unit: CommitUnit): void {
    if (unit.results?.length || unit.alerts?.length) this.dashboard?.live.publish(unit);
  }

  /** Answers a request under the mount (req.url relative to it); false when it is not the dashboard's. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    return (await this.open()).handle(req, res);
  }

  private open(): Promise<Dashboard> {
    if (this.closed) return Promise.reject(new EdgeInferError('E_STORE_CLOSED', `${this.logPath}: the edge-infer runtime is closed`));
    if (this.opening) return this.opening;
    const opening = (async (): Promise<Dashboard> => {
      // The log is made at the first commit; a dashboard opened before shows it empty rather
      // than fail. The runtime's writer makes it (and closes it with the runtime).
      if (!existsSync(this.logPath)) this.resources.log();
      const reader = await LogReader.open({ path: this.logPath });
      if (this.closed) {
        await reader.close();
        throw new EdgeInferError('E_STORE_CLOSED', `${this.logPath}: the edge-infer runtime closed while its dashboard opened`);
      }
      this.reader = reader;
      const store = (): NonNullable<ReturnType<RuntimeResources['log']>> => {
        const log = this.resources.log();
        if (!log) throw new EdgeInferError('E_STORE_CLOSED', `${this.logPath}: the edge-infer runtime logs nowhere`);
        return log;
      };
      this.dashboard = createDashboard({
        reader,
        alerts: { acknowledge: (id, user, atMs) => store().acknowledgeAlert(id, user, atMs), clear: (id, user, atMs) => store().clearAlert(id, user, atMs) },
        models: () => this.modelsInUse(),
        health: null,
        auth: (req) => this.userOf(req),
        host: 'node-red',
      });
      return this.dashboard;
    })();
    this.opening = opening;
    // A failed open (the file unreadable now) is tried again at the next request.
    opening.catch(() => {
      if (this.opening === opening) this.opening = undefined;
    });
    return opening;
  }

  /** Ends the live streams and stops the reader's thread; later requests are refused. */
  async close(): Promise<void> {
    this.closed = true;
    await this.opening?.catch(() => undefined);
    this.dashboard?.close();
    this.dashboard = undefined;
    await this.reader?.close();
    this.reader = undefined;
  }
}

/** The runtimes deployed now that have a dashboard, by config node id (DEFAULT_RUNTIME_ID: the default runtime), in deploy order. */
const runtimes = new Map<string, RuntimeDashboard>();

export function dashboardDeployed(id: string, dashboard: RuntimeDashboard): void {
  runtimes.set(id, dashboard);
}

export function dashboardRemoved(id: string, dashboard: RuntimeDashboard): void {
  if (runtimes.get(id) === dashboard) runtimes.delete(id);
}

/** The dashboards deployed now, by runtime id. */
export function deployedDashboards(): ReadonlyMap<string, RuntimeDashboard> {
  return runtimes;
}

/**
 * The runtime `/edge-infer/` shows: one logging to the default log (a config node before the
 * default runtime), else the only one there is; undefined when there are none or several elsewhere.
 */
function mainDashboard(defaultLog: string): RuntimeDashboard | undefined {
  const all = [...runtimes.entries()];
  const onDefault = all.filter(([, d]) => path.resolve(d.logPath) === path.resolve(defaultLog)).sort(([a], [b]) => Number(a === DEFAULT_RUNTIME_ID) - Number(b === DEFAULT_RUNTIME_ID));
  if (onDefault.length) return onDefault[0]![1];
  return all.length === 1 ? all[0]![1] : undefined;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** What `/edge-infer/` answers when it shows no runtime: the dashboards there are, or why none. */
function noMainDashboard(req: IncomingMessage, res: ServerResponse, defaultLog: string): void {
  const list = [...runtimes.entries()];
  const why = list.length === 0 ? 'no edge-infer runtime that logs is deployed: deploy a flow with an edge-infer model node that logs' : `no edge-infer runtime logs to ${defaultLog}; pick one: ${list.map(([id, d]) => `runtime/${id}/ (${d.logPath})`).join(', ')}`;
  const pathname = (req.url ?? '/').split('?')[0]!;
  if (pathname.startsWith('/api/')) {
    res.writeHead(404, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify({ error: why, code: 'E_NOT_FOUND' }));
    return;
  }
  const links = list.map(([id, d]) => `<li><a href="runtime/${encodeURIComponent(id)}/">${escapeHtml(id)}</a>: ${escapeHtml(d.logPath)}</li>`).join('');
  res.writeHead(404, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>edge-infer dashboard</title></head><body><h1>edge-infer dashboard</h1><p>${escapeHtml(why)}.</p>${links ? `<ul>${links}</ul>` : ''}</body></html>\n`);
}

/** Mounts the dashboards at <httpNodeRoot>/edge-infer/ (and /edge-infer/runtime/<id>/). */
export function registerDashboard(RED: RED, defaultLog: string): void {
  RED.httpNode.use(DASHBOARD_MOUNT, (req, res, next) => {
    const url = req.url ?? '/';
    const picked = /^\/runtime\/([^/?]+)(.*)$/.exec(url);
    let dashboard: RuntimeDashboard | undefined;
    if (picked) {
      dashboard = runtimes.get(decodeURIComponent(picked[1]!));
      if (!dashboard) return next();
      // The dashboard sees URLs relative to its own base, as a mount would give them.
      req.url = picked[2] || '/';
      if (!req.url.startsWith('/')) req.url = `/${req.url}`;
    } else {
      dashboard = mainDashboard(defaultLog);
      if (!dashboard) return noMainDashboard(req, res, defaultLog);
    }
    dashboard.handle(req, res).then(
      (handled) => {
        if (!handled) next();
      },
      (err: unknown) => {
        if (res.headersSent) return res.destroy();
        res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify({ error: `edge-infer dashboard: ${err instanceof Error ? err.message : String(err)}`, code: (err as { code?: string }).code }));
      },
    );
  });
}
