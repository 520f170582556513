// The dashboard inside a real gateway on the embedded broker, fed numbered vibration blocks: the
// routes read the gateway's own log, the live feed gets each commit, /health and /metrics answer
// as before (also where the dashboard refuses), and stop() ends open streams and keep-alive
// connections. `edge-infer run` says where the dashboard is, and warns when it is refused.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import bcrypt from 'bcryptjs';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../runtime/gateway/gateway';
import { packageRoot } from '../../runtime/paths';
import type { ApiError, HealthView, ModelsView, OverviewView, SessionView } from '../../runtime/serve/dashboard-contract';
import { type TestBroker, startAedes } from '../helpers/brokers';
import { listenEvents } from '../helpers/event-stream';
import { client, publish, tempDir, testConfig, vibrationBlock, waitFor } from '../helpers/gateway';
import { cookieOf, request } from './dashboard-helpers';

let broker: TestBroker;
let gateway: Gateway | undefined;
let pub: MqttClient | undefined;

beforeAll(async () => {
  broker = await startAedes();
});
afterAll(async () => {
  await broker?.stop();
});
afterEach(async () => {
  pub?.end(true);
  await gateway?.stop();
  gateway = pub = undefined;
});

async function startGateway(http: Record<string, unknown> = {}): Promise<Gateway> {
  const config = testConfig(broker.url, { http: { port: 0, host: '127.0.0.1', ...http } });
  gateway = new Gateway(config, () => undefined);
  await gateway.start();
  await waitFor(() => gateway!.health().broker === 'connected', 10_000, 'the gateway connected');
  return gateway;
}

/** Publishes blocks [from, to) of a device: 4 blocks of 512 samples fill the first 2048-sample window. */
async function blocks(device: string, from: number, to: number): Promise<void> {
  pub ??= await client(broker.url);
  for (let seq = from; seq < to; seq++) await publish(pub, `plant/${device}/vibration`, vibrationBlock(seq));
}

describe('the dashboard in the gateway', () => {
  it("should serve the gateway's log on its routes, at dashboardUrl, beside /health and /metrics", async () => {
    const g = await startGateway();
    expect(g.dashboardUrl).toBe(`http://127.0.0.1:${g.httpPort}/`);
    await blocks('m-1', 0, 8);
    await waitFor(() => g.log.counts().results >= 4, 20_000, 'results of both models');

    const overview = await request(g.httpPort, 'GET', '/api/overview');
    expect(overview.status).toBe(200);
    const machines = overview.json<OverviewView>().machines;
    expect(machines.map((m) => m.device)).toEqual(['m-1']);
    expect(machines[0].models.map((m) => [m.model, m.title, m.variant]).sort()).toEqual([
      ['fault-classifier', expect.any(String), 'fp32'],
      ['vibration-anomaly', expect.any(String), 'fp32'],
    ]);
    // The pipeline logs the RMS of each window's main channel with its result.
    expect(machines[0].models.every((m) => typeof m.rms === 'number' && m.rms > 0)).toBe(true);

    const models = (await request(g.httpPort, 'GET', '/api/models')).json<ModelsView>().models;
    expect(models.map((m) => m.pipeline)).toEqual(['classifier', 'anomaly']);
    for (const m of models) {
      expect(m).toMatchObject({ variant: 'fp32', precision: 'fp32', backend: 'wasm', cardAgreement: null, agreement: null });
      expect(m.bytes).toBeGreaterThan(1000);
      expect(m.windowsPerS).toBeGreaterThan(0);
      expect(m.latencyP50Ms).toBeGreaterThan(0);
    }
    expect(models[0].labels).toContain('normal');
    expect(models[1].threshold).toEqual(expect.any(Number));

    const health = (await request(g.httpPort, 'GET', '/api/health')).json<HealthView>();
    expect(health).toMatchObject({ ok: true, gateway: { ok: true, broker: 'connected' }, live: { browsers: 0, dropped: 0 } });
    expect(health.counts.results).toBeGreaterThanOrEqual(4);

    expect((await request(g.httpPort, 'GET', '/health')).status).toBe(200);
    expect((await request(g.httpPort, 'GET', '/metrics')).text).toContain('# TYPE');
    const missing = await request(g.httpPort, 'GET', '/no-such-file.txt');
    expect(missing.status).toBe(404);
    expect(missing.text).toBe('not found\n');
  }, 60_000);

  it('should push what the gateway commits to a browser on api/live, nothing from before, and end the stream at stop()', async () => {
    const g = await startGateway();
    await blocks('m-1', 0, 4);
    await waitFor(() => g.log.counts().results >= 2, 20_000, 'the first window');
    const before = g.log.counts().results;

    const stream = await listenEvents<Array<{ device: string; timeMs: number; rms: number | null }>>(`http://127.0.0.1:${g.httpPort}/api/live`);
    expect(stream.res.headers['content-type']).toBe('text/event-stream');
    const events = stream.events;
    await waitFor(() => (g as unknown as { dashboard: { live: { size: number } } }).dashboard.live.size === 1, 5000, 'the browser attached');
    await blocks('m-1', 4, 8);
    await waitFor(() => events.flatMap((e) => e.data).length >= 4, 20_000, 'the new results on the live feed');
    const live = events.filter((e) => e.event === 'results').flatMap((e) => e.data);
    // Only windows committed after the browser connected: the history is the log's.
    expect(g.log.counts().results - before).toBe(live.length);
    expect(live.every((p) => p.device === 'm-1' && 'rms' in p)).toBe(true);

    const t = Date.now();
    await g.stop();
    gateway = undefined;
    expect(Date.now() - t).toBeLessThan(5000);
    await waitFor(() => stream.ended(), 2000, 'the stream ended');
  }, 60_000);

  it('should ask for a login when the config lists users, and record acknowledgements as the user', async () => {
    const g = await startGateway({ users: [{ user: 'operator', passwordHash: bcrypt.hashSync('line 3', 4) }] });
    await blocks('m-1', 0, 4);
    await waitFor(() => g.log.counts().results >= 2, 20_000, 'the first window');
    await g.log.commit({ alerts: [{ timeMs: Date.now(), device: 'm-1', model: 'vibration-anomaly', variant: 'fp32', kind: 'anomaly', label: 'anomaly', score: 99, threshold: 11, message: 'test alert' }] });
    const id = g.log.alerts()[0].id;
    expect((await request(g.httpPort, 'GET', '/api/overview')).status).toBe(401);
    expect((await request(g.httpPort, 'POST', `/api/alerts/${id}/ack`, { body: {} })).status).toBe(401);
    const login = await request(g.httpPort, 'POST', '/api/login', { body: { user: 'operator', password: 'line 3' } });
    expect(login.json<SessionView>()).toMatchObject({ user: 'operator', loginRequired: true, canAcknowledge: true });
    const ack = await request(g.httpPort, 'POST', `/api/alerts/${id}/ack`, { body: {}, headers: { cookie: cookieOf(login) } });
    expect(ack.status).toBe(200);
    expect(g.log.alerts()[0]).toMatchObject({ ackedBy: 'operator' });
  }, 60_000);

  it('should refuse the dashboard (403) but answer /health and /metrics when bound to every interface without users', async () => {
    const g = await startGateway({ host: '0.0.0.0' });
    expect(g.dashboardUrl).toBe(`http://127.0.0.1:${g.httpPort}/`);
    const page = await request(g.httpPort, 'GET', '/');
    expect(page.status).toBe(403);
    expect(page.text).toContain('http.users');
    const api = await request(g.httpPort, 'GET', '/api/overview');
    expect(api.status).toBe(403);
    expect(api.json<ApiError>().error).toMatch(/add http\.users/);
    expect((await request(g.httpPort, 'GET', '/health')).status).toBe(200);
    expect((await request(g.httpPort, 'GET', '/metrics')).status).toBe(200);
  }, 60_000);
});

describe('edge-infer run and the dashboard', () => {
  let proc: ChildProcess | undefined;
  afterEach(async () => {
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc!.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
    proc = undefined;
  });

  it('should print the dashboard URL, and warn that it answers 403 when bound to every interface without users', async () => {
    const config = testConfig(broker.url, { http: { port: 0, host: '0.0.0.0' } });
    const file = path.join(tempDir(), 'gateway.json');
    writeFileSync(file, JSON.stringify(config));
    proc = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(packageRoot(), 'test', 'helpers', 'edge-infer-main.ts'), 'run', '--config', file, '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout!.on('data', (d) => (out += String(d)));
    proc.stderr!.on('data', (d) => (err += String(d)));
    await waitFor(() => /dashboard: http:\/\/127\.0\.0\.1:\d+\//.test(out), 30_000, 'the dashboard line').catch((e: Error) => {
      throw new Error(`${e.message}; output: ${out}${err}`);
    });
    await waitFor(() => err.includes('http.users'), 5000, 'the warning');
    expect(err).toMatch(/the dashboard listens on 0\.0\.0\.0, reachable from the network, and no users are configured: it answers 403 until http\.users is set/);
  }, 60_000);
});
