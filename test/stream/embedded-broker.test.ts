import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { isEdgeInferError } from '../../runtime/errors';
import { startEmbeddedBroker } from '../../runtime/stream/embedded-broker';

function connect(url: string, opts: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, ...opts });
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
}

describe('startEmbeddedBroker', () => {
  it('should listen on a free port of 127.0.0.1 and carry messages', async () => {
    const broker = await startEmbeddedBroker();
    try {
      expect(broker.port).toBeGreaterThan(0);
      expect(broker.url).toBe(`mqtt://127.0.0.1:${broker.port}`);
      const sub = await connect(broker.url);
      await sub.subscribeAsync('a/#', { qos: 1 });
      const got = new Promise<string>((resolve) => sub.once('message', (topic, payload) => resolve(`${topic} ${payload.toString()}`)));
      const pub = await connect(broker.url);
      await pub.publishAsync('a/b', 'hello', { qos: 1 });
      expect(await got).toBe('a/b hello');
      await Promise.all([sub.endAsync(), pub.endAsync()]);
    } finally {
      await broker.close();
    }
  });

  it('should close within a fraction of a second while clients are still connected', async () => {
    const broker = await startEmbeddedBroker();
    const clients = await Promise.all([connect(broker.url), connect(broker.url, { clean: false, clientId: 'stays' })]);
    const dropped = Promise.all(clients.map((c) => new Promise<void>((resolve) => c.once('close', () => resolve()))));
    const t = performance.now();
    await broker.close();
    expect(performance.now() - t).toBeLessThan(500);
    await dropped;
    // close() twice is fine, and the port is free again.
    await broker.close();
    const again = await startEmbeddedBroker({ port: broker.port });
    await again.close();
    for (const c of clients) c.end(true);
  });

  it('should keep the QoS 1 messages of a persistent client while it reconnects', async () => {
    const broker = await startEmbeddedBroker();
    try {
      const first = await connect(broker.url, { clientId: 'gateway-1', clean: false });
      await first.subscribeAsync('plant/#', { qos: 1 });
      await first.endAsync();
      const pub = await connect(broker.url);
      for (let i = 0; i < 5; i++) await pub.publishAsync(`plant/m/${i}`, String(i), { qos: 1 });
      await pub.endAsync();
      const got: string[] = [];
      const back = mqtt.connect(broker.url, { protocolVersion: 4, reconnectPeriod: 0, clientId: 'gateway-1', clean: false });
      back.on('message', (_topic, payload) => got.push(payload.toString()));
      await new Promise<void>((resolve) => {
        const check = (): void => (got.length >= 5 ? resolve() : void setTimeout(check, 10));
        check();
      });
      expect(got).toEqual(['0', '1', '2', '3', '4']);
      await back.endAsync();
    } finally {
      await broker.close();
    }
  });

  it('should refuse a port in use with E_ARGUMENT naming it', async () => {
    const broker = await startEmbeddedBroker();
    try {
      const err = await startEmbeddedBroker({ port: broker.port }).catch((e: unknown) => e);
      expect(isEdgeInferError(err, 'E_ARGUMENT')).toBe(true);
      expect((err as Error).message).toBe(`embedded broker: cannot listen on 127.0.0.1:${broker.port} (EADDRINUSE)`);
      await expect(startEmbeddedBroker({ port: 70000 })).rejects.toThrow(/port must be a whole number from 0 to 65535/);
    } finally {
      await broker.close();
    }
  });
});
