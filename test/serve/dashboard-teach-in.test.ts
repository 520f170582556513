// api/teach-in behind the dashboard's login rules, over real HTTP on a real log: with users,
// nothing is shown nor started without a session and a logged-in user starts and cancels; in
// Node-RED a visitor whom the host does not name may look but not start; a host without teach-in
// answers 404.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ModelCard } from '../../runtime/model';
import { packageRoot } from '../../runtime/paths';
import { ResultStore } from '../../runtime/store';
import { TeachIn } from '../../runtime/teachin';
import { result } from '../store/helpers';
import { type Served, cookieOf, request, serveDashboard, tempDir } from './dashboard-helpers';

const T0 = 1_700_000_000_000;
const card = { id: 'vibration-anomaly', task: 'anomaly', output: { tensor: 'score', threshold: 0.8 } } as unknown as ModelCard;

let store: ResultStore;
let served: Served | undefined;
let teachIn: TeachIn;

beforeEach(async () => {
  store = ResultStore.open({ path: path.join(tempDir(), 'log.db'), batchMs: 1 });
  await store.commit({ results: [result(T0, { device: 'press-1' })] });
  const baselines = store.baselines();
  teachIn = new TeachIn(baselines, { card: (m) => (m === card.id ? card : undefined), knows: (d, m) => baselines.hasResults(d, m) });
});

afterEach(async () => {
  await served?.close();
  served = undefined;
  await store.close();
});

const start = { device: 'press-1', model: 'vibration-anomaly', windows: 500 };

/** `edge-infer` in a child process (the server answers from this one), with `input` on its stdin. */
function edgeInfer(args: string[], input: string): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(packageRoot(), 'test', 'helpers', 'edge-infer-main.ts'), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += String(c)));
  child.stderr.on('data', (c: Buffer) => (err += String(c)));
  child.stdin.end(input);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err })));
}

describe('api/teach-in', () => {
  it('should need a login to look, start and cancel where the dashboard has users', async () => {
    served = await serveDashboard(store, { teachIn, auth: { listen: '0.0.0.0', users: [{ user: 'alice', passwordHash: bcrypt.hashSync('pw', 4) }] } });
    const { port } = served;
    expect(await request(port, 'POST', '/api/teach-in/start', { body: start })).toMatchObject({ status: 401, text: JSON.stringify({ error: 'api/teach-in/start: log in first' }) });
    expect((await request(port, 'GET', '/api/teach-in')).status).toBe(401);
    const cookie = cookieOf(await request(port, 'POST', '/api/login', { body: { user: 'alice', password: 'pw' } }));
    const started = await request(port, 'POST', '/api/teach-in/start', { body: start, headers: { cookie } });
    expect(started.status).toBe(200);
    expect(started.json()).toMatchObject({ device: 'press-1', state: 'learning', learning: { targetWindows: 500 } });
    expect(store.baselines().current()).toMatchObject([{ device: 'press-1', state: 'learning', startedBy: 'alice' }]);
    expect((await request(port, 'GET', '/api/teach-in?device=press-1&model=vibration-anomaly', { headers: { cookie } })).json()).toMatchObject({ state: 'learning' });
    expect(await request(port, 'GET', '/api/teach-in?device=press-1', { headers: { cookie } })).toMatchObject({ status: 400, text: JSON.stringify({ error: 'api/teach-in: expected both device and model, or neither', code: 'E_ARGUMENT' }) });
    expect((await request(port, 'GET', '/api/teach-in/start', { headers: { cookie } })).status).toBe(405);
    expect((await request(port, 'POST', '/api/teach-in/stop', { body: start, headers: { cookie } })).status).toBe(404);
    expect(await request(port, 'POST', '/api/teach-in/start', { body: start, headers: { cookie } })).toMatchObject({ status: 409 });
    expect((await request(port, 'GET', '/api/teach-in/last?device=press-1&model=vibration-anomaly', { headers: { cookie } })).json()).toEqual({ last: null });
    expect((await request(port, 'POST', '/api/teach-in/cancel', { body: start, headers: { cookie } })).json()).toMatchObject({ state: 'none' });
    // How the last one ended, from the log: the page says it when a teach-in it saw learning ends without a baseline.
    const last = await request(port, 'GET', '/api/teach-in/last?device=press-1&model=vibration-anomaly', { headers: { cookie } });
    expect(last.json()).toMatchObject({ last: { state: 'cancelled', startedBy: 'alice', targetWindows: 500, windows: 0, reason: null, threshold: null } });
    expect(await request(port, 'GET', '/api/teach-in/last?device=press-1', { headers: { cookie } })).toMatchObject({ status: 400, text: JSON.stringify({ error: 'api/teach-in/last: expected device and model', code: 'E_ARGUMENT' }) });
    expect((await request(port, 'POST', '/api/teach-in/last?device=press-1&model=vibration-anomaly', { body: {}, headers: { cookie } })).status).toBe(405);
    expect((await request(port, 'GET', '/api/teach-in/last?device=press-1&model=vibration-anomaly')).status).toBe(401);
    expect(await request(port, 'POST', '/api/teach-in/start', { body: { ...start, windows: 'lots' }, headers: { cookie } })).toMatchObject({ status: 400, text: JSON.stringify({ error: 'teach-in: windows must be a whole number ≥ 1, got "lots"', code: 'E_ARGUMENT' }) });
    expect((await request(port, 'POST', '/api/teach-in/start', { body: '[1]', headers: { cookie } })).status).toBe(400);
    // The command line logs in with --user, the password on stdin; a wrong one: one line and exit 1.
    const args = ['teach-in', 'start', '--url', served.url, '--device', 'press-1', '--model', 'vibration-anomaly', '--windows', '200'];
    // One after the other: a child each, on one core.
    const wrong = await edgeInfer([...args, '--user', 'alice'], 'nope\n');
    const withLogin = await edgeInfer([...args, '--user', 'alice'], 'pw\n');
    expect(withLogin).toMatchObject({ code: 0, out: 'press-1 (vibration-anomaly): learning, 0/200 windows; threshold 0.8 in force (the card\'s 0.8)\n' });
    expect(wrong).toMatchObject({ code: 1, err: 'edge-infer: teach-in start: login: wrong user or password\n' });
    expect(store.baselines().current()).toMatchObject([{ state: 'learning', startedBy: 'alice', targetWindows: 200 }]);
  });

  it('should let a visitor Node-RED does not name look but not start, and say where there is no teach-in', async () => {
    served = await serveDashboard(store, { teachIn, host: 'node-red', auth: () => null });
    expect((await request(served.port, 'GET', '/api/teach-in')).json()).toEqual({ teachIns: [] });
    expect(await request(served.port, 'POST', '/api/teach-in/start', { body: start })).toMatchObject({ status: 401, text: JSON.stringify({ error: 'api/teach-in/start: starting and cancelling a teach-in needs a logged-in user' }) });
    await served.close();
    served = await serveDashboard(store, {});
    // The list says there is none (the page hides its teach-in lines); the rest is 404.
    expect(await request(served.port, 'GET', '/api/teach-in')).toMatchObject({ status: 200, text: JSON.stringify({ teachIns: [], available: false }) });
    expect(await request(served.port, 'GET', '/api/teach-in?device=pump-1&model=m')).toMatchObject({ status: 404, text: JSON.stringify({ error: 'api/teach-in: teach-in is not available here', code: 'E_NOT_FOUND' }) });
    expect((await request(served.port, 'POST', '/api/teach-in/start', { body: start })).status).toBe(404);
  });
});
