// A TCP proxy between a client and a real broker that can hold back packets of one kind on their
// way to the client (PUBREL, to stop a QoS 2 exchange half way, as a slow network would).
// It reads only MQTT's fixed header (type and remaining length), so it forwards every packet
// byte for byte.
import * as net from 'node:net';
import { freePort } from './brokers';

/** MQTT control packet types (the high nibble of the first byte). */
export const PUBREL = 6;

export interface MqttProxy {
  url: string;
  /** Packet types not forwarded to the client while set (dropped, as if lost with the connection). */
  dropToClient: Set<number>;
  /** Packets dropped so far, by type. */
  dropped: Map<number, number>;
  /** Packet types not forwarded to the broker while set (as if the link died on the way there). */
  dropToBroker: Set<number>;
  /** Every packet the client sent, in order: its connection (0, 1, ...), type and packet id (acknowledgements). */
  fromClient: Array<{ conn: number; type: number; id?: number }>;
  /** Cuts every open connection, as a network failure would. */
  cut(): void;
  close(): Promise<void>;
}

/** Splits a byte stream into whole MQTT packets. */
function packetSplitter(onPacket: (packet: Buffer) => void): (chunk: Buffer) => void {
  let buffered = Buffer.alloc(0);
  return (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      if (buffered.length < 2) return;
      let length = 0;
      let multiplier = 1;
      let i = 1;
      for (;;) {
        if (i >= buffered.length) return;
        const byte = buffered[i++];
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if ((byte & 0x80) === 0) break;
      }
      if (buffered.length < i + length) return;
      onPacket(buffered.subarray(0, i + length));
      buffered = buffered.subarray(i + length);
    }
  };
}

export async function startMqttProxy(brokerPort: number): Promise<MqttProxy> {
  const port = await freePort();
  const dropToClient = new Set<number>();
  const dropped = new Map<number, number>();
  const sockets = new Set<net.Socket>();
  const fromClient: MqttProxy['fromClient'] = [];
  const dropToBroker = new Set<number>();
  let connections = 0;
  const server = net.createServer((client) => {
    const conn = connections++;
    const broker = net.connect(brokerPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(broker);
    client.on(
      'data',
      packetSplitter((packet) => {
        const type = packet[0] >> 4;
        fromClient.push({ conn, type, id: type >= 4 && type <= 7 ? packet.readUInt16BE(2) : undefined });
        if (!dropToBroker.has(type)) broker.write(packet);
      }),
    );
    broker.on(
      'data',
      packetSplitter((packet) => {
        const type = packet[0] >> 4;
        if (dropToClient.has(type)) dropped.set(type, (dropped.get(type) ?? 0) + 1);
        else client.write(packet);
      }),
    );
    const end = (): void => {
      client.destroy();
      broker.destroy();
      sockets.delete(client);
      sockets.delete(broker);
    };
    client.on('close', end);
    broker.on('close', end);
    client.on('error', end);
    broker.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return {
    url: `mqtt://127.0.0.1:${port}`,
    dropToClient,
    dropped,
    fromClient,
    dropToBroker,
    cut: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
