// /health says what the broker's session holds and how the broker is, on a real Mosquitto: after
// a restart that finds its persistent session (and so subscribes to nothing) the subscriptions
// are the grants remembered from the last SUBSCRIBE; a log from before grants were kept makes
// the gateway subscribe again rather than list nothing; the broker's state says since when, and
// while it is away, why.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Gateway } from '../../runtime/gateway/gateway';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { client, publish, waitFor } from '../helpers/gateway';
import { speedTableConfig } from '../helpers/speed-models';

const JSON_SPEED = { kind: 'json', channels: ['speed'] } as const;
const SPEEDS = { name: 'speeds', topic: 'machine/{device}/speed', qos: 1, decoder: JSON_SPEED, model: 'speed-table' };
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** One gateway's config: its client id and log stay the same across the restarts of a test. */
function config(brokerUrl: string, protocol: 4 | 5, pipelines: unknown[] = [SPEEDS]) {
  return speedTableConfig({ url: brokerUrl, protocol, clientId: `gw-health-${protocol}`, persistentSession: true }, pipelines, 'health test config');
}

describe('/health across restarts', () => {
  let broker: MosquittoBroker | undefined;
  let gateway: Gateway | undefined;
  let pub: MqttClient | undefined;
  afterEach(async () => {
    pub?.end(true);
    await gateway?.stop();
    await broker?.stop();
    pub = gateway = broker = undefined;
  });

  /** Starts a gateway on the config and waits until it is connected. */
  async function start(c: ReturnType<typeof config>): Promise<Gateway> {
    gateway = new Gateway(c, () => undefined);
    await gateway.start();
    await waitFor(() => gateway!.health().broker === 'connected', 10_000, 'the gateway connected');
    return gateway;
  }

  async function restart(c: ReturnType<typeof config>): Promise<Gateway> {
    await gateway?.stop();
    gateway = undefined;
    return start(c);
  }

  for (const protocol of [4, 5] as const) {
    it(`should list the subscriptions the session kept after a restart, marked remembered, with the QoS granted before (MQTT ${protocol === 5 ? '5' : '3.1.1'})`, async () => {
      broker = await startMosquitto();
      const c = config(broker.url, protocol);
      const first = await start(c);
      await waitFor(() => first.health().subscriptions.length > 0, 5000, 'the SUBACK');
      expect(first.health().subscriptions).toEqual([{ filter: 'machine/+/speed', qos: 1 }]);

      const second = await restart(c);
      const h = second.health();
      expect(h).toMatchObject({ ok: true, broker: 'connected', brokerSince: expect.stringMatching(ISO), brokerError: null });
      expect(h.subscriptions).toEqual([{ filter: 'machine/+/speed', qos: 1, remembered: true, grantedAt: expect.stringMatching(ISO) }]);
      // Nothing was subscribed to again: the session's subscription still delivers.
      pub = await client(broker.url);
      await publish(pub, 'machine/m-1/speed', JSON.stringify({ speed: 1 }), 1);
      await waitFor(() => second.log.counts().results === 1, 10_000, 'a message through the kept subscription');
      expect(second.health().subscriptions).toEqual(h.subscriptions);
    }, 60_000);
  }

  it('should subscribe again when the session is present but the log remembers no grant (a log from before), taking no retained message twice', async () => {
    broker = await startMosquitto();
    pub = await client(broker.url);
    await publish(pub, 'machine/r-1/speed', JSON.stringify({ speed: 1 }), 1, true);
    const c = config(broker.url, 5);
    const first = await start(c);
    await waitFor(() => first.log.counts().results === 1, 10_000, 'the retained message');
    await first.stop();
    gateway = undefined;
    // The log forgets its grants, as one written before they were kept.
    const db = new Database(c.storage.path);
    db.prepare('DELETE FROM mqtt_subscriptions').run();
    db.close();

    const second = await start(c);
    await waitFor(() => second.health().subscriptions.length > 0, 5000, 'the fresh SUBACK');
    expect(second.health().subscriptions).toEqual([{ filter: 'machine/+/speed', qos: 1 }]);
    await publish(pub, 'machine/m-2/speed', JSON.stringify({ speed: 2 }), 1);
    await waitFor(() => second.log.latestPerDevice().some((r) => r.device === 'm-2'), 10_000, 'a message after the restart');
    await second.pipelines[0].drain();
    // MQTT 5 asked for retained messages only where the session had no subscription yet.
    expect(second.log.latestPerDevice().map((r) => r.device)).toEqual(['m-2', 'r-1']);
    expect(second.log.counts().results).toBe(2);
  }, 60_000);

  it('should subscribe to a filter the session does not hold (a pipeline added) and list it beside the remembered one', async () => {
    broker = await startMosquitto();
    const c = config(broker.url, 5);
    const first = await start(c);
    await waitFor(() => first.health().subscriptions.length > 0, 5000, 'the SUBACK');
    const added = { ...c, pipelines: [...c.pipelines, ...config(broker.url, 5, [{ ...SPEEDS, name: 'lines', topic: 'line/{device}/speed', qos: 0 }]).pipelines] };
    const second = await restart(added);
    await waitFor(() => second.health().subscriptions.length === 2, 5000, 'the added subscription');
    expect(second.health().subscriptions).toEqual([
      { filter: 'line/+/speed', qos: 0 },
      { filter: 'machine/+/speed', qos: 1, remembered: true, grantedAt: expect.stringMatching(ISO) },
    ]);
    pub = await client(broker.url);
    await publish(pub, 'line/l-1/speed', JSON.stringify({ speed: 3 }), 1);
    await publish(pub, 'machine/m-1/speed', JSON.stringify({ speed: 1 }), 1);
    await waitFor(() => second.log.counts().results === 2, 10_000, 'a message on each filter');
  }, 60_000);

  it('should start while its broker is away, say why, and connect, subscribe and log once the broker is up', async () => {
    // A power cut took the gateway and its broker: the gateway's unit may start first.
    broker = await startMosquitto();
    await broker.stop();
    const reported: string[] = [];
    gateway = new Gateway(config(broker.url, 5), (err) => reported.push((err as Error).message));
    await gateway.start();
    const g = gateway;
    expect(g.health()).toMatchObject({ ok: false, broker: expect.stringMatching(/connecting|disconnected/), brokerError: expect.stringMatching(/ECONNREFUSED/) });
    expect(reported).toEqual([expect.stringMatching(/^broker mqtt:\/\/127\.0\.0\.1:\d+ unreachable \(connect ECONNREFUSED .*\); retrying$/)]);

    await broker.restart();
    await waitFor(() => g.health().broker === 'connected' && g.health().subscriptions.length === 1, 10_000, 'connected and subscribed');
    expect(g.health().ok).toBe(true);
    pub = await client(broker.url);
    await publish(pub, 'machine/m-1/speed', JSON.stringify({ speed: 1 }), 1);
    await waitFor(() => g.log.counts().results === 1, 10_000, 'the first message logged');
  }, 30_000);

  it('should still fail to start when the broker answers and refuses it', async () => {
    const passwords = path.join(mkdtempSync(path.join(tmpdir(), 'edge-infer-passwd-')), 'passwd');
    execFileSync('mosquitto_passwd', ['-c', '-b', passwords, 'plant', 'secret']);
    broker = await startMosquitto({ config: [`password_file ${passwords}`] });
    const c = config(broker.url.replace('mqtt://', 'mqtt://plant:wrong@'), 5);
    gateway = new Gateway(c, () => undefined);
    await expect(gateway.start()).rejects.toThrow(/^broker mqtt:\/\/plant:wrong@127\.0\.0\.1:\d+: .*(Not authorized|Bad User Name or Password)/);
  }, 30_000);

  it('should say since when the broker is connected, and while it is away since when and why', async () => {
    broker = await startMosquitto();
    const c = config(broker.url, 5);
    const g = await start(c);
    const up = g.health();
    expect(up).toMatchObject({ broker: 'connected', brokerError: null });
    expect(Date.parse(up.brokerSince!)).toBeLessThanOrEqual(Date.now());

    const stoppedMs = Date.now();
    await broker.stop();
    await waitFor(() => g.health().brokerError !== null, 10_000, 'a failed reconnect');
    const away = g.health();
    expect(away).toMatchObject({ ok: false, broker: expect.stringMatching(/connecting|disconnected/), brokerError: expect.stringMatching(/ECONNREFUSED/) });
    expect(Date.parse(away.brokerSince!)).toBeGreaterThanOrEqual(stoppedMs - 5);
    // The state goes between connecting and disconnected at every retry: the time stays that of the loss.
    await new Promise((r) => setTimeout(r, 500));
    expect(g.health().brokerSince).toBe(away.brokerSince);

    await broker.restart();
    await waitFor(() => g.health().broker === 'connected', 10_000, 'the reconnect');
    const back = g.health();
    expect(back).toMatchObject({ ok: true, brokerError: null });
    expect(Date.parse(back.brokerSince!)).toBeGreaterThan(Date.parse(away.brokerSince!));
  }, 60_000);
});
