// The parts of the dashboard inside Node-RED, on real runtimes and real log files: who
// acknowledges, a runtime's dashboard opening its log (made when missing), its models, and
// closing. (The whole, mounted in a real Node-RED: dashboard.test.ts.)
import { existsSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RuntimeDashboard, dashboardDeployed, dashboardRemoved, deployedDashboards, userOfRequest } from '../../nodes/dashboard';
import { RuntimeResources } from '../../nodes/resources';
import type { ModelStatic } from '../../runtime/serve';
import { tempDir } from '../helpers/gateway';

const closing: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closing.splice(0)) await c();
});

function resources(dbPath: string): RuntimeResources {
  const r = new RuntimeResources({ backend: 'wasm', threads: 1, weights: 'fast', dbPath, retentionDays: 30, recordEvery: 0 });
  closing.push(() => r.shutdown(100));
  return r;
}

/** A real HTTP server in front of a dashboard, as Node-RED's express app would be. */
async function serve(d: RuntimeDashboard): Promise<string> {
  const server = http.createServer((req, res) => {
    d.handle(req, res).then(
      (handled) => (handled ? undefined : res.writeHead(404).end()),
      (err: Error & { code?: string }) => res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: err.message, code: err.code })),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closing.push(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const req = (user?: unknown): http.IncomingMessage => ({ user }) as unknown as http.IncomingMessage;

const model = (variant: string): ModelStatic => ({ pipeline: null, model: 'fault-classifier', title: 'Rotating machine fault classifier', task: 'classification', variant, precision: 'int8', bytes: 1234, backend: 'wasm', threshold: null, labels: null, cardAgreement: null });

describe('userOfRequest', () => {
  it('should name the user an auth middleware put on the request first', () => {
    expect(userOfRequest({ httpNodeAuth: { user: 'operator', pass: 'x' } })(req({ username: 'maria' }))).toBe('maria');
  });

  it('should name httpNodeAuth\'s basic-auth user, whom Node-RED checked before the route', () => {
    expect(userOfRequest({ httpNodeAuth: { user: 'operator', pass: 'x' } })(req())).toBe('operator');
  });

  it('should say node-red when Node-RED asks no login, or its middleware names nobody', () => {
    expect(userOfRequest({})(req())).toBe('node-red');
    expect(userOfRequest({ httpNodeAuth: [() => undefined] })(req({}))).toBe('node-red');
    expect(userOfRequest({ httpNodeAuth: { user: '' } })(req({ username: '' }))).toBe('node-red');
  });
});

describe('RuntimeDashboard', () => {
  it('should refuse a runtime that logs nowhere', () => {
    expect(() => new RuntimeDashboard(resources(''), () => 'node-red')).toThrow(/this edge-infer runtime logs nowhere/);
  });

  it('should make a missing log and show it empty, on one reader thread', async () => {
    const db = path.join(tempDir('edge-infer-dash-parts-'), 'edge-infer.db');
    const r = resources(db);
    const d = new RuntimeDashboard(r, () => 'node-red');
    r.dashboard = d;
    const base = await serve(d);
    const overview = (await (await fetch(`${base}/api/overview`)).json()) as { machines: unknown[] };
    expect(overview.machines).toEqual([]);
    expect(existsSync(db)).toBe(true);
    expect(d.readerThreads).toBe(1);
    await fetch(`${base}/api/alerts`);
    expect(d.readerThreads).toBe(1);
  });

  it('should list each model variant in use once, until its nodes are gone', () => {
    const d = new RuntimeDashboard(resources(path.join(tempDir(), 'log.db')), () => 'node-red');
    const a = {};
    const b = {};
    d.modelInUse(a, model('int8'));
    d.modelInUse(b, model('int8'));
    d.modelInUse({}, model('fp32'));
    expect(d.modelsInUse().map((m) => m.variant).sort()).toEqual(['fp32', 'int8']);
    d.modelGone(a);
    d.modelGone(b);
    expect(d.modelsInUse().map((m) => m.variant)).toEqual(['fp32']);
  });

  it('should stop its reader when the runtime shuts down, and refuse requests after', async () => {
    const r = resources(path.join(tempDir('edge-infer-dash-parts-'), 'edge-infer.db'));
    const d = new RuntimeDashboard(r, () => 'node-red');
    r.dashboard = d;
    const base = await serve(d);
    expect((await fetch(`${base}/api/overview`)).ok).toBe(true);
    await r.shutdown(100);
    expect(d.readerThreads).toBe(0);
    const after = await fetch(`${base}/api/overview`);
    expect(after.status).toBe(503);
    expect(await after.json()).toMatchObject({ code: 'E_STORE_CLOSED' });
  });

  it('should be found by its runtime id while deployed, and not after', () => {
    const d = new RuntimeDashboard(resources(path.join(tempDir(), 'log.db')), () => 'node-red');
    dashboardDeployed('abc123', d);
    expect(deployedDashboards().get('abc123')).toBe(d);
    // A stale removal (an older node of the same id) leaves the new one deployed.
    dashboardRemoved('abc123', new RuntimeDashboard(resources(path.join(tempDir(), 'other.db')), () => 'node-red'));
    expect(deployedDashboards().get('abc123')).toBe(d);
    dashboardRemoved('abc123', d);
    expect(deployedDashboards().has('abc123')).toBe(false);
  });
});
