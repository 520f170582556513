// The MQTT source's acknowledgement path on a real Mosquitto, watched on the wire by a TCP proxy
// between the source and the broker: a held PUBACK is not sent until its handler resolves (later
// messages keep coming meanwhile, and acknowledgements leave in arrival order); an acknowledgement
// held on a connection that dropped is never sent on the next one; a failed handler leaves its
// message unacknowledged and the broker delivers it again; the broker's reading of the
// acknowledgements is reported; and a real journal takes many messages per commit.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { ResultStore } from '../../runtime/store';
import { MqttSource } from '../../runtime/stream/mqtt-source';
import { type MosquittoBroker, freePort, startMosquitto } from '../helpers/brokers';
import { client, publish, tempDir, waitFor } from '../helpers/gateway';
import { type MqttProxy, startMqttProxy } from '../helpers/mqtt-proxy';
import { dbPath } from '../store/helpers';

const PUBACK = 4;
const PINGREQ = 12;

interface Deferred {
  packet: IPublishPacket;
  resolve(): void;
  reject(err: Error): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the MQTT source on Mosquitto', () => {
  let broker: MosquittoBroker | undefined;
  let proxy: MqttProxy | undefined;
  let source: MqttSource | undefined;
  let pub: MqttClient | undefined;
  afterEach(async () => {
    await source?.stop();
    pub?.end(true);
    await proxy?.close();
    await broker?.stop();
    source = proxy = pub = broker = undefined;
  });

  /** A source through the proxy whose handler holds every message until the test settles it. */
  async function held(clientId: string, flow?: () => Promise<void> | undefined): Promise<{ handled: Deferred[]; errors: unknown[]; acknowledged: IPublishPacket[] }> {
    broker = await startMosquitto();
    proxy = await startMqttProxy(broker.port);
    const handled: Deferred[] = [];
    const errors: unknown[] = [];
    const acknowledged: IPublishPacket[] = [];
    source = new MqttSource({ url: proxy.url, protocolVersion: 4, clientId, reconnectMs: 100, keepaliveS: 0 });
    source.on('handler-error', (err) => errors.push(err));
    source.on('broker-error', () => undefined);
    source.on('acknowledged', (packets: IPublishPacket[]) => acknowledged.push(...packets));
    await source.start([{ filter: 'plant/#', qos: 1 }], (_t, _p, packet) => new Promise<void>((resolve, reject) => handled.push({ packet, resolve, reject })), flow);
    await waitFor(() => source!.granted.size > 0, 5000, 'the subscription');
    pub = await client(broker.url, { clientId: `${clientId}-pub` });
    return { handled, errors, acknowledged };
  }

  const pubacks = (conn?: number) => proxy!.fromClient.filter((p) => p.type === PUBACK && (conn === undefined || p.conn === conn));

  it('should keep a PUBACK off the wire until its handler resolves, take later messages meanwhile, and acknowledge in arrival order', async () => {
    const { handled, acknowledged } = await held('src-hold');
    for (const n of [1, 2, 3]) await publish(pub!, `plant/m${n}/vibration`, `m${n}`);
    await waitFor(() => handled.length === 3, 5000, 'three messages handed over');
    await sleep(200);
    expect(pubacks()).toEqual([]);
    // The second is done first: its acknowledgement waits for the first's.
    handled[1].resolve();
    await sleep(200);
    expect(pubacks()).toEqual([]);
    handled[0].resolve();
    await waitFor(() => pubacks().length === 2, 5000, 'two PUBACKs');
    expect(pubacks().map((p) => p.id)).toEqual([handled[0].packet.messageId, handled[1].packet.messageId]);
    handled[2].resolve();
    await waitFor(() => pubacks().length === 3, 5000, 'the third PUBACK');
    // The gate pinged after them, and the broker's answer says it read them.
    expect(proxy!.fromClient.some((p) => p.type === PINGREQ)).toBe(true);
    await waitFor(() => acknowledged.length === 3, 5000, 'the broker reading the acknowledgements');
    expect(acknowledged.map((p) => p.messageId)).toEqual(handled.map((h) => h.packet.messageId));
    // Nothing left unacknowledged at the broker: a reconnect redelivers nothing.
    proxy!.cut();
    await waitFor(() => source!.connected, 5000, 'the reconnect');
    await sleep(300);
    expect(handled).toHaveLength(3);
  });

  it('should never send on a new connection an acknowledgement held on the connection that dropped', async () => {
    const { handled } = await held('src-reconnect');
    await publish(pub!, 'plant/m1/vibration', 'one');
    await waitFor(() => handled.length === 1, 5000, 'the message');
    const first = handled[0];
    proxy!.cut();
    // Mosquitto delivers it again (DUP) on the new connection.
    await waitFor(() => handled.length === 2, 5000, 'the redelivery');
    expect(handled[1].packet).toMatchObject({ messageId: first.packet.messageId, dup: true });
    // The old connection's journal write finishing now must not acknowledge anything.
    first.resolve();
    await sleep(300);
    expect(pubacks()).toEqual([]);
    handled[1].resolve();
    await waitFor(() => pubacks().length === 1, 5000, 'the PUBACK of the redelivery');
    await sleep(200);
    expect(pubacks()).toEqual([{ conn: 1, type: PUBACK, id: first.packet.messageId }]);
  });

  it('should not send on the next connection the acknowledgement mqtt.js writes late (after back-pressure) for a message of a dropped connection', async () => {
    // Back-pressure holds mqtt.js's callback for the first message; the connection drops, the
    // journal write fails, and only then does the callback come: mqtt.js queues that PUBACK and
    // writes it once the next connection is up, before the broker's redelivery is handed over.
    let release: () => void = () => undefined;
    let paused = true;
    const { handled } = await held('src-late', () => (paused ? new Promise<void>((r) => (release = r)) : undefined));
    await publish(pub!, 'plant/m1/vibration', 'one');
    await waitFor(() => handled.length === 1, 5000, 'the message');
    proxy!.cut();
    await waitFor(() => source!.state !== 'connected', 5000, 'the drop');
    handled[0].reject(new Error('journal write failed'));
    paused = false;
    release();
    await waitFor(() => handled.length === 2, 5000, 'the redelivery');
    await sleep(300);
    // Its journal write failed: nothing may acknowledge it, on any connection, until the redelivery is journaled.
    expect(pubacks()).toEqual([]);
    handled[1].resolve();
    await waitFor(() => pubacks().length === 1, 5000, 'the PUBACK of the redelivery');
    await sleep(200);
    expect(pubacks()).toHaveLength(1);
  });

  it('should leave a message whose handler failed unacknowledged, drop the connection, and take the broker\'s redelivery', async () => {
    const { handled, errors } = await held('src-fail');
    await publish(pub!, 'plant/m1/vibration', 'one');
    await waitFor(() => handled.length === 1, 5000, 'the message');
    handled[0].reject(new Error('journal write failed (disk full)'));
    await waitFor(() => handled.length === 2, 5000, 'the redelivery');
    expect(errors.map(String)).toEqual(['Error: journal write failed (disk full)']);
    expect(proxy!.fromClient.filter((p) => p.conn === 0 && p.type === PUBACK)).toEqual([]);
    expect(handled[1].packet).toMatchObject({ messageId: handled[0].packet.messageId, dup: true, payload: Buffer.from('one') });
    handled[1].resolve();
    await waitFor(() => pubacks().length === 1, 5000, 'the PUBACK');
    expect(pubacks()[0].conn).toBe(1);
  });

  it('should journal thousands of QoS 1 messages in a few dozen group commits, every one acknowledged once journaled', async () => {
    broker = await startMosquitto();
    const store = ResultStore.open({ path: dbPath() });
    try {
      source = new MqttSource({ url: broker.url, protocolVersion: 5, clientId: 'src-throughput', reconnectMs: 100 });
      let n = 0;
      await source.start([{ filter: 'plant/#', qos: 1 }], async (topic, payload) => {
        const i = n++;
        await store.journalSoon({ pipeline: 'p', key: `k${i}`, topic, payload, receivedMs: Date.now() });
      });
      pub = await client(broker.url, { clientId: 'src-throughput-pub' });
      const before = store.journalStats;
      const MESSAGES = 4000;
      const acks: Promise<void>[] = [];
      for (let i = 0; i < MESSAGES; i++) acks.push(publish(pub, `plant/d${i % 8}/vibration`, Buffer.alloc(64, i % 251)));
      await Promise.all(acks);
      await waitFor(() => store.journalStats.messages - before.messages === MESSAGES && source!.heldAcks === 0, 30_000, 'every message journaled and acknowledged');
      const commits = store.journalStats.commits - before.commits;
      // eslint-disable-next-line no-console
      console.log(`${MESSAGES} messages in ${commits} journal commits (${(MESSAGES / commits).toFixed(1)} per commit)`);
      expect(commits).toBeLessThan(MESSAGES / 20);
    } finally {
      await source?.stop();
      source = undefined;
      await store.close();
    }
  });

  it('should take messages over WebSocket (ws://) with the same held acknowledgements', async () => {
    const wsPort = await freePort();
    broker = await startMosquitto({ config: [`listener ${wsPort} 127.0.0.1`, 'protocol websockets'] });
    const url = `ws://127.0.0.1:${wsPort}`;
    const got: string[] = [];
    const take = async (): Promise<void> => {
      source = new MqttSource({ url, protocolVersion: 5, clientId: 'src-ws', reconnectMs: 100 });
      await source.start([{ filter: 'plant/#', qos: 1 }], async (_t, payload) => {
        await sleep(50); // a journal write
        got.push(payload.toString());
      });
      await waitFor(() => source!.granted.size > 0 || got.length > 0, 5000, 'the subscription');
    };
    await take();
    pub = await client(broker.url, { clientId: 'src-ws-pub' });
    await publish(pub, 'plant/m1/vibration', 'over ws');
    await waitFor(() => got.length === 1 && source!.heldAcks === 0, 5000, 'the message handled and acknowledged');
    await source!.stop();
    // The broker had the acknowledgement: the session resumed over WebSocket redelivers nothing.
    await take();
    await sleep(300);
    expect(got).toEqual(['over ws']);
  });

  it('should take messages over TLS (mqtts://), checking the broker\'s certificate against the given CA', async () => {
    // A self-signed certificate for 127.0.0.1, made by openssl for this test.
    const dir = tempDir('edge-infer-tls-');
    const cert = path.join(dir, 'broker.pem');
    const key = path.join(dir, 'broker.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const tlsPort = await freePort();
    broker = await startMosquitto({ config: [`listener ${tlsPort} 127.0.0.1`, `certfile ${cert}`, `keyfile ${key}`] });
    const got: string[] = [];
    source = new MqttSource({ url: `mqtts://127.0.0.1:${tlsPort}`, protocolVersion: 5, clientId: 'src-tls', reconnectMs: 100, ca: readFileSync(cert) });
    await source.start([{ filter: 'plant/#', qos: 1 }], async (_t, payload) => {
      got.push(payload.toString());
    });
    await waitFor(() => source!.granted.size > 0, 5000, 'the subscription');
    pub = await client(broker.url, { clientId: 'src-tls-pub' });
    await publish(pub, 'plant/m1/vibration', 'over tls');
    await waitFor(() => got.length === 1 && source!.heldAcks === 0, 5000, 'the message handled and acknowledged');
    // A broker whose certificate the CA does not vouch for is refused.
    const stranger = new MqttSource({ url: `mqtts://127.0.0.1:${tlsPort}`, protocolVersion: 5, clientId: 'src-tls-2', reconnectMs: 0 });
    stranger.on('broker-error', () => undefined);
    await expect(stranger.start([], () => undefined)).rejects.toThrow(/self-signed certificate/);
    await stranger.stop();
  });
});
