// What the gateway's MQTT source relies on in mqtt.js, pinned against a raw TCP peer that speaks
// the broker's side byte by byte, so that an mqtt.js upgrade that changes any of it fails here
// first (runtime/stream/mqtt-source.ts and ack-gate.ts explain why each matters):
// - MqttClient(streamBuilder, options) is public and calls the builder at every (re)connect,
//   writing to and reading from the stream it returns, and nothing else;
// - handleMessage is public and overridable, called once per inbound message;
// - a QoS 1 PUBACK (a QoS 2 PUBCOMP) is written into that stream synchronously inside the
//   handleMessage callback, never before it, and acknowledgements come in callback order;
// - a CONNACK is seen through 'packetreceive' before any PUBLISH of its connection is handled.
import * as net from 'node:net';
import { type IPublishPacket, MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { MqttFramer } from '../../runtime/stream/ack-gate';

const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);

function publishFrame(topic: string, payload: string, qos: 1 | 2, messageId: number, dup = false): Buffer {
  const t = Buffer.from(topic);
  const body = Buffer.concat([Buffer.from([t.length >> 8, t.length & 0xff]), t, Buffer.from([messageId >> 8, messageId & 0xff]), Buffer.from(payload)]);
  return Buffer.concat([Buffer.from([0x30 | (dup ? 0x08 : 0) | (qos << 1), body.length]), body]);
}

const pubrel = (id: number): Buffer => Buffer.from([0x62, 0x02, id >> 8, id & 0xff]);

/** A one-connection-at-a-time fake broker that records every packet the client sends. */
async function rawBroker(autoConnack = true): Promise<{ port: number; sockets: net.Socket[]; received: Array<{ conn: number; type: number; id?: number }>; close(): Promise<void> }> {
  const sockets: net.Socket[] = [];
  const received: Array<{ conn: number; type: number; id?: number }> = [];
  const server = net.createServer((s) => {
    const conn = sockets.push(s) - 1;
    const framer = new MqttFramer('raw broker');
    s.on('data', (chunk) => {
      for (const f of framer.push(chunk)) {
        const type = f[0] >> 4;
        received.push({ conn, type, id: type >= 4 && type <= 7 ? f.readUInt16BE(2) : undefined });
        if (type === 1 && autoConnack) s.write(CONNACK);
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const until = async (check: () => boolean, what: string): Promise<void> => {
  const end = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('the mqtt.js behaviour the MQTT source relies on', () => {
  let cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  async function connected(): Promise<{ client: MqttClient; broker: Awaited<ReturnType<typeof rawBroker>>; built: net.Socket[]; writes: Array<{ at: string; bytes: Buffer }> }> {
    const broker = await rawBroker();
    const built: net.Socket[] = [];
    const writes: Array<{ at: string; bytes: Buffer }> = [];
    let phase = 'outside';
    const client = new MqttClient(() => {
      const s = net.connect(broker.port, '127.0.0.1');
      const write = s.write.bind(s) as (chunk: Buffer) => boolean;
      // mqtt.js writes one packet in several pieces: each whole packet is tagged with where the
      // write that completed it happened (inside a handleMessage callback or not).
      const framer = new MqttFramer('client stream');
      s.write = ((chunk: Buffer, ...rest: unknown[]) => {
        for (const bytes of framer.push(Buffer.from(chunk))) writes.push({ at: phase, bytes });
        return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
      }) as typeof s.write;
      built.push(s);
      return s;
    }, { protocolVersion: 4, clientId: 'contract', clean: false, reconnectPeriod: 50, keepalive: 0 });
    cleanup.push(() => {
      client.end(true);
    }, () => broker.close());
    (client as unknown as { setPhase: (p: string) => void }).setPhase = (p) => (phase = p);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    return { client, broker, built, writes };
  }

  it('should be the mqtt.js minor version the tilde range in package.json names', () => {
    expect((require('mqtt/package.json') as { version: string }).version).toMatch(/^5\.16\./);
  });

  it('should build every connection with the stream builder given to MqttClient, again at each reconnect', async () => {
    const { client, broker, built } = await connected();
    expect(built).toHaveLength(1);
    expect(broker.received[0]).toMatchObject({ conn: 0, type: 1 });
    broker.sockets[0].destroy();
    await until(() => broker.received.some((r) => r.conn === 1 && r.type === 1), 'the CONNECT of the second connection');
    expect(built).toHaveLength(2);
    expect(client.stream).toBe(built[1]);
  });

  it('should write a QoS 1 PUBACK only inside the handleMessage callback, into the current stream, in callback order', async () => {
    const { client, broker, writes } = await connected();
    const setPhase = (client as unknown as { setPhase: (p: string) => void }).setPhase;
    const callbacks: Array<{ id: number; cb: () => void }> = [];
    const handled: number[] = [];
    client.handleMessage = (packet: IPublishPacket, cb) => {
      handled.push(packet.messageId!);
      callbacks.push({ id: packet.messageId!, cb: cb as () => void });
    };
    broker.sockets[0].write(Buffer.concat([publishFrame('t', 'a', 1, 1), publishFrame('t', 'b', 1, 2)]));
    await until(() => handled.length === 1, 'the first message');
    await new Promise((r) => setTimeout(r, 100));
    // Until its callback, mqtt.js neither acknowledges the message nor hands over the next one.
    expect(writes.filter((w) => w.bytes[0] >> 4 === 4)).toEqual([]);
    expect(handled).toEqual([1]);
    setPhase('callback 1');
    callbacks[0].cb();
    setPhase('outside');
    await until(() => handled.length === 2, 'the second message');
    setPhase('callback 2');
    callbacks[1].cb();
    setPhase('outside');
    const acks = writes.filter((w) => w.bytes[0] >> 4 === 4);
    expect(acks.map((w) => [w.at, w.bytes.readUInt16BE(2)])).toEqual([
      ['callback 1', 1],
      ['callback 2', 2],
    ]);
    await until(() => broker.received.filter((r) => r.type === 4).length === 2, 'two PUBACKs at the broker');
    expect(broker.received.filter((r) => r.type === 4).map((r) => r.id)).toEqual([1, 2]);
  });

  it('should write a QoS 2 PUBCOMP only inside the handleMessage callback, after PUBREL', async () => {
    const { client, broker, writes } = await connected();
    const setPhase = (client as unknown as { setPhase: (p: string) => void }).setPhase;
    let callback: (() => void) | undefined;
    client.handleMessage = (_packet, cb) => {
      callback = cb as () => void;
    };
    broker.sockets[0].write(publishFrame('t', 'q2', 2, 9));
    await until(() => broker.received.some((r) => r.type === 5 && r.id === 9), 'the PUBREC');
    broker.sockets[0].write(pubrel(9));
    await until(() => callback !== undefined, 'handleMessage after PUBREL');
    await new Promise((r) => setTimeout(r, 50));
    expect(writes.filter((w) => w.bytes[0] >> 4 === 7)).toEqual([]);
    setPhase('callback');
    callback!();
    setPhase('outside');
    expect(writes.filter((w) => w.bytes[0] >> 4 === 7).map((w) => [w.at, w.bytes.readUInt16BE(2)])).toEqual([['callback', 9]]);
  });

  it('should report the CONNACK through packetreceive before handing over a PUBLISH sent right behind it', async () => {
    const broker = await rawBroker(false);
    const seen: string[] = [];
    const client = new MqttClient(() => net.connect(broker.port, '127.0.0.1'), { protocolVersion: 4, clientId: 'contract-order', clean: false, reconnectPeriod: 0, keepalive: 0 });
    cleanup.push(() => {
      client.end(true);
    }, () => broker.close());
    client.on('packetreceive', (p) => seen.push(p.cmd));
    client.handleMessage = (packet, cb) => {
      seen.push(`handled ${packet.messageId}`);
      cb();
    };
    await until(() => broker.received.length === 1, 'the CONNECT');
    // The PUBLISH rides in the same write as the CONNACK (a resumed session's redelivery does).
    broker.sockets[0].write(Buffer.concat([Buffer.from([0x20, 0x02, 0x01, 0x00]), publishFrame('t', 'x', 1, 4)]));
    await until(() => seen.includes('handled 4'), 'the message');
    expect(seen.indexOf('connack')).toBeGreaterThanOrEqual(0);
    expect(seen.indexOf('connack')).toBeLessThan(seen.indexOf('handled 4'));
  });
});
