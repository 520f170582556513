// Faults a plant produces, through a running gateway (aedes, tiny real models): a publisher that
// makes up device ids, devices that fall silent, a journaled message that stopped the gateway
// at every start, and alerts that must follow a machine's state rather than every window.
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { type GatewayConfig, parseGatewayConfig } from '../../runtime/gateway/config';
import { Gateway } from '../../runtime/gateway/gateway';
import { ResultStore } from '../../runtime/store';
import { MAX_REPLAY_ATTEMPTS } from '../../runtime/stream/replay';
import { type TestBroker, startAedes } from '../helpers/brokers';
import { client, publish, tempDir, waitFor } from '../helpers/gateway';
import { gatherModel } from '../helpers/models';
import { modelsDir, speedCard } from '../helpers/speed-models';

const json = { kind: 'json', channels: ['speed'] } as const;

function configFor(broker: TestBroker, db: string, pipeline: Record<string, unknown>): GatewayConfig {
  // speed-quad: four samples a window (a device's first samples wait in a partial window);
  // speed-one: one sample a window, score 10 × round(speed), threshold 15.
  const models = modelsDir([
    { card: speedCard('speed-quad', { window: 4 }), onnx: gatherModel() },
    { card: speedCard('speed-one', { task: 'anomaly', threshold: 15 }), onnx: gatherModel() },
  ]);
  return parseGatewayConfig(
    {
      broker: { url: broker.url, protocol: 4, clientId: `gw-${Math.random().toString(36).slice(2, 8)}`, reconnectMs: 200 },
      models,
      storage: { path: db },
      http: { port: 0, host: '127.0.0.1' },
      engine: { backend: 'wasm', threads: 1 },
      pipelines: [{ name: 'machines', topic: 'machine/{device}/speed', decoder: json, model: 'speed-quad', ...pipeline }],
    },
    'devices config',
  );
}

describe('devices, poison messages and alerts in the gateway', () => {
  let broker: TestBroker | undefined;
  let gateway: Gateway | undefined;
  let pub: MqttClient | undefined;
  const reported: string[] = [];
  afterEach(async () => {
    pub?.end(true);
    await gateway?.stop();
    await broker?.stop();
    pub = gateway = broker = undefined;
  });

  const start = async (config: GatewayConfig): Promise<Gateway> => {
    gateway = new Gateway(config, (err) => reported.push(err instanceof Error ? err.message : String(err)));
    await gateway.start();
    return gateway;
  };

  it('should refuse devices past the limit as dead letters, evict silent ones so their journal rows retire, then take new devices again', async () => {
    broker = await startAedes();
    const g = await start(configFor(broker, path.join(tempDir(), 'log.db'), { devices: { max: 50, idleS: 1 } }));
    pub = await client(broker.url);
    await Promise.all(Array.from({ length: 60 }, (_, i) => publish(pub!, `machine/made-up-${i}/speed`, JSON.stringify({ speed: 1 }))));
    const pipeline = g.pipelines[0];
    const limited = () => g.log.deadLetters({ limit: 100 }).filter((l) => l.code === 'E_DEVICE_LIMIT');
    await waitFor(() => limited().length === 10 && g.log.journalDepth() === 50, 10_000, 'ten devices refused and fifty held');
    const refused = limited();
    expect(refused[0].reason).toMatch(/device 'made-up-\d+': speed-quad already follows 50 devices/);
    // The 50 partial windows hold their messages until the devices fall silent past idleS.
    expect(pipeline.windows.size).toBe(50);
    expect(g.log.journalDepth()).toBe(50);
    await waitFor(() => pipeline.windows.size === 0 && g.log.journalDepth() === 0, 10_000, 'the silent devices to be evicted and their messages retired');
    const metrics = await g.metrics.text();
    expect(metrics).toMatch(/edge_infer_evicted_devices_total\{pipeline="machines"\} 50/);
    expect(metrics).toMatch(/edge_infer_dead_letters_total\{pipeline="machines",code="E_DEVICE_LIMIT"\} 10/);
    // Room again: a new device's window is logged.
    for (let i = 0; i < 4; i++) await publish(pub, 'machine/late-1/speed', JSON.stringify({ speed: 1 }));
    await waitFor(() => g.log.latestPerDevice().some((r) => r.device === 'late-1'), 10_000, 'the window of late-1');
  });

  it(`should dead-letter a journaled message the replay was on ${MAX_REPLAY_ATTEMPTS} times as the process stopped, and replay the others`, async () => {
    broker = await startAedes();
    const db = path.join(tempDir(), 'log.db');
    const config = configFor(broker, db, {});
    // A previous run journaled three messages; the gateway stopped while replaying the first
    // (three times) and the second (once).
    const before = ResultStore.open({ path: db });
    before.journal(['a', 'b', 'c'].map((key, i) => ({ pipeline: 'machines', key, topic: `machine/m-${i}/speed`, payload: Buffer.from(JSON.stringify({ speed: [1, 1, 1, 1] })), receivedMs: 1_700_000_000_000 })));
    await before.close();
    const raw = new Database(db);
    raw.prepare("UPDATE journal SET attempts = ? WHERE key = 'a'").run(MAX_REPLAY_ATTEMPTS);
    raw.prepare("UPDATE journal SET attempts = 1 WHERE key = 'b'").run();
    raw.close();

    const g = await start(config);
    const [letter] = g.log.deadLetters({ limit: 10 });
    expect(letter).toMatchObject({ code: 'E_POISON', device: 'm-0', topic: 'machine/m-0/speed' });
    expect(letter.reason).toMatch(/machines: the gateway stopped 3 times while processing this message .* set aside unprocessed/);
    expect(Buffer.from(letter.payload).toString()).toBe(JSON.stringify({ speed: [1, 1, 1, 1] }));
    expect(g.log.latestPerDevice().map((r) => r.device).sort()).toEqual(['m-1', 'm-2']);
    expect(g.log.pendingJournal('machines')).toEqual([]);
    expect(g.log.journalDepth()).toBe(0);
    expect(reported.some((r) => /E_POISON|stopped 3 times/.test(r))).toBe(true);
  });

  it('should clear the attempts of replayed rows that stay journaled (a partial window), so later restarts do not blame them', async () => {
    broker = await startAedes();
    const db = path.join(tempDir(), 'log.db');
    const before = ResultStore.open({ path: db });
    before.journal([{ pipeline: 'machines', key: 'partial', topic: 'machine/p-1/speed', payload: Buffer.from(JSON.stringify({ speed: 1 })), receivedMs: 1_700_000_000_000 }]);
    await before.close();
    const raw = new Database(db);
    raw.prepare('UPDATE journal SET attempts = 2').run();
    raw.close();
    const g = await start(configFor(broker, db, {}));
    expect(g.log.pendingJournal('machines').map((r) => [r.key, r.attempts])).toEqual([['partial', 0]]);
  });

  it('should replay an untimed reading that arrived in the same ms as the last one logged, and skip only that logged one', async () => {
    broker = await startAedes();
    const db = path.join(tempDir(), 'log.db');
    const T = 1_700_000_000_123;
    // Before the stop: readings 'a' and 'b' of m-0 arrived in the same ms; 'a' (one window) was
    // logged, and 'b' was still journaled. 'a2' stands for a journaled row of the logged window.
    const before = ResultStore.open({ path: db });
    before.journal(['a2', 'b'].map((key) => ({ pipeline: 'machines', key, topic: 'machine/m-0/speed', payload: Buffer.from(JSON.stringify({ speed: 1 })), receivedMs: T })));
    await before.commit({ cursors: [{ pipeline: 'machines', device: 'm-0', lastWindowStartMs: T, lastWindowKeys: ['a2'] }] });
    await before.close();
    const g = await start(configFor(broker, db, { model: 'speed-one' }));
    expect(g.log.latestPerDevice().map((r) => [r.device, r.windowStartMs, r.messageKeys])).toEqual([['m-0', T, ['b']]]);
    expect(g.pipelines[0].replaySkipped).toBe(1);
    expect(g.log.journalDepth()).toBe(0);
  });

  it('should stop within bounds while the log is locked, keeping the messages not logged journaled for the next start', async () => {
    broker = await startAedes();
    const db = path.join(tempDir(), 'log.db');
    // Results wait up to a second to share a commit: the lock below is taken while they wait.
    const config = configFor(broker, db, { model: 'speed-one' });
    config.storage.batchMs = 1000;
    const g = await start(config);
    pub = await client(broker.url);
    for (let i = 0; i < 5; i++) await publish(pub, `machine/s-${i}/speed`, JSON.stringify({ speed: 1 }));
    await waitFor(() => g.log.journalDepth() === 5, 5000, 'five readings journaled');
    const other = new Database(db);
    other.exec('BEGIN IMMEDIATE');
    const t0 = Date.now();
    try {
      await g.stop();
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    gateway = undefined;
    // The stop's bound (10 s) and one try in flight at its end (the busy timeout, 5 s): within
    // systemd's 30 s, with room for a loaded machine.
    expect(Date.now() - t0).toBeLessThan(25_000);
    expect(reported.some((r) => /the log still cannot commit after 10 s: stopping without it/.test(r))).toBe(true);
    const again = await start(configFor(broker, db, { model: 'speed-one' }));
    await waitFor(() => again.log.counts().results === 5, 10_000, 'the five readings logged after the restart');
  }, 40_000);

  it('should alert once when a machine turns anomalous, remind after the cooldown, and clear when it is back to normal', async () => {
    broker = await startAedes();
    const g = await start(configFor(broker, path.join(tempDir(), 'log.db'), { model: 'speed-one', decoder: { ...json, timestampField: 't' }, alerts: { consecutive: 2, cooldownS: 10, clearAfter: 2 } }));
    pub = await client(broker.url);
    const T0 = 1_700_000_000_000;
    // One sample a second: 1 is normal (score 10), 2 anomalous (score 20 ≥ 15).
    const speeds = [1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 2, 1, 1, 2];
    for (const [i, speed] of speeds.entries()) await publish(pub, 'machine/pump-1/speed', JSON.stringify({ speed, t: T0 + i * 1000 }));
    await waitFor(() => g.log.counts().results === speeds.length, 10_000, 'every window logged');
    // Each window of one sample logs that sample's RMS: the speed itself, charted from the log.
    const rms = g.log.chart({ device: 'pump-1', model: 'speed-one', fromMs: T0, toMs: T0 + 60_000, maxPoints: 100, field: 'rms' });
    expect(rms.points.map((p) => p.max)).toEqual(speeds);
    const alerts = g.log.alerts({ limit: 100 }).reverse();
    // Raised at the second anomalous window (t=2 s), reminded 10 s later (t=12 s), cleared after
    // two normal windows (t=16 s); the anomalous window at t=17 s starts a new run of one.
    expect(alerts.map((a) => a.kind)).toEqual(['anomaly', 'reminder', 'clear']);
    expect(alerts[0].message).toMatch(/pump-1: Speed model speed-one reports score 20.0 over threshold 15 for 2 windows in a row/);
    expect(alerts[1].message).toMatch(/still reports/);
    expect(alerts[2].message).toMatch(/back to normal after 2 normal windows/);
  });
});
