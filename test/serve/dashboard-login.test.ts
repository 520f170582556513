// Logins on the dashboard, over real HTTP on a real log: with users, nothing of the plant shows
// and nothing is acknowledged without a session; a bcrypt hash from bcryptjs and a scrypt hash
// from `edge-infer hash-password` both log in; wrong passwords are 401 and the sixth in a row
// 429; the cookie keeps to the page (HttpOnly, SameSite=Strict); logout ends the session. Bound
// to the network without users the dashboard refuses (403); inside Node-RED its host names the user.
import { spawnSync } from 'node:child_process';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AlertView, AlertsView, ApiError, SessionView } from '../../runtime/serve/dashboard-contract';
import { packageRoot } from '../../runtime/paths';
import { createDashboard } from '../../runtime/serve/dashboard';
import { LogReader } from '../../runtime/serve/log-reader';
import { ResultStore } from '../../runtime/store';
import { alert, result } from '../store/helpers';
import { type Served, cookieOf, pageFolder, request, serveDashboard, tempDir } from './dashboard-helpers';

const T0 = 1_700_000_000_000;

/** What `edge-infer hash-password` prints for a password piped to it. */
function hashFromCli(password: string): string {
  const r = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(packageRoot(), 'test', 'helpers', 'edge-infer-main.ts'), 'hash-password'], { input: `${password}\n`, encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout.trim();
}

let scryptHash: string;
let bcryptHash: string;
beforeAll(() => {
  scryptHash = hashFromCli('s3cret scrypt');
  bcryptHash = bcrypt.hashSync('s3cret bcrypt', 4);
});

let store: ResultStore;
let served: Served | undefined;
let alertId: number;

beforeEach(async () => {
  store = ResultStore.open({ path: path.join(tempDir(), 'log.db'), batchMs: 1 });
  await store.commit({ results: [result(T0, { device: 'press-1' })], alerts: [alert(T0, { device: 'press-1', kind: 'anomaly' })] });
  alertId = store.alerts()[0].id;
});

afterEach(async () => {
  await served?.close();
  served = undefined;
  await store.close();
});

async function withUsers(): Promise<Served> {
  served = await serveDashboard(store, { auth: { listen: '0.0.0.0', users: [{ user: 'alice', passwordHash: scryptHash }, { user: 'bob', passwordHash: bcryptHash }] } });
  return served;
}

const login = (s: Served, user: string, password: string) => request(s.port, 'POST', '/api/login', { body: { user, password } });

describe('a dashboard with users', () => {
  it('should ask for a login and show nothing of the plant without one (the page itself loads)', async () => {
    const s = await withUsers();
    const session = await request(s.port, 'GET', '/api/session');
    expect(session.json<SessionView>()).toEqual({ user: null, loginRequired: true, canAcknowledge: false, host: 'gateway' });
    for (const p of ['/api/overview', '/api/alerts', `/api/chart?device=press-1&model=vibration-anomaly&from=${T0}&to=${T0}&points=1`, '/api/models', '/api/health', '/api/live']) {
      const a = await request(s.port, 'GET', p);
      expect(a.status, p).toBe(401);
      expect(a.json<ApiError>().error).toMatch(/log in first$/);
    }
    expect((await request(s.port, 'GET', '/')).status).toBe(200);
  });

  it('should log in with a scrypt hash from `edge-infer hash-password` and with a bcrypt hash from bcryptjs', async () => {
    const s = await withUsers();
    expect(scryptHash).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    for (const [user, password] of [['alice', 's3cret scrypt'], ['bob', 's3cret bcrypt']]) {
      const a = await login(s, user, password);
      expect(a.status, user).toBe(200);
      expect(a.json<SessionView>()).toEqual({ user, loginRequired: true, canAcknowledge: true, host: 'gateway' });
      const again = await request(s.port, 'GET', '/api/session', { headers: { cookie: cookieOf(a) } });
      expect(again.json<SessionView>().user).toBe(user);
    }
  });

  it('should set the session cookie HttpOnly, SameSite=Strict, on the page\'s path, for 12 h', async () => {
    const s = await withUsers();
    const set = (await login(s, 'alice', 's3cret scrypt')).headers['set-cookie']![0];
    expect(set).toMatch(/^edge_infer_session=[A-Za-z0-9_-]{43}; /);
    expect(set.split('; ').slice(1).sort()).toEqual(['HttpOnly', 'Max-Age=43200', 'Path=/', 'SameSite=Strict']);
  });

  it('should answer 401 to a wrong password or an unknown user, alike', async () => {
    const s = await withUsers();
    const wrong = await login(s, 'alice', 'guess');
    expect(wrong.status).toBe(401);
    expect(wrong.json()).toEqual({ error: 'login: wrong user or password' });
    expect(wrong.headers['set-cookie']).toBeUndefined();
    expect((await login(s, 'mallory', 's3cret scrypt')).json()).toEqual({ error: 'login: wrong user or password' });
    expect((await login(s, 'alice', '')).status).toBe(401);
  });

  it('should answer 429 with Retry-After at the sixth wrong login in a row, even with the right password then', async () => {
    const s = await withUsers();
    for (let i = 0; i < 5; i++) expect((await login(s, 'alice', `guess ${i}`)).status).toBe(401);
    const sixth = await login(s, 'alice', 'guess 6');
    expect(sixth.status).toBe(429);
    expect(Number(sixth.headers['retry-after'])).toBeGreaterThan(0);
    expect(sixth.json<ApiError>().error).toMatch(/^login: too many failed logins from this address; try again in \d+ s$/);
    expect((await login(s, 'alice', 's3cret scrypt')).status).toBe(429);
  });

  it('should acknowledge only with a session (401 without), storing who and when in the log', async () => {
    const s = await withUsers();
    const anonymous = await request(s.port, 'POST', `/api/alerts/${alertId}/ack`, { body: {} });
    expect(anonymous.status).toBe(401);
    expect(store.alerts()[0].ackedBy).toBeNull();
    const forged = await request(s.port, 'POST', `/api/alerts/${alertId}/ack`, { body: {}, headers: { cookie: 'edge_infer_session=forged' } });
    expect(forged.status).toBe(401);

    const cookie = cookieOf(await login(s, 'bob', 's3cret bcrypt'));
    const before = Date.now();
    const ack = await request(s.port, 'POST', `/api/alerts/${alertId}/ack`, { body: {}, headers: { cookie } });
    expect(ack.status).toBe(200);
    expect(ack.json<AlertView>()).toMatchObject({ id: alertId, ackedBy: 'bob' });
    const row = store.alerts()[0];
    expect(row.ackedBy).toBe('bob');
    expect(row.ackedMs).toBeGreaterThanOrEqual(before);
    expect(row.ackedMs).toBeLessThanOrEqual(Date.now());
    const list = await request(s.port, 'GET', '/api/alerts', { headers: { cookie } });
    expect(list.json<AlertsView>().alerts[0]).toMatchObject({ ackedBy: 'bob', ackedMs: row.ackedMs });
  });

  it('should refuse a login that is not application/json', async () => {
    const s = await withUsers();
    const a = await request(s.port, 'POST', '/api/login', { body: 'user=alice&password=s3cret+scrypt', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(a.status).toBe(415);
  });

  it('should end the session at logout and clear the cookie', async () => {
    const s = await withUsers();
    const cookie = cookieOf(await login(s, 'alice', 's3cret scrypt'));
    expect((await request(s.port, 'GET', '/api/overview', { headers: { cookie } })).status).toBe(200);
    const out = await request(s.port, 'POST', '/api/logout', { body: {}, headers: { cookie } });
    expect(out.status).toBe(200);
    expect(out.json<SessionView>()).toMatchObject({ user: null, canAcknowledge: false });
    expect(out.headers['set-cookie']![0]).toMatch(/^edge_infer_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0$/);
    expect((await request(s.port, 'GET', '/api/overview', { headers: { cookie } })).status).toBe(401);
  });

  it('should refuse a malformed password hash, naming the user', async () => {
    await expect(serveDashboard(store, { auth: { listen: '0.0.0.0', users: [{ user: 'alice', passwordHash: '$2b$10$short' }] } })).rejects.toThrow(/^users\[0\]\.passwordHash: expected a bcrypt hash of 60 characters/);
  });
});

describe('a dashboard bound to the network without users', () => {
  it('should answer 403 on the page and the API, saying to configure http.users', async () => {
    served = await serveDashboard(store, { auth: { listen: '0.0.0.0' } });
    const page = await request(served.port, 'GET', '/');
    expect(page.status).toBe(403);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.text).toContain('http.users');
    const api = await request(served.port, 'GET', '/api/session');
    expect(api.status).toBe(403);
    expect(api.json<ApiError>().error).toMatch(/no users are configured: add http\.users .*edge-infer hash-password/);
    expect(served.dashboard.mode).toBe('closed');
  });
});

describe('a dashboard inside Node-RED (its host names the user)', () => {
  it("should take the user its host names, record acknowledgements as that user, and let frames of its own origin show it", async () => {
    served = await serveDashboard(store, { host: 'node-red', auth: (req) => (req.headers['x-test-user'] as string | undefined) ?? null, cookiePath: '/edge-infer/' });
    const session = await request(served.port, 'GET', '/api/session', { headers: { 'x-test-user': 'admin' } });
    expect(session.json<SessionView>()).toEqual({ user: 'admin', loginRequired: false, canAcknowledge: true, host: 'node-red' });
    expect(session.headers['content-security-policy']).toContain("frame-ancestors 'self'");
    // No user: it may look but not acknowledge.
    expect((await request(served.port, 'GET', '/api/overview')).status).toBe(200);
    expect((await request(served.port, 'POST', `/api/alerts/${alertId}/ack`, { body: {} })).status).toBe(401);
    const ack = await request(served.port, 'POST', `/api/alerts/${alertId}/ack`, { body: {}, headers: { 'x-test-user': 'admin' } });
    expect(ack.json<AlertView>()).toMatchObject({ ackedBy: 'admin' });
    const loginHere = await login(served, 'admin', 'x');
    expect(loginHere.status).toBe(400);
    expect(loginHere.json<ApiError>().error).toBe("login: this dashboard uses its host's login (Node-RED)");
    // Node-RED mounts it under its own path: /dashboard is no alias there.
    expect((await request(served.port, 'GET', '/dashboard')).text).toBe('not mine\n');
  });

  it('should work mounted on an express app under /edge-infer, as Node-RED mounts it (body parsed there or not)', async () => {
    // express is Node-RED's own; it ships no types.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const express = require('express') as any;
    const reader = await LogReader.open({ path: store.path });
    const dashboard = createDashboard({
      reader,
      alerts: { acknowledge: (id, user, atMs) => store.acknowledgeAlert(id, user, atMs), clear: (id, user, atMs) => store.clearAlert(id, user, atMs) },
      models: () => [],
      auth: () => 'admin',
      host: 'node-red',
      pageDir: pageFolder(),
    });
    const app = express();
    app.use('/parsed', express.json());
    for (const base of ['/edge-infer', '/parsed/edge-infer']) {
      app.use(base, (req: IncomingMessage, res: ServerResponse, next: () => void) => {
        void dashboard.handle(req, res).then((mine) => (mine ? undefined : next()));
      });
    }
    const server = createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const bare = await request(port, 'GET', '/edge-infer?x=1');
      expect(bare.status).toBe(301);
      expect(bare.headers.location).toBe('edge-infer/?x=1');
      expect((await request(port, 'GET', '/edge-infer/')).text).toContain('<title>edge-infer</title>');
      expect((await request(port, 'GET', '/edge-infer/app.js')).status).toBe(200);
      expect((await request(port, 'GET', '/edge-infer/api/overview')).json()).toMatchObject({ machines: [{ device: 'press-1' }] });
      expect((await request(port, 'GET', '/edge-infer/nope.js')).text).toMatch(/Cannot GET \/edge-infer\/nope\.js/);
      const ack = await request(port, 'POST', `/parsed/edge-infer/api/alerts/${alertId}/ack`, { body: { note: 'parsed by express.json' } });
      expect(ack.status).toBe(200);
      expect(ack.json<AlertView>().ackedBy).toBe('admin');
    } finally {
      dashboard.close();
      await new Promise((r) => server.close(r));
      await reader.close();
    }
  });
});

