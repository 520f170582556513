// The gateway's side of the MQTT contract, on a real Mosquitto: one subscription per filter at
// the highest QoS its pipelines ask for, retained messages taken once; back-pressure that
// reaches the broker; results the broker refuses leave the outbox as dead letters; inbound keys
// only where a redelivery can come.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Gateway } from '../../runtime/gateway/gateway';
import { type MosquittoBroker, type TestBroker, startAedes, startMosquitto } from '../helpers/brokers';
import { client, publish, tempDir, waitFor } from '../helpers/gateway';
import { speedTableConfig } from '../helpers/speed-models';

const JSON_SPEED = { kind: 'json', channels: ['speed'] } as const;

function config(brokerUrl: string, pipelines: unknown[], broker: Record<string, unknown> = {}) {
  return speedTableConfig({ url: brokerUrl, protocol: 5, clientId: `gw-${Math.random().toString(36).slice(2, 8)}`, ...broker }, pipelines, 'broker test config');
}


const metric = async (gateway: Gateway, name: string, labels = ''): Promise<number> => {
  const line = (await gateway.metrics.text()).split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}}` : `${name} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
};

describe('the gateway on Mosquitto', () => {
  let broker: MosquittoBroker | TestBroker | undefined;
  let gateway: Gateway | undefined;
  let pub: MqttClient | undefined;
  afterEach(async () => {
    pub?.end(true);
    await gateway?.stop();
    await broker?.stop();
    pub = gateway = broker = undefined;
  });

  it('should subscribe once per filter at the highest QoS of its pipelines, and take a retained message once across a reconnect', async () => {
    const mosquitto = await startMosquitto();
    broker = mosquitto;
    pub = await client(mosquitto.url);
    await publish(pub, 'machine/r-1/speed', JSON.stringify({ speed: 1 }), 1, true);
    gateway = new Gateway(
      config(mosquitto.url, [
        { name: 'at-most-once', topic: 'machine/{device}/speed', qos: 0, decoder: JSON_SPEED, model: 'speed-table' },
        { name: 'at-least-once', topic: 'machine/{device}/speed', qos: 1, decoder: JSON_SPEED, model: 'speed-table' },
      ]),
      () => undefined,
    );
    await gateway.start();
    await waitFor(() => gateway!.health().subscriptions.length > 0, 5000, 'the SUBACK');
    expect(gateway.health().subscriptions).toEqual([{ filter: 'machine/+/speed', qos: 1 }]);
    await waitFor(() => gateway!.log.counts().results === 2, 10_000, 'the retained message in both pipelines');
    // Broker restart: the gateway reconnects to its persistent session, which keeps the subscription.
    await mosquitto.restart();
    await waitFor(() => gateway!.health().broker === 'connected', 10_000, 'the reconnect');
    pub.end(true);
    pub = await client(mosquitto.url);
    await publish(pub, 'machine/r-2/speed', JSON.stringify({ speed: 2 }), 1);
    await waitFor(() => gateway!.log.latestPerDevice().some((r) => r.device === 'r-2'), 10_000, 'a message after the reconnect');
    await gateway.pipelines[1].drain();
    expect(await metric(gateway, 'edge_infer_messages_total', 'pipeline="at-least-once"')).toBeGreaterThanOrEqual(2);
    // The retained message of r-1: once per pipeline, never again.
    expect(gateway.log.series({ device: 'r-1', model: 'speed-table', fromMs: 0, toMs: Date.now() + 1000, maxPoints: 100 })).toHaveLength(2);
  });

  it('should dead-letter a message whose device level is empty, count it, and handle the messages after it', async () => {
    broker = await startMosquitto();
    const reported: unknown[] = [];
    gateway = new Gateway(config(broker.url, [{ name: 'speeds', topic: 'machine/{device}/speed', decoder: JSON_SPEED, model: 'speed-table' }]), (err) => reported.push(err));
    await gateway.start();
    await waitFor(() => gateway!.health().subscriptions.length > 0, 5000, 'the SUBACK');
    pub = await client(broker.url);
    // MQTT's + matches an empty level: machine//speed is on machine/+/speed.
    await publish(pub, 'machine//speed', JSON.stringify({ speed: 1 }), 1);
    await waitFor(() => gateway!.log.counts().deadLetters === 1, 10_000, 'the dead letter');
    const [l] = gateway.log.deadLetters();
    expect(l).toMatchObject({ code: 'E_INPUT_VALUE', topic: 'machine//speed', device: null });
    expect(l.reason).toMatch(/topic 'machine\/\/speed'/);
    expect(l.reason).toMatch(/device id.*empty/);
    expect(await metric(gateway, 'edge_infer_dead_letters_total', 'pipeline="speeds",code="E_INPUT_VALUE"')).toBe(1);
    for (let i = 0; i < 3; i++) await publish(pub, `machine/m-${i}/speed`, JSON.stringify({ speed: 2 }), 1);
    await waitFor(() => gateway!.log.counts().results === 3, 10_000, 'the messages after it');
    await gateway.pipelines[0].drain();
    expect(gateway.log.journalDepth()).toBe(0);
    expect(reported).toEqual([]);
  });

  it('should stop reading from the broker while the queue is full (pause), never holding more windows than it allows, and handle every message', async () => {
    broker = await startMosquitto();
    gateway = new Gateway(
      config(broker.url, [{ name: 'slow', topic: 'machine/{device}/speed', decoder: JSON_SPEED, model: 'speed-table', scheduler: { maxBatch: 1, maxWaitMs: 0, maxQueue: 2, policy: 'pause' } }]),
      () => undefined,
    );
    await gateway.start();
    const pipeline = gateway.pipelines[0];
    // A model that takes 20 ms a run (the real session, slowed): inference cannot keep up.
    const run = pipeline.session.runWindows.bind(pipeline.session);
    pipeline.session.runWindows = async (windows) => {
      await new Promise((r) => setTimeout(r, 20));
      return run(windows);
    };
    let deepest = 0;
    let journaled = 0;
    const submit = pipeline.scheduler.submit.bind(pipeline.scheduler);
    pipeline.scheduler.submit = (windows) => {
      const shed = submit(windows);
      deepest = Math.max(deepest, pipeline.scheduler.depth);
      journaled = Math.max(journaled, gateway!.log.journalDepth());
      return shed;
    };
    pub = await client(broker.url, { clientId: 'flood' });
    const N = 60;
    await Promise.all(Array.from({ length: N }, (_, i) => publish(pub!, `machine/m-${i % 4}/speed`, JSON.stringify({ speed: i % 4 }), 1)));
    await waitFor(() => gateway!.log.counts().results === N, 30_000, `${N} results`);
    expect(deepest).toBeLessThanOrEqual(2);
    // Held back at the broker, not in the gateway: few messages taken and not yet logged at any time.
    expect(journaled).toBeLessThanOrEqual(8);
    expect(gateway.log.counts().deadLetters).toBe(0);
  });

  it('should dead-letter a result the broker refuses (PUBACK 0x87), drop it from the outbox and keep publishing the others', async () => {
    const acl = path.join(tempDir(), 'acl');
    writeFileSync(acl, ['topic readwrite plant/#', 'topic readwrite edge-infer/#', ''].join('\n'));
    broker = await startMosquitto({ config: [`acl_file ${acl}`] });
    gateway = new Gateway(
      config(broker.url, [
        { name: 'allowed', topic: 'plant/{device}/speed', decoder: JSON_SPEED, model: 'speed-table' },
        { name: 'denied', topic: 'plant/{device}/speed', decoder: JSON_SPEED, model: 'speed-table', results: 'forbidden/{device}/{model}' },
      ]),
      () => undefined,
    );
    await gateway.start();
    const sub = await client(broker.url, { clientId: 'results-reader' });
    const got: string[] = [];
    sub.on('message', (topic) => got.push(topic));
    await new Promise((r) => sub.subscribe('edge-infer/results/#', { qos: 1 }, r));
    pub = await client(broker.url);
    for (let i = 0; i < 3; i++) await publish(pub, `plant/d-${i}/speed`, JSON.stringify({ speed: 1 }), 1);
    await waitFor(() => got.length === 3, 10_000, 'the allowed results');
    await waitFor(() => gateway!.health().outbox === 0, 10_000, 'the outbox to empty');
    const refused = gateway.log.deadLetters({ limit: 10 }).filter((l) => l.code === 'E_PUBLISH_REFUSED');
    expect(refused).toHaveLength(3);
    expect(refused[0].topic).toMatch(/^forbidden\/d-\d\/speed-table$/);
    expect(refused[0].reason).toMatch(/reason code 0x87 \(Not authorized\)/);
    expect(JSON.parse(Buffer.from(refused[0].payload).toString())).toMatchObject({ model: 'speed-table', score: 10 });
    expect(await metric(gateway, 'edge_infer_publish_refused_total', 'reason_code="0x87"')).toBe(3);
    // Later results still go out.
    await publish(pub, 'plant/d-9/speed', JSON.stringify({ speed: 2 }), 1);
    await waitFor(() => got.includes('edge-infer/results/d-9/speed-table'), 10_000, 'a later result');
    sub.end(true);
  });

  it('should keep no inbound keys without a persistent session (nothing is ever redelivered), and keep them with one', async () => {
    broker = await startAedes();
    for (const persistentSession of [false, true]) {
      gateway = new Gateway(config(broker.url, [{ name: 'speeds', topic: 'machine/{device}/speed', decoder: JSON_SPEED, model: 'speed-table' }], { protocol: 4, persistentSession }), () => undefined);
      await gateway.start();
      pub ??= await client(broker.url);
      await publish(pub, 'machine/m-1/speed', JSON.stringify({ speed: 1 }), 1);
      await waitFor(() => gateway!.log.counts().results === 1, 10_000, 'the message logged');
      await gateway.pipelines[0].drain();
      expect(gateway.log.counts().inbound).toBe(persistentSession ? 1 : 0);
      await gateway.stop();
      gateway = undefined;
    }
  });
});
