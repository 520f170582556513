// An MQTT broker inside the process (aedes, in-memory persistence): the one-command start, the
// simulator's default target and the tests. Sessions of persistent clients (subscriptions and
// unacknowledged QoS 1/2 messages) last while the process lives and are lost with it; for a
// plant, run Mosquitto. aedes speaks MQTT 3.1.1, not 5.
import * as net from 'node:net';
import { EdgeInferError } from '../errors';

export interface EmbeddedBrokerOptions {
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Address to listen on; default 127.0.0.1 (this machine only). */
  host?: string;
}

export interface EmbeddedBroker {
  /** mqtt://host:port */
  url: string;
  port: number;
  /** Stops listening and drops every client at once; resolves when the port is free. */
  close(): Promise<void>;
}

/** The slice of aedes used here (its types are ESM-only, this package is CommonJS). */
interface AedesBroker {
  handle(stream: net.Socket): unknown;
  close(callback?: () => void): void;
}

/** Starts an aedes broker on host:port; rejects with E_ARGUMENT when the port cannot be bound. */
export async function startEmbeddedBroker(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new EdgeInferError('E_ARGUMENT', `embedded broker: port must be a whole number from 0 to 65535, got ${String(port)}`);
  // A dynamic import: aedes is an ES module, and import() loads one from CommonJS on every Node 20.
  const { Aedes } = (await import('aedes')) as unknown as { Aedes: { createBroker(): Promise<AedesBroker> } };
  const broker = await Aedes.createBroker();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A client that vanishes mid-packet must not take the process down.
    socket.on('error', () => undefined);
    broker.handle(socket);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new EdgeInferError('E_ARGUMENT', `embedded broker: cannot listen on ${host}:${port} (${code})`, { cause: err });
  }
  const bound = (server.address() as net.AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `mqtt://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    port: bound,
    close(): Promise<void> {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // server.close() waits for every connection to end; clients that keep theirs open would
        // hold it forever, so they are cut here. Their sessions end with the broker anyway.
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await closed;
      })();
      return closing;
    },
  };
}
