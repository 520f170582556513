// The dashboard's handler on a real HTTP server over a real log that ResultStore writes and a
// LogReader reads on its worker: every route and its errors, the page and its assets (no path
// traversal), the headers, an open dashboard on loopback acknowledging as 'local', and the live
// feed sending only what is committed after a browser connects.
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlertView, AlertsView, ApiError, ChartView, HealthView, ModelsView, OverviewView, SessionView } from '../../runtime/serve/dashboard-contract';
import { LogReader } from '../../runtime/serve/log-reader';
import { defaultPageDir } from '../../runtime/serve/static';
import { packageRoot } from '../../runtime/paths';
import { ResultStore } from '../../runtime/store';
import { listenEvents } from '../helpers/event-stream';
import { alert, deadLetter, result } from '../store/helpers';
import { type Served, request, serveDashboard, tempDir } from './dashboard-helpers';

// Data time ten minutes ago: the live agreement counts the last hour of data.
const T0 = Math.floor(Date.now() / 1000) * 1000 - 600_000;

let store: ResultStore;
let served: Served;

/**
 * press-1: normal; press-2: its latest anomaly window anomalous (warning); press-3: an alert
 * raised and not cleared (fault). Results of two variants of the anomaly model on press-1.
 */
async function fill(s: ResultStore): Promise<void> {
  for (let i = 0; i < 30; i++) {
    const t = T0 + i * 1000;
    await s.commit({
      results: [
        result(t, { device: 'press-1', variant: 'fp32', score: 0.1, rms: 0.5, messageKeys: [`a-${i}`], processedMs: Date.now() }),
        result(t, { device: 'press-1', score: 0.1 + (i % 3) * 0.05, rms: 0.5 + i / 100, messageKeys: [`a-${i}`], processedMs: Date.now() }),
        result(t, { device: 'press-2', score: i === 29 ? 0.95 : 0.2, anomaly: i === 29, messageKeys: [`b-${i}`] }),
        result(t, { device: 'press-3', model: 'fault-classifier', variant: 'fp32', score: 0.9, label: 'bearing', anomaly: true, messageKeys: [`c-${i}`] }),
      ],
      alerts: i === 20 ? [alert(t, { device: 'press-3', model: 'fault-classifier', variant: 'fp32', kind: 'fault', label: 'bearing', message: 'press-3: bearing fault' })] : [],
      deadLetters: i === 5 ? [deadLetter(t, { reason: 'not a float32 block', code: 'E_DECODE' })] : [],
    });
  }
}

beforeEach(async () => {
  store = ResultStore.open({ path: path.join(tempDir(), 'log.db'), batchMs: 1 });
  await fill(store);
  served = await serveDashboard(store);
});

afterEach(async () => {
  await served?.close();
  await store?.close();
});

const getJson = async <T>(pathname: string, headers: Record<string, string> = {}): Promise<{ status: number; body: T; headers: Record<string, unknown> }> => {
  const a = await request(served.port, 'GET', pathname, { headers });
  return { status: a.status, body: a.json<T>(), headers: a.headers };
};

describe('api/session, api/overview', () => {
  it('should say an open dashboard on loopback needs no login and may acknowledge', async () => {
    const r = await getJson<SessionView>('/api/session');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ user: null, loginRequired: false, canAcknowledge: true, host: 'gateway' });
  });

  it('should give each machine its state from active alerts and latest windows, sorted by device, with the cards\' titles and thresholds', async () => {
    const r = await getJson<OverviewView>('/api/overview');
    expect(r.status).toBe(200);
    expect(r.body.nowMs).toBeGreaterThan(T0);
    expect(r.body.machines.map((m) => [m.device, m.state])).toEqual([
      ['press-1', 'normal'],
      ['press-2', 'warning'],
      ['press-3', 'fault'],
    ]);
    const p1 = r.body.machines[0];
    // One entry per model: the newest result of any of its variants (here int8, logged last).
    expect(p1.models).toHaveLength(1);
    expect(p1.models[0]).toEqual({
      model: 'vibration-anomaly', title: 'Vibration anomaly detector', task: 'anomaly', variant: 'int8', timeMs: T0 + 29_000, score: expect.any(Number), label: null, anomaly: false, threshold: 0.8, rms: expect.closeTo(0.79, 9), activeAlert: null,
    });
    const fault = r.body.machines[2].models[0];
    expect(fault).toMatchObject({ model: 'fault-classifier', title: 'Fault classifier', task: 'classification', label: 'bearing', threshold: 0.5 });
    expect(fault.activeAlert).toMatchObject({ device: 'press-3', kind: 'fault', label: 'bearing', ackedBy: null, clearedBy: null });
  });

  it('should answer JSON that no cache keeps, with the security headers', async () => {
    const a = await request(served.port, 'GET', '/api/overview');
    expect(a.headers['content-type']).toMatch(/^application\/json/);
    expect(a.headers['cache-control']).toBe('no-store');
    expect(a.headers['x-content-type-options']).toBe('nosniff');
    expect(a.headers['content-security-policy']).toContain("frame-ancestors 'none'");
  });
});

describe('api/chart', () => {
  const chart = (q: string) => getJson<ChartView & ApiError>(`/api/chart?${q}`);

  it('should give the points of a range with the card\'s threshold, at most as many as asked', async () => {
    const r = await chart(`device=press-1&model=vibration-anomaly&from=${T0}&to=${T0 + 29_000}&points=10`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ device: 'press-1', model: 'vibration-anomaly', field: 'score', fromMs: T0, toMs: T0 + 29_000, threshold: 0.8, labels: null });
    expect(r.body.points.length).toBeGreaterThan(0);
    expect(r.body.points.length).toBeLessThanOrEqual(10);
    expect(r.body.bucketMs).toBeGreaterThan(0);
  });

  it('should give the main channel\'s RMS with field=rms', async () => {
    const r = await chart(`device=press-1&model=vibration-anomaly&from=${T0}&to=${T0 + 2_000}&points=100&field=rms`);
    expect(r.status).toBe(200);
    expect(r.body.field).toBe('rms');
    // Both variants logged an RMS for each window: 0.5 (fp32, first) and 0.5 + i/100 (int8).
    expect(r.body.points.map((p) => Math.round(p.max * 100) / 100)).toEqual([0.5, 0.5, 0.5, 0.51, 0.5, 0.52]);
  });

  it('should answer 200 with no points for a range with no results', async () => {
    const r = await chart(`device=press-1&model=vibration-anomaly&from=${T0 - 100_000}&to=${T0 - 50_000}&points=100`);
    expect(r.status).toBe(200);
    expect(r.body.points).toEqual([]);
  });

  it('should answer 404 naming a device or a model that has no results at all', async () => {
    const device = await chart(`device=press-9&model=vibration-anomaly&from=${T0}&to=${T0 + 1000}&points=10`);
    expect(device.status).toBe(404);
    expect(device.body).toEqual({ error: "device 'press-9': no results logged of model 'vibration-anomaly'", code: 'E_NOT_FOUND' });
    const model = await chart(`device=press-1&model=no-such-model&from=${T0}&to=${T0 + 1000}&points=10`);
    expect(model.status).toBe(404);
    expect(model.body.error).toBe("model 'no-such-model': no results logged");
  });

  for (const [q, name] of [
    [`model=vibration-anomaly&from=${T0}&to=${T0}&points=10`, 'device'],
    [`device=press-1&from=${T0}&to=${T0}&points=10`, 'model'],
    [`device=press-1&model=m&from=yesterday&to=${T0}&points=10`, 'from'],
    [`device=press-1&model=m&to=${T0}&points=10`, 'from'],
    [`device=press-1&model=m&from=${T0}&to=1e400&points=10`, 'to'],
    [`device=press-1&model=m&from=${T0}&to=${T0 - 1}&points=10`, 'to'],
    [`device=press-1&model=m&from=${T0}&to=${T0}`, 'points'],
    [`device=press-1&model=m&from=${T0}&to=${T0}&points=0`, 'points'],
    [`device=press-1&model=m&from=${T0}&to=${T0}&points=5001`, 'points'],
    [`device=press-1&model=m&from=${T0}&to=${T0}&points=2.5`, 'points'],
    [`device=press-1&model=m&from=${T0}&to=${T0}&points=10&field=temperature`, 'field'],
  ] as const) {
    it(`should answer 400 naming ${name} for ${q.replace(/\d{13}/g, 'T')}`, async () => {
      const r = await chart(q);
      expect(r.status).toBe(400);
      expect(r.body.code).toBe('E_ARGUMENT');
      expect(r.body.error.startsWith(`${name}: expected`)).toBe(true);
    });
  }
});

describe('api/alerts and acknowledgements', () => {
  it('should list alerts, the active ones, and those of a device', async () => {
    await store.commit({ alerts: [alert(T0 + 40_000, { device: 'press-1', kind: 'anomaly' }), alert(T0 + 41_000, { device: 'press-1', kind: 'clear' })] });
    const all = await getJson<AlertsView>('/api/alerts');
    expect(all.body.alerts.map((a) => a.kind)).toEqual(['clear', 'anomaly', 'fault']);
    const active = await getJson<AlertsView>('/api/alerts?active=1');
    expect(active.body.alerts.map((a) => [a.device, a.kind])).toEqual([['press-3', 'fault']]);
    const one = await getJson<AlertsView>('/api/alerts?device=press-3&limit=1');
    expect(one.body.alerts).toHaveLength(1);
    expect(one.body.alerts[0]).toMatchObject({ device: 'press-3', model: 'fault-classifier', variant: 'fp32', message: 'press-3: bearing fault', ackedBy: null, ackedMs: null, clearedBy: null, clearedMs: null });
  });

  it('should answer 400 naming a bad active, limit or device', async () => {
    for (const [q, name] of [['active=yes', 'active'], ['limit=0', 'limit'], ['limit=1001', 'limit'], ['limit=ten', 'limit'], ['device=', 'device']]) {
      const r = await getJson<ApiError>(`/api/alerts?${q}`);
      expect(r.status).toBe(400);
      expect(r.body.error.startsWith(`${name}: expected`)).toBe(true);
    }
  });

  it("should acknowledge and clear as 'local' on an open dashboard, with who and when stored in the log", async () => {
    const [fault] = (await getJson<AlertsView>('/api/alerts')).body.alerts;
    const before = Date.now();
    const ack = await request(served.port, 'POST', `/api/alerts/${fault.id}/ack`, { body: {} });
    expect(ack.status).toBe(200);
    expect(ack.json<AlertView>()).toMatchObject({ id: fault.id, ackedBy: 'local', ackedMs: expect.any(Number) });
    expect(ack.json<AlertView>().ackedMs!).toBeGreaterThanOrEqual(before);
    expect(store.alerts({ device: 'press-3' })[0]).toMatchObject({ ackedBy: 'local' });
    // Acknowledged, it is still active; cleared, it is not.
    expect((await getJson<OverviewView>('/api/overview')).body.machines[2].state).toBe('fault');
    const clear = await request(served.port, 'POST', `/api/alerts/${fault.id}/clear`, { body: {} });
    expect(clear.json<AlertView>()).toMatchObject({ clearedBy: 'local' });
    expect(store.alerts({ device: 'press-3' })[0]).toMatchObject({ clearedBy: 'local' });
    expect((await getJson<OverviewView>('/api/overview')).body.machines[2].state).toBe('warning');
  });

  it('should answer 404 for an unknown alert, 400 for an id that is not one, 405 for a GET', async () => {
    const unknown = await request(served.port, 'POST', '/api/alerts/999999/ack', { body: {} });
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toEqual({ error: 'alert 999999: no such alert in the log', code: 'E_NOT_FOUND' });
    const bad = await request(served.port, 'POST', '/api/alerts/one/ack', { body: {} });
    expect(bad.status).toBe(400);
    expect(bad.json<ApiError>().error).toMatch(/^alert id: expected/);
    expect((await request(served.port, 'GET', '/api/alerts/1/ack')).status).toBe(405);
  });

  it('should refuse a POST that is not application/json (what a form on another site sends)', async () => {
    const id = (await getJson<AlertsView>('/api/alerts')).body.alerts[0].id;
    const form = await request(served.port, 'POST', `/api/alerts/${id}/ack`, { body: 'x=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
    expect(form.json<ApiError>().error).toBe('content-type: expected application/json, got application/x-www-form-urlencoded');
    const none = await request(served.port, 'POST', `/api/alerts/${id}/ack`);
    expect(none.status).toBe(415);
    expect(store.alerts({ device: 'press-3' })[0].ackedBy).toBeNull();
  });

  it('should refuse a request whose Host is not this machine\'s on an open dashboard (DNS rebinding)', async () => {
    const a = await request(served.port, 'GET', '/api/overview', { headers: { host: 'attacker.example:80' } });
    expect(a.status).toBe(403);
    expect(a.json<ApiError>().error).toMatch(/^host 'attacker\.example:80': this dashboard answers only to this machine's names/);
    expect((await request(served.port, 'GET', '/api/overview', { headers: { host: `localhost:${served.port}` } })).status).toBe(200);
  });
});

describe('api/models, api/health, errors', () => {
  it('should merge the log\'s windows/s, latency and live agreement into the models in use', async () => {
    const r = await getJson<ModelsView>('/api/models');
    expect(r.status).toBe(200);
    const int8 = r.body.models.find((m) => m.variant === 'int8')!;
    expect(int8).toMatchObject({ pipeline: 'anomaly', model: 'vibration-anomaly', precision: 'int8', bytes: 12_345, backend: 'wasm', threshold: 0.8, cardAgreement: 0.997, latencyP50Ms: 2.5, latencyP99Ms: 2.5 });
    // 30 windows processed within the last minute.
    expect(int8.windowsPerS).toBeCloseTo(30 / 60, 5);
    expect(int8.agreement).toEqual({ withVariant: 'fp32', windows: 30, agree: 30 });
    const fp32 = r.body.models.find((m) => m.model === 'vibration-anomaly' && m.variant === 'fp32')!;
    expect(fp32.agreement).toBeNull();
    expect(r.body.models.find((m) => m.model === 'fault-classifier')).toMatchObject({ windowsPerS: 0, labels: ['normal', 'bearing', 'imbalance'] });
  });

  it('should report counts, dead letters with their reasons, the gateway health and the live browsers', async () => {
    const r = await getJson<HealthView>('/api/health');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true, gateway: { ok: true, broker: 'connected' }, counts: { results: 120, alerts: 1, deadLetters: 1, outbox: 0, windows: 0 }, live: { browsers: 0, dropped: 0 } });
    expect(r.body.deadLetters.total).toBe(1);
    expect(r.body.deadLetters.recent).toEqual([{ id: expect.any(Number), timeMs: T0 + 5000, topic: 'plant/press-1/vib', device: 'press-1', code: 'E_DECODE', reason: 'not a float32 block' }]);
  });

  it('should answer 404 JSON for an API route that does not exist', async () => {
    const r = await getJson<ApiError>('/api/nothing');
    expect(r.status).toBe(404);
    expect(r.body).toEqual({ error: 'api/nothing: no such route', code: 'E_NOT_FOUND' });
  });

  it('should answer 503 with Retry-After while the log reader is busy', async () => {
    await served.close();
    const reader = await LogReader.open({ path: store.path, maxQueued: 0 });
    served = await serveDashboard(store, { reader });
    const answers = await Promise.all(Array.from({ length: 20 }, () => request(served.port, 'GET', '/api/health')));
    const busy = answers.filter((a) => a.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    expect(busy[0].headers['retry-after']).toBe('2');
    expect(busy[0].json<ApiError>()).toMatchObject({ code: 'E_BUSY', error: expect.stringMatching(/busy/) });
    await reader.close();
  });
});

describe('the page and its assets', () => {
  for (const p of ['/', '/dashboard', '/dashboard/', '/index.html']) {
    it(`should serve index.html at ${p}, not cached, with the security headers`, async () => {
      const a = await request(served.port, 'GET', p);
      expect(a.status).toBe(200);
      expect(a.text).toContain('<title>edge-infer</title>');
      expect(a.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(a.headers['cache-control']).toBe('no-cache');
      const csp = a.headers['content-security-policy'] as string;
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self';");
      expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
      expect(csp).toContain("frame-ancestors 'none'");
      expect(a.headers['x-content-type-options']).toBe('nosniff');
      expect(a.headers['referrer-policy']).toBe('same-origin');
    });
  }

  it('should serve assets by relative name with an ETag, 304 while unchanged, under / and /dashboard/', async () => {
    const a = await request(served.port, 'GET', '/app.js');
    expect(a.status).toBe(200);
    expect(a.headers['content-type']).toBe('text/javascript; charset=utf-8');
    const etag = a.headers.etag as string;
    expect(etag).toMatch(/^W\/"/);
    expect((await request(served.port, 'GET', '/app.js', { headers: { 'if-none-match': etag } })).status).toBe(304);
    expect((await request(served.port, 'GET', '/dashboard/style.css')).headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it("should serve uPlot from its package under assets/", async () => {
    const js = await request(served.port, 'GET', '/assets/uPlot.iife.min.js');
    expect(js.status).toBe(200);
    expect(js.text).toContain('uPlot');
    expect((await request(served.port, 'GET', '/assets/uPlot.min.css')).headers['content-type']).toBe('text/css; charset=utf-8');
  });

  for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/%2E%2E%2Fsecret.txt', '/..%2fsecret.txt', '/assets/..%2f..%2fsecret.txt', '/dashboard/../../secret.txt', '//etc/passwd', '/%2fetc%2fpasswd', '/app.js%00.html', '/app.js\0', '/..\\secret.txt', '/assets/../../secret.txt']) {
    it(`should not serve ${JSON.stringify(p)}`, async () => {
      const a = await request(served.port, 'GET', p.replace('\0', '%00')).catch(() => null);
      if (a) {
        expect(a.status).toBe(404);
        expect(a.text).not.toContain('not for browsers');
        expect(a.text).not.toContain('root:');
      }
    });
  }

  it('should leave a path that is not the page\'s to whoever mounts it (false)', async () => {
    const a = await request(served.port, 'GET', '/nothing-here.js');
    expect(a.status).toBe(404);
    expect(a.text).toBe('not mine\n');
  });

  it('should say the page is not built when its folder has no index.html', async () => {
    await served.close();
    served = await serveDashboard(store, { pageDir: path.join(tempDir(), 'missing') });
    const a = await request(served.port, 'GET', '/');
    expect(a.status).toBe(503);
    expect(a.json<ApiError>().error).toMatch(/the dashboard page is not built: .*index\.html is missing \(run npm run build\)/);
  });

  it('should default to the built page under dist/runtime/serve/page', () => {
    expect(defaultPageDir()).toBe(path.join(packageRoot(), 'dist', 'runtime', 'serve', 'page'));
  });
});

describe('api/live', () => {
  const listen = listenEvents;

  it('should send only what is committed after the browser connects (no history), with the RMS', async () => {
    const s = await listen(`${served.url}/api/live?device=press-1`);
    expect(s.status).toBe(200);
    for (const end = Date.now() + 5000; served.dashboard.live.size === 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
    expect(served.dashboard.live.size).toBe(1);
    const unit = { results: [result(T0 + 60_000, { device: 'press-1', score: 0.33, rms: 1.25, messageKeys: ['new-1'] }), result(T0 + 60_000, { device: 'press-2', messageKeys: ['new-2'] })] };
    await store.commit(unit);
    served.dashboard.live.publish(unit);
    const deadline = Date.now() + 5000;
    while (s.events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(s.events).toEqual([{ event: 'results', data: [{ device: 'press-1', model: 'vibration-anomaly', variant: 'int8', timeMs: T0 + 60_000, score: 0.33, label: null, anomaly: false, rms: 1.25, processedMs: T0 + 60_005 }] }]);
    s.close();
  });
});
