// Mosquitto goes away for 30 s while the gateway works: results wait in the outbox and, once the
// broker is back (same port, same persistence), every logged result reaches a persistent QoS 1
// subscriber of the results topic, in outbox order, none missing.
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../runtime/gateway/gateway';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { client, testConfig, vibrationBlock, waitFor } from '../helpers/gateway';

const DEVICES = ['press-1', 'press-2', 'pump-1'];
const OUTAGE_MS = 30_000;
/** One block per device every this many ms while streaming. */
const EVERY_MS = 100;
/** Windows of 2048 samples every 1024 over a device's blocks of 512 (both models). */
const windowsOf = (blocks: number) => Math.floor((blocks * 512 - 2048) / 1024) + 1;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the gateway through a broker outage', () => {
  let broker: MosquittoBroker | undefined;
  let gateway: Gateway | undefined;
  let pub: MqttClient | undefined;
  let sub: MqttClient | undefined;
  afterAll(async () => {
    pub?.end(true);
    sub?.end(true);
    await gateway?.stop();
    await broker?.stop();
  });

  it('should publish every logged result once the broker is back, in outbox order, none missing', async () => {
    broker = await startMosquitto();
    const reported: string[] = [];
    gateway = new Gateway(
      testConfig(broker.url, { broker: { url: broker.url, protocol: 5, clientId: 'gw-outage', reconnectMs: 200, persistentSession: true } }),
      (err) => reported.push(err instanceof Error ? err.message : String(err)),
    );
    await gateway.start();
    const log = gateway.log;

    // A persistent QoS 1 subscriber: the broker keeps what it has not delivered across its restart.
    const received: Array<{ model: string; device: string; startMs: number }> = [];
    sub = await client(broker.url, { clientId: 'outage-results', clean: false });
    sub.on('message', (_topic, payload) => {
      const r = JSON.parse(String(payload)) as { model: string; device: string; window: { start: string } };
      received.push({ model: r.model, device: r.device, startMs: Date.parse(r.window.start) });
    });
    await new Promise((resolve) => sub!.subscribe('edge-infer/results/#', { qos: 1 }, resolve));

    pub = await client(broker.url, { clientId: 'outage-plant', clean: false });
    let seq = 0;
    const acks: Promise<void>[] = [];
    const publishRound = () => {
      for (const device of DEVICES) {
        acks.push(new Promise((resolve, reject) => pub!.publish(`plant/${device}/vibration`, vibrationBlock(seq), { qos: 1 }, (err) => (err ? reject(err) : resolve()))));
      }
      seq++;
    };
    const stream = async (ms: number) => {
      for (const end = Date.now() + ms; Date.now() < end; ) {
        publishRound();
        await sleep(EVERY_MS);
      }
    };

    await stream(5000);
    // A burst (devices catching up after a hiccup) just before the broker goes: the gateway takes
    // messages faster than it runs their windows, so it is still working through them when it does.
    for (let i = 0; i < 200; i++) publishRound();
    await waitFor(() => gateway!.pipelines.some((p) => p.scheduler.depth >= 40), 20_000, 'windows queued for inference');
    await broker.stop();
    const resultsAtStop = log.counts().results;
    // Devices keep measuring; their client holds the blocks until the broker is back.
    let outboxDuringOutage = 0;
    const watch = setInterval(() => (outboxDuringOutage = Math.max(outboxDuringOutage, log.outboxDepth())), 100);
    await stream(OUTAGE_MS);
    clearInterval(watch);
    expect(gateway.health()).toMatchObject({ ok: false, broker: expect.stringMatching(/connecting|disconnected/) });
    const resultsDuringOutage = log.counts().results - resultsAtStop;
    await broker.restart();
    await stream(5000);
    await Promise.all(acks);

    const blocks = seq;
    const expected = 2 * DEVICES.length * windowsOf(blocks);
    await waitFor(() => log.counts().results === expected && log.outboxDepth() === 0 && new Set(received.map((r) => `${r.model}/${r.device}/${r.startMs}`)).size === expected, 60_000, `${expected} results logged and received`);

    // Outbox order is commit order: the log's order per device and model.
    const file = new Database(log.path, { readonly: true });
    for (const model of ['fault-classifier', 'vibration-anomaly']) {
      for (const device of DEVICES) {
        const starts = file.prepare('SELECT window_start_ms FROM results WHERE device = ? AND model = ? ORDER BY id').pluck().all(device, model) as number[];
        expect(starts).toHaveLength(windowsOf(blocks));
        const firsts: number[] = [];
        const seen = new Set<number>();
        for (const r of received) {
          if (r.model !== model || r.device !== device || seen.has(r.startMs)) continue; // at least once: a resent result is a duplicate
          seen.add(r.startMs);
          firsts.push(r.startMs);
        }
        expect(firsts, `${device} ${model}: results in the order they were logged`).toEqual(starts);
      }
    }
    file.close();
    // The outage was real: results were made and waited in the outbox while the broker was gone.
    expect(resultsDuringOutage).toBeGreaterThan(0);
    expect(outboxDuringOutage).toBeGreaterThanOrEqual(resultsDuringOutage);
    expect(gateway.health()).toMatchObject({ ok: true, broker: 'connected', outbox: 0 });
    // Reports while the broker was away are connection errors and the broker's return, nothing else.
    expect(reported.filter((m) => !/ECONNREFUSED|ECONNRESET|connack|closed|EPIPE|reachable again/i.test(m))).toEqual([]);
  }, 110_000);
});


describe('the gateway stopping while the broker is away', () => {
  const brokers: MosquittoBroker[] = [];
  afterAll(async () => {
    for (const b of brokers) await b.stop();
  });

  /** Streams a burst and cuts the broker off (`cut`) while results are on their way out; then stops the gateway. */
  async function stopWithResultsInFlight(cut: (broker: MosquittoBroker) => Promise<void> | void): Promise<{ stopMs: number; outboxInLog: number; results: number }> {
    const broker = await startMosquitto();
    brokers.push(broker);
    const config = testConfig(broker.url, { broker: { url: broker.url, protocol: 5, clientId: `gw-away-${brokers.length}`, reconnectMs: 200, persistentSession: true } });
    const gateway = new Gateway(config, () => undefined);
    await gateway.start();
    const pub = await client(broker.url, { clientId: `away-plant-${brokers.length}` });
    try {
      for (let seq = 0; seq < 600; seq++) for (const device of DEVICES) pub.publish(`plant/${device}/vibration`, vibrationBlock(seq), { qos: 1 });
      // The burst is worked off in a second or so, and windows wait in the queue only part of that
      // time: asked at every turn of the event loop, not every 50 ms, so the moment is not missed.
      const until = Date.now() + 20_000;
      while (!(gateway.log.counts().results > 20 && gateway.pipelines.some((p) => p.scheduler.depth > 0))) {
        if (Date.now() > until) throw new Error('timed out after 20000 ms waiting for results on their way out');
        await new Promise((r) => setImmediate(r));
      }
      await cut(broker);
      await sleep(500);
    } finally {
      pub.end(true);
    }
    const t0 = Date.now();
    await Promise.race([gateway.stop(), sleep(20_000)]);
    const stopMs = Date.now() - t0;
    // Whatever the broker did not acknowledge is still in the outbox, for the next start.
    const db = new Database(config.storage.path, { readonly: true });
    try {
      return { stopMs, outboxInLog: db.prepare('SELECT COUNT(*) FROM outbox').pluck().get() as number, results: db.prepare('SELECT COUNT(*) FROM results').pluck().get() as number };
    } finally {
      db.close();
    }
  }

  it('should stop within seconds when the broker is gone, keeping unacknowledged results in the outbox', async () => {
    const r = await stopWithResultsInFlight((broker) => broker.stop());
    expect(r.stopMs).toBeLessThan(5000);
    expect(r.results).toBeGreaterThan(20);
    expect(r.outboxInLog).toBeGreaterThan(0);
  }, 60_000);

  it('should stop within seconds when the broker hangs (no acknowledgements), keeping unacknowledged results in the outbox', async () => {
    const r = await stopWithResultsInFlight((broker) => broker.pause());
    expect(r.stopMs).toBeLessThan(5000);
    expect(r.outboxInLog).toBeGreaterThan(0);
  }, 60_000);
});
