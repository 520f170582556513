// The dashboard's request handler: the page, its data routes and the live feed, behind the
// login rules. It does not depend on the gateway: the gateway's HTTP server hands it what is not
// /health or /metrics, and the Node-RED runtime mounts the same handler on its express app
// (req.url is then relative to the mount, which the page's relative URLs expect).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EdgeInferError } from '../errors';
import { type AlertWrites, DashboardApi, alertId } from './api';
import { type AuthMode, type AuthOptions, DashboardAuth, LOCAL_USER, SESSION_COOKIE, isLoopback, sessionToken } from './auth';
import type { SessionView, TeachInLastView, TeachInListView, TeachInView } from './dashboard-contract';
import { LiveFeed, type LiveFeedOptions } from './live';
import type { LogReader } from './log-reader';
import type { ModelStatic } from './model-views';
import { ApiFailure, readJson, securityHeaders, sendError, sendJson } from './respond';
import { PageFiles, defaultPageDir } from './static';

/** Teach-in per device (runtime/teachin), for the gateway; absent: api/teach-in answers 404. */
export interface TeachInAccess {
  start(device: string, model: string, target: unknown, by: string | null): TeachInView;
  cancel(device: string, model: string): TeachInView;
  status(device: string, model: string): TeachInView;
  list(): TeachInView[];
}

/** Per-device model variants (runtime/gateway device-models), for the gateway; absent: api/device-models answers 404. */
export interface DeviceModelAccess {
  set(device: unknown, model: unknown, folder: unknown): Promise<unknown>;
  clear(device: unknown, model: unknown): Promise<unknown>;
  list(): unknown[];
}

export interface DashboardOptions {
  /** The log, read on its own thread. The caller opened it and closes it. */
  reader: LogReader;
  /** Acknowledge and clear alerts in the log (the gateway: its ResultStore). */
  alerts: AlertWrites;
  /** The models in use now, as their cards and files say (see modelStaticOf). */
  models: () => readonly ModelStatic[];
  /** The gateway's /health answer; null inside Node-RED. */
  health?: (() => { ok: boolean } & Record<string, unknown>) | null;
  /**
   * Who may do what: the users and the address listened on (the gateway), or a function that names
   * the user of a request whose login its host has checked already (Node-RED; null: may only look).
   */
  auth: AuthOptions | ((req: IncomingMessage) => string | null);
  /** Where the page is served; the page shows it and adapts (framing, login). */
  host: 'gateway' | 'node-red';
  /** The built page's folder (default: dist/runtime/serve/page beside the compiled module). */
  pageDir?: string;
  /** Bounds of the live feed. */
  live?: LiveFeedOptions;
  /** The session cookie's Path: the page's base as the browser sees it (default '/'). */
  cookiePath?: string;
  /** The clock for "now" and acknowledgement times (tests). */
  now?: () => number;
  /** Teach-in: its status to whoever may look, start and cancel to a logged-in user (as acknowledging an alert). */
  teachIn?: TeachInAccess;
  /** A device's own model folder: the list to whoever may look, set and clear to a logged-in user. */
  deviceModels?: DeviceModelAccess;
}

export interface Dashboard {
  /** Answers a request that is the dashboard's and resolves true; false (nothing written) when it is not. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** What the log commits goes to the browsers through this (publish each committed unit). */
  readonly live: LiveFeed;
  /** open, login or closed (with an auth function: 'host', its host decides). */
  readonly mode: AuthMode | 'host';
  /** Ends the live streams. The reader is the caller's to close. */
  close(): void;
}

const CLOSED_MESSAGE =
  'this dashboard is reachable from the network and no users are configured: add http.users (user and passwordHash, from `edge-infer hash-password`) to the gateway config, or listen on 127.0.0.1';

/** Builds the handler. Throws E_ARGUMENT for bad options (a malformed password hash names its user). */
export function createDashboard(options: DashboardOptions): Dashboard {
  const o = options ?? ({} as DashboardOptions);
  if (!o.reader || typeof o.reader.query !== 'function') throw new EdgeInferError('E_ARGUMENT', 'dashboard: reader: expected an open LogReader');
  if (!o.alerts || typeof o.alerts.acknowledge !== 'function' || typeof o.alerts.clear !== 'function') throw new EdgeInferError('E_ARGUMENT', 'dashboard: alerts: expected { acknowledge(id, user, atMs), clear(id, user, atMs) }');
  if (typeof o.models !== 'function') throw new EdgeInferError('E_ARGUMENT', 'dashboard: models: expected a function giving the models in use');
  if (o.host !== 'gateway' && o.host !== 'node-red') throw new EdgeInferError('E_ARGUMENT', `dashboard: host: expected 'gateway' or 'node-red', got ${String(o.host)}`);
  if (o.auth === undefined || o.auth === null) throw new EdgeInferError('E_ARGUMENT', 'dashboard: auth: expected { users, listen } or a function naming the request\'s user');
  const auth = typeof o.auth === 'function' ? null : new DashboardAuth(o.auth);
  const userOfHost = typeof o.auth === 'function' ? o.auth : null;
  const live = new LiveFeed(o.live);
  const now = o.now ?? Date.now;
  const headers = securityHeaders(o.host);
  const page = new PageFiles(o.pageDir ?? defaultPageDir(), headers);
  const api = new DashboardApi({ reader: o.reader, alerts: o.alerts, models: o.models, health: o.health ?? null, live, now });
  const cookiePath = o.cookiePath ?? '/';
  const mode: AuthMode | 'host' = auth ? auth.mode : 'host';

  /** The request's user: its session's, 'local' on an open dashboard, or whom its host names. */
  const userOf = (req: IncomingMessage): string | null => {
    if (userOfHost) return userOfHost(req);
    if (auth!.mode === 'open') return LOCAL_USER;
    if (auth!.mode === 'login') return auth!.userOf(req, now());
    return null;
  };

  const sessionOf = (user: string | null): SessionView => ({ user: mode === 'open' ? null : user, loginRequired: mode === 'login', canAcknowledge: user !== null, host: o.host });

  const cookie = (value: string, maxAgeS: number): string => `${SESSION_COOKIE}=${value}; Path=${cookiePath}; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}`;

  async function routeApi(req: IncomingMessage, res: ServerResponse, name: string, query: URLSearchParams): Promise<void> {
    const method = req.method ?? 'GET';
    const get = method === 'GET' || method === 'HEAD';
    const post = method === 'POST';
    const allow = (want: 'GET' | 'POST'): void => {
      if (want === 'GET' ? !get : !post) throw new ApiFailure(405, `api/${name}: expected ${want}, got ${method}`, 'E_ARGUMENT');
    };
    if (name === 'session') {
      allow('GET');
      return sendJson(res, 200, sessionOf(userOf(req)), headers);
    }
    if (name === 'login') {
      allow('POST');
      const body = await readJson(req);
      if (!auth || auth.mode !== 'login') throw new ApiFailure(400, mode === 'host' ? 'login: this dashboard uses its host\'s login (Node-RED)' : 'login: this dashboard has no users to log in as', 'E_ARGUMENT');
      const r = await auth.login(body.user, body.password, req.socket.remoteAddress ?? 'unknown', now());
      if (!r.ok && r.retryAfterS > 0) throw new ApiFailure(429, `login: too many failed logins from this address; try again in ${r.retryAfterS} s`, undefined, r.retryAfterS);
      if (!r.ok) throw new ApiFailure(401, 'login: wrong user or password');
      return sendJson(res, 200, sessionOf(r.user), { ...headers, 'set-cookie': cookie(r.token, Math.round((r.expiresMs - now()) / 1000)) });
    }
    if (name === 'logout') {
      allow('POST');
      await readJson(req);
      auth?.logout(req);
      return sendJson(res, 200, sessionOf(auth?.mode === 'login' ? null : userOf(req)), sessionToken(req) ? { ...headers, 'set-cookie': cookie('', 0) } : headers);
    }
    // Everything else shows the plant: a login first, where logins are.
    const user = userOf(req);
    if (mode === 'login' && user === null) throw new ApiFailure(401, `api/${name}: log in first`);
    const alert = /^alerts\/([^/]+)\/(ack|clear)$/.exec(name);
    if (alert) {
      allow('POST');
      await readJson(req);
      if (user === null) throw new ApiFailure(401, `api/${name}: acknowledging and clearing alerts needs a logged-in user`);
      const id = alertId(alert[1]);
      return sendJson(res, 200, alert[2] === 'ack' ? await api.acknowledge(id, user) : await api.clear(id, user), headers);
    }
    if (name === 'teach-in' || name.startsWith('teach-in/')) return teachIn(req, res, name, query, user);
    if (name === 'device-models' || name.startsWith('device-models/')) return deviceModels(req, res, name, user);
    switch (name) {
      case 'overview':
        allow('GET');
        return sendJson(res, 200, await api.overview(), headers);
      case 'chart':
        allow('GET');
        return sendJson(res, 200, await api.chart(query), headers);
      case 'alerts':
        allow('GET');
        return sendJson(res, 200, await api.alerts(query), headers);
      case 'models':
        allow('GET');
        return sendJson(res, 200, await api.models(), headers);
      case 'health':
        allow('GET');
        return sendJson(res, 200, await api.health(), headers);
      case 'live':
        allow('GET');
        return api.live(req, res);
      default:
        throw new ApiFailure(404, `api/${name}: no such route`, 'E_NOT_FOUND');
    }
  }

  /**
   * api/teach-in (GET: all, or ?device=&model= one), api/teach-in/last (GET ?device=&model=: the
   * newest that ended, from the log), api/teach-in/start and api/teach-in/cancel (POST { device,
   * model, windows | minutes }). Starting and cancelling change how a device is judged, so they
   * need a logged-in user, as acknowledging an alert does.
   */
  async function teachIn(req: IncomingMessage, res: ServerResponse, name: string, query: URLSearchParams, user: string | null): Promise<void> {
    const t = o.teachIn;
    const method = req.method ?? 'GET';
    // The page asks for the list on every host: where there is no teach-in (Node-RED's nodes teach
    // through msg.teachIn) it is told so, not given a 404 a browser logs as a failed load.
    if (!t && name === 'teach-in' && (method === 'GET' || method === 'HEAD') && !query.has('device') && !query.has('model')) {
      return sendJson(res, 200, { teachIns: [], available: false } satisfies TeachInListView, headers);
    }
    if (!t) throw new ApiFailure(404, `api/${name}: teach-in is not available here`, 'E_NOT_FOUND');
    if (name === 'teach-in') {
      if (method !== 'GET' && method !== 'HEAD') throw new ApiFailure(405, `api/${name}: expected GET, got ${method}`, 'E_ARGUMENT');
      const device = query.get('device');
      const model = query.get('model');
      if (device === null && model === null) return sendJson(res, 200, { teachIns: t.list() }, headers);
      if (!device || !model) throw new ApiFailure(400, `api/${name}: expected both device and model, or neither`, 'E_ARGUMENT');
      return sendJson(res, 200, t.status(device, model), headers);
    }
    const action = name.slice('teach-in/'.length);
    if (action === 'last') {
      if (method !== 'GET' && method !== 'HEAD') throw new ApiFailure(405, `api/${name}: expected GET, got ${method}`, 'E_ARGUMENT');
      const device = query.get('device');
      const model = query.get('model');
      if (!device || !model) throw new ApiFailure(400, `api/${name}: expected device and model`, 'E_ARGUMENT');
      return sendJson(res, 200, { last: await o.reader.query('lastTeachIn', device, model) } satisfies TeachInLastView, headers);
    }
    if (action !== 'start' && action !== 'cancel') throw new ApiFailure(404, `api/${name}: no such route (teach-in/start, teach-in/cancel, teach-in/last)`, 'E_NOT_FOUND');
    if (method !== 'POST') throw new ApiFailure(405, `api/${name}: expected POST, got ${method}`, 'E_ARGUMENT');
    const body = await readJson(req);
    if (user === null) throw new ApiFailure(401, `api/${name}: starting and cancelling a teach-in needs a logged-in user`);
    const device = body.device;
    const model = body.model;
    if (typeof device !== 'string' || device === '') throw new ApiFailure(400, `device: expected a name, got ${JSON.stringify(device) ?? 'none'}`, 'E_ARGUMENT');
    if (typeof model !== 'string' || model === '') throw new ApiFailure(400, `model: expected a name, got ${JSON.stringify(model) ?? 'none'}`, 'E_ARGUMENT');
    const status = action === 'start' ? t.start(device, model, { windows: body.windows, minutes: body.minutes }, user) : t.cancel(device, model);
    return sendJson(res, 200, status, headers);
  }

  /**
   * api/device-models (GET: every device given a model of its own), api/device-models/set
   * (POST { device, model, folder }) and api/device-models/clear (POST { device, model }). Setting
   * and clearing change what judges a device, so they need a logged-in user, as a teach-in does.
   */
  async function deviceModels(req: IncomingMessage, res: ServerResponse, name: string, user: string | null): Promise<void> {
    const d = o.deviceModels;
    if (!d) throw new ApiFailure(404, `api/${name}: device models are not available here`, 'E_NOT_FOUND');
    const method = req.method ?? 'GET';
    if (name === 'device-models') {
      if (method !== 'GET' && method !== 'HEAD') throw new ApiFailure(405, `api/${name}: expected GET, got ${method}`, 'E_ARGUMENT');
      return sendJson(res, 200, { deviceModels: d.list() }, headers);
    }
    const action = name.slice('device-models/'.length);
    if (action !== 'set' && action !== 'clear') throw new ApiFailure(404, `api/${name}: no such route (device-models/set, device-models/clear)`, 'E_NOT_FOUND');
    if (method !== 'POST') throw new ApiFailure(405, `api/${name}: expected POST, got ${method}`, 'E_ARGUMENT');
    const body = await readJson(req);
    if (user === null) throw new ApiFailure(401, `api/${name}: setting and clearing a device's model needs a logged-in user`);
    const status = action === 'set' ? await d.set(body.device, body.model, body.folder) : await d.clear(body.device, body.model);
    return sendJson(res, 200, status, headers);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    let pathname = q < 0 ? raw : raw.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    // The gateway serves the page at / and at /dashboard: the same names under both.
    if (o.host === 'gateway' && (pathname === '/dashboard' || pathname.startsWith('/dashboard/'))) pathname = pathname.slice('/dashboard'.length) || '/';
    const isApi = pathname.startsWith('/api/');
    try {
      if (!pathname.startsWith('/')) return false;
      // An open dashboard answers only to this machine's names: a site that points its own name
      // at 127.0.0.1 (DNS rebinding) is not the same origin as the page, and gets nothing.
      if (mode === 'open' && !isLoopback(hostName(req.headers.host ?? ''))) throw new ApiFailure(403, `host '${(req.headers.host ?? '').slice(0, 80)}': this dashboard answers only to this machine's names (127.0.0.1, localhost)`);
      if (mode === 'closed') {
        if (isApi) throw new ApiFailure(403, CLOSED_MESSAGE);
        res.writeHead(403, { ...headers, 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(closedPage());
        return true;
      }
      if (isApi) {
        await routeApi(req, res, pathname.slice('/api/'.length), query);
        return true;
      }
      const method = req.method ?? 'GET';
      if (pathname === '/' || pathname === '/index.html') {
        if (method !== 'GET' && method !== 'HEAD') throw new ApiFailure(405, `${pathname}: expected GET, got ${method}`);
        // Mounted (express), `/edge-infer` arrives as '/': the page's relative URLs need the
        // slash, or `api/overview` would resolve beside the mount instead of under it.
        const mounted = (req as { originalUrl?: unknown }).originalUrl;
        if (typeof mounted === 'string' && pathname === '/') {
          const outer = mounted.split('?')[0];
          if (!outer.endsWith('/')) {
            res.writeHead(301, { ...headers, location: `${outer.slice(outer.lastIndexOf('/') + 1)}/${q < 0 ? '' : raw.slice(q)}` }).end();
            return true;
          }
        }
        await page.index(req, res);
        return true;
      }
      if (method !== 'GET' && method !== 'HEAD') return false;
      return await page.asset(req, res, pathname.slice(1));
    } catch (err) {
      sendError(res, err, headers);
      return true;
    }
  }

  return {
    handle,
    live,
    mode,
    close: () => live.close(),
  };
}

/** The host name of a Host header, without its port. */
function hostName(host: string): string {
  const v6 = /^\[([^\]]*)\](:\d+)?$/.exec(host);
  if (v6) return v6[1];
  return host.replace(/:\d+$/, '');
}

function closedPage(): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>edge-infer dashboard: login not configured</title></head><body><h1>The dashboard is not open to the network without a login</h1><p>${CLOSED_MESSAGE.replace(/`([^`]+)`/g, '<code>$1</code>')}.</p><p>/health and /metrics still answer.</p></body></html>\n`;
}
