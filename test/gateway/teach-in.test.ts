// Teach-in on a running gateway, through its HTTP API: a healthy machine whose scores reach the
// card's threshold raises false alerts until it is taught, and none after; a quiet machine taught
// on its own normal is alerted when its fault is still under the card's threshold. A real broker
// (aedes), a real ONNX model whose score is log(speed − 2), a real log file.
import { type AddressInfo, createServer } from 'node:net';
import Database from 'better-sqlite3';
import * as path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { Gateway } from '../../runtime/gateway/gateway';
import { type TestBroker, startAedes } from '../helpers/brokers';
import { cli, expectOneLine } from '../helpers/cli';
import { client, publish, tempDir, waitFor } from '../helpers/gateway';
import { logModel } from '../helpers/models';
import { modelsDir, speedCard } from '../helpers/speed-models';

/** The speed whose window scores `score` (the model gives log(speed − 2)). */
const speedFor = (score: number): number => Math.exp(score) + 2;
/** pump-1: healthy between 4.6 and 5.2, across the card's threshold of 5. */
const loud = (i: number): number => 4.6 + 0.6 * ((i * 37) % 100) / 100;
/** fan-2: healthy near 2. */
const quiet = (i: number): number => 2 + 0.2 * ((i * 53) % 100) / 100;

describe('teach-in on a gateway', () => {
  let broker: TestBroker | undefined;
  let gateway: Gateway | undefined;
  let sub: MqttClient | undefined;
  let pub: MqttClient | undefined;
  let config: ReturnType<typeof parseGatewayConfig>;
  afterAll(async () => {
    sub?.end(true);
    pub?.end(true);
    await gateway?.stop();
    await broker?.stop();
  });

  it('should stop a healthy machine\'s false alerts and still alert a faulty one, from the HTTP API, with its threshold and state in each result', async () => {
    broker = await startAedes();
    const card = speedCard('speed-anomaly', { task: 'anomaly', threshold: 5 });
    config = parseGatewayConfig(
      {
        broker: { url: broker.url, protocol: 4, clientId: 'gw-teach-in', reconnectMs: 200 },
        models: modelsDir([{ card, onnx: logModel() }]),
        storage: { path: path.join(tempDir(), 'log.db'), batchMs: 2 },
        http: { port: 0, host: '127.0.0.1' },
        engine: { backend: 'wasm', threads: 1 },
        teachIn: { minWindows: 50 },
        pipelines: [{ name: 'speed', topic: 'plant/{device}/speed', decoder: { kind: 'json', channels: ['speed'] }, model: 'speed-anomaly', alerts: { consecutive: 1, cooldownS: 0 } }],
      },
      'teach-in config',
    );
    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    const api = `http://127.0.0.1:${gateway.httpPort}/api/`;
    const post = async (route: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
      const res = await fetch(api + route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const results = new Map<string, Array<{ anomaly: boolean; threshold: number; baseline: string }>>([['pump-1', []], ['fan-2', []]]);
    sub = await client(broker.url);
    sub.on('message', (topic, payload) => {
      const r = JSON.parse(String(payload));
      results.get(r.device)?.push(r);
    });
    await new Promise((r) => sub!.subscribe('edge-infer/results/#', { qos: 1 }, r));
    pub = await client(broker.url);
    let sent = 0;
    const send = async (device: string, scores: number[]): Promise<void> => {
      for (const s of scores) await publish(pub!, `plant/${device}/speed`, JSON.stringify({ speed: speedFor(s) }));
      sent += scores.length;
      await waitFor(() => results.get('pump-1')!.length + results.get('fan-2')!.length === sent, 20_000, `${sent} results`);
    };
    const raised = (device: string): number => gateway!.log.alerts({ device, limit: 1000 }).filter((a) => a.kind !== 'clear').length;
    const healthy = (f: (i: number) => number, from: number, n: number): number[] => Array.from({ length: n }, (_, i) => f(from + i));

    // Before: the card's threshold flags pump-1's healthy windows.
    await send('pump-1', healthy(loud, 0, 60));
    await send('fan-2', healthy(quiet, 0, 60));
    const before = raised('pump-1');
    expect(before).toBeGreaterThan(5);
    expect(raised('fan-2')).toBe(0);

    // Bad requests, each a 4xx with one line.
    expect(await post('teach-in/start', { device: 'pump-9', model: 'speed-anomaly', windows: 100 })).toEqual({ status: 404, body: { error: "teach-in: device 'pump-9' has no results of model 'speed-anomaly' yet", code: 'E_NOT_FOUND' } });
    expect(await post('teach-in/start', { device: 'pump-1', model: 'nope', windows: 100 })).toMatchObject({ status: 404, body: { error: "teach-in: model 'nope' is not served here" } });
    expect(await post('teach-in/start', { device: 'pump-1', model: 'speed-anomaly', windows: 0 })).toMatchObject({ status: 400, body: { error: 'teach-in: windows must be a whole number ≥ 1, got 0' } });
    expect(await post('teach-in/start', { device: 'pump-1', model: 'speed-anomaly', windows: -10 })).toMatchObject({ status: 400 });
    expect(await post('teach-in/cancel', { device: 'pump-1', model: 'speed-anomaly' })).toMatchObject({ status: 404, body: { error: 'teach-in of pump-1 (speed-anomaly): none is running to cancel' } });
    expect(await post('teach-in/start', { model: 'speed-anomaly', windows: 100 })).toMatchObject({ status: 400, body: { error: 'device: expected a name, got none' } });

    // Teach both machines 100 healthy windows.
    expect(await post('teach-in/start', { device: 'pump-1', model: 'speed-anomaly', windows: 100 })).toMatchObject({ status: 200, body: { state: 'learning', threshold: 5 } });
    expect(await post('teach-in/start', { device: 'pump-1', model: 'speed-anomaly', windows: 100 })).toMatchObject({ status: 409, body: { code: 'E_CONFLICT' } });
    expect(await post('teach-in/start', { device: 'fan-2', model: 'speed-anomaly', windows: 100 })).toMatchObject({ status: 200 });
    const learnedFrom = results.get('pump-1')!.length;
    await send('pump-1', healthy(loud, 60, 100));
    await send('fan-2', healthy(quiet, 60, 100));
    // While learning the card's threshold held: pump-1 still alerted.
    expect(results.get('pump-1')!.slice(learnedFrom, learnedFrom + 99).every((r) => r.baseline === 'learning' && r.threshold === 5)).toBe(true);
    expect(raised('pump-1')).toBeGreaterThan(before);
    const status = (await (await fetch(`${api}teach-in?device=pump-1&model=speed-anomaly`)).json()) as { state: string; threshold: number; baseline: { windows: number } };
    expect(status).toMatchObject({ state: 'active', cardThreshold: 5, baseline: { windows: 100 } });
    expect(status.threshold).toBeGreaterThan(5.2);
    const fan = ((await (await fetch(`${api}teach-in`)).json()) as { teachIns: Array<{ device: string; threshold: number }> }).teachIns.find((t) => t.device === 'fan-2')!;
    expect(fan.threshold).toBeLessThan(3);
    // Both teach-ins' windows are in the log for a fine-tune, written when each became active.
    expect(gateway.teachIn!.recorder.stats).toMatchObject({ windows: 200, transactions: 2, dropped: 0 });

    // After: pump-1 healthy raises nothing; fan-2's fault (score 4, under the card's 5) is alerted.
    const pumpRaised = raised('pump-1');
    const fanFrom = results.get('fan-2')!.length;
    await send('pump-1', healthy(loud, 160, 100));
    await send('fan-2', Array(5).fill(4));
    expect(raised('pump-1')).toBe(pumpRaised);
    expect(results.get('pump-1')!.slice(-100).every((r) => !r.anomaly && r.baseline === 'active' && r.threshold === status.threshold)).toBe(true);
    expect(results.get('fan-2')!.slice(fanFrom).every((r) => r.anomaly && r.baseline === 'active')).toBe(true);
    const fanAlerts = gateway.log.alerts({ device: 'fan-2', limit: 10 });
    expect(fanAlerts.length).toBeGreaterThan(0);
    expect(fanAlerts[0].threshold).toBe(fan.threshold);
  });

  it('should start, show and cancel a teach-in from the command line, with one line and exit 1 for each bad request', async () => {
    const url = `http://127.0.0.1:${gateway!.httpPort}`;
    // A port nothing listens on: one the system just gave and took back.
    const closed = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as AddressInfo;
        srv.close(() => resolve(port));
      });
    });
    const args = ['--url', url, '--device', 'fan-2', '--model', 'speed-anomaly'];
    const shown = await cli('teach-in', 'status', ...args);
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(/^fan-2 \(speed-anomaly\): baseline active, threshold 2\.\d+ from 100 healthy windows \(the card's 5\)\n$/);
    const started = await cli('teach-in', 'start', ...args, '--windows', '200');
    expect(started).toMatchObject({ code: 0, out: expect.stringMatching(/^fan-2 \(speed-anomaly\): learning, 0\/200 windows; threshold 2\.\d+ in force \(the earlier baseline\)\n$/) });
    const all = await cli('teach-in', 'status', '--url', url, '--json');
    expect(JSON.parse(all.out)).toHaveLength(2);
    expect((await cli('teach-in', 'cancel', ...args)).out).toMatch(/^fan-2 \(speed-anomaly\): baseline active/);
    const bad = [
      [['teach-in', 'start', ...args, '--windows', '0'], /^edge-infer: teach-in start: windows must be a whole number ≥ 1, got 0$/],
      [['teach-in', 'start', ...args, '--windows', '-5'], /^edge-infer: teach-in start: windows must be a whole number ≥ 1, got -5$/],
      [['teach-in', 'start', ...args, '--windows', 'many'], /^edge-infer: --windows: expected a whole number, got 'many'$/],
      [['teach-in', 'start', ...args], /^edge-infer: teach-in start: expected --windows or --minutes$/],
      [['teach-in', 'cancel', ...args], /^edge-infer: teach-in cancel: teach-in of fan-2 \(speed-anomaly\): none is running to cancel$/],
      [['teach-in', 'start', '--url', url, '--device', 'pump-7', '--model', 'speed-anomaly', '--windows', '100'], /^edge-infer: teach-in start: device 'pump-7' has no results of model 'speed-anomaly' yet$/],
      [['teach-in', 'status', '--url', url, '--device', 'fan-2', '--model', 'other'], /^edge-infer: teach-in status: model 'other' is not served here$/],
      [['teach-in', 'stop', ...args], /^edge-infer: teach-in: expected start, status or cancel, got 'stop'$/],
      [['teach-in', 'status', '--url', 'ftp://gw'], /^edge-infer: --url: expected an http:\/\/ or https:\/\/ address, got 'ftp:\/\/gw'$/],
      [['teach-in', 'status', '--url', 'gateway:8080'], /^edge-infer: --url: expected the gateway's address, such as http:\/\/127\.0\.0\.1:8080, got 'gateway:8080'$/],
      [['teach-in', 'status', '--url', 'http://'], /^edge-infer: --url: expected the gateway's address, such as http:\/\/127\.0\.0\.1:8080, got 'http:\/\/'$/],
      [['teach-in', 'status', '--url', `http://127.0.0.1:${closed}`, '--device', 'fan-2', '--model', 'x'], new RegExp(`^edge-infer: teach-in status: the gateway at http://127\\.0\\.0\\.1:${closed} did not answer \\(ECONNREFUSED\\)$`)],
    ] as Array<[string[], RegExp]>;
    for (const [argv, line] of bad) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expectOneLine(r.err, line);
    }
  });

  it('should apply the baselines at once after a restart', async () => {
    // A teach-in learning at the stop: its windows recorded so far are written by the stop, not lost.
    const api = `http://127.0.0.1:${gateway!.httpPort}/api/`;
    await fetch(`${api}teach-in/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device: 'fan-2', model: 'speed-anomaly', windows: 100 }) });
    for (const s of [2, 2.1, 2.05]) await publish(pub!, 'plant/fan-2/speed', JSON.stringify({ speed: speedFor(s) }));
    const learned = async (): Promise<number> => ((await (await fetch(`${api}teach-in?device=fan-2&model=speed-anomaly`)).json()) as { learning?: { windows: number } }).learning?.windows ?? 0;
    for (let i = 0; i < 200 && (await learned()) < 3; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await learned()).toBe(3);
    const before = ((await (await fetch(`http://127.0.0.1:${gateway!.httpPort}/api/teach-in`)).json()) as { teachIns: Array<{ device: string; threshold: number }> }).teachIns;
    const recordedBefore = gateway!.teachIn!.recorder.stats.windows;
    await gateway!.stop();
    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    const db = new Database(config.storage.path, { readonly: true });
    try {
      expect(db.prepare("SELECT count(*) FROM taught_windows WHERE baseline_id = (SELECT id FROM baselines WHERE device = 'fan-2' AND state = 'learning')").pluck().get()).toBe(3);
    } finally {
      db.close();
    }
    expect(recordedBefore).toBe(200);
    expect(((await (await fetch(`http://127.0.0.1:${gateway.httpPort}/api/teach-in`)).json()) as { teachIns: unknown[] }).teachIns).toEqual(before);
    const got: Array<{ baseline: string; threshold: number; anomaly: boolean }> = [];
    sub!.removeAllListeners('message');
    sub!.on('message', (_topic, payload) => got.push(JSON.parse(String(payload))));
    // pump-1's healthy windows that reach the card's threshold: judged by its own at once.
    for (const s of [5.1, 5.2, 5.15]) await publish(pub!, 'plant/pump-1/speed', JSON.stringify({ speed: speedFor(s) }));
    await waitFor(() => got.length === 3, 20_000, 'three results after the restart');
    const own = before.find((t) => t.device === 'pump-1')!.threshold;
    expect(got).toMatchObject(Array(3).fill({ baseline: 'active', threshold: own, anomaly: false }));
    // fan-2's teach-in, resumed by the restart, is not the next test's.
    const cancelled = await fetch(`http://127.0.0.1:${gateway.httpPort}/api/teach-in/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device: 'fan-2', model: 'speed-anomaly' }) });
    expect(cancelled.status).toBe(200);
  });

  it('should learn with its pipeline\'s K: a lone spike taught under 3-in-a-row alerts does not raise the threshold', async () => {
    await gateway!.stop();
    const three = { ...config, pipelines: config.pipelines.map((p) => ({ ...p, alerts: { ...p.alerts, consecutive: 3 } })) };
    gateway = new Gateway(three, () => undefined);
    await gateway.start();
    const api = `http://127.0.0.1:${gateway.httpPort}/api/`;
    const status = async (): Promise<{ state: string; threshold: number; learning?: { consecutive: number }; baseline: { rule: string; consecutive: number; maxScore: number; maxRunScore: number | null } }> =>
      (await (await fetch(`${api}teach-in?device=fan-2&model=speed-anomaly`)).json()) as never;
    // The baseline learned under K = 1 keeps its rule.
    expect(await status()).toMatchObject({ state: 'active', baseline: { rule: 'windows', consecutive: 1 } });
    const started = await fetch(`${api}teach-in/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device: 'fan-2', model: 'speed-anomaly', windows: 50 }) });
    expect(started.status).toBe(200);
    expect(await status()).toMatchObject({ state: 'learning', learning: { consecutive: 3 } });
    const got: unknown[] = [];
    sub!.removeAllListeners('message');
    sub!.on('message', (_topic, payload) => got.push(JSON.parse(String(payload))));
    // fan-2 healthy near 2, with one knock at 4 (a single window).
    const scores = Array.from({ length: 50 }, (_, i) => (i === 25 ? 4 : quiet(300 + i)));
    for (const s of scores) await publish(pub!, 'plant/fan-2/speed', JSON.stringify({ speed: speedFor(s) }));
    await waitFor(() => got.length === 50, 20_000, 'fifty results');
    const s = await status();
    expect(s).toMatchObject({ state: 'active', baseline: { rule: 'runs', consecutive: 3 } });
    expect(s.baseline.maxScore).toBeCloseTo(4, 4);
    expect(s.baseline.maxRunScore).toBeLessThan(2.3);
    expect(s.threshold).toBeLessThan(3); // the single-window rule would have put it above 4
  });
});
