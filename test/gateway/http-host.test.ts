// Where /health and /metrics listen. A config without `http.host` keeps them on this machine
// (127.0.0.1): a connection to the machine's own network address is refused. Exposing them is
// an explicit choice (`host: 0.0.0.0` or `--http-host 0.0.0.0`), and the start-up line says so.
// The embedded broker keeps to loopback by default too.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { Gateway } from '../../runtime/gateway/gateway';
import { packageRoot } from '../../runtime/paths';
import { type TestBroker, startAedes } from '../helpers/brokers';
import { VIBRATION_DECODER, tempDir, waitFor } from '../helpers/gateway';

/** The machine's first non-loopback IPv4 address, if it has one. */
function networkAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

/** 'connected', or the error code of a refused connection. */
function connect(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(3000, () => {
      socket.destroy();
      resolve('ETIMEDOUT');
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** One small pipeline; `http` as the test gives it (no host: the default). */
function config(brokerUrl: string, http: Record<string, unknown>): Record<string, unknown> {
  return {
    broker: { url: brokerUrl, protocol: 4, clientId: `gw-http-${Math.random().toString(36).slice(2, 8)}`, reconnectMs: 200 },
    storage: { path: path.join(tempDir(), 'log.db') },
    http,
    engine: { backend: 'wasm', threads: 1 },
    pipelines: [{ name: 'vibration', topic: 'plant/{device}/vibration', decoder: VIBRATION_DECODER, model: 'fault-classifier', variant: 'fp32' }],
  };
}

const address = networkAddress();

describe('where /health and /metrics listen', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startAedes();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('should default http.host to 127.0.0.1 when a config omits it', () => {
    expect(parseGatewayConfig(config(broker.url, { port: 8080 })).http).toEqual({ port: 8080, host: '127.0.0.1' });
    const { http: _, ...noHttp } = config(broker.url, {});
    expect(parseGatewayConfig(noHttp).http).toEqual({ port: 8080, host: '127.0.0.1' });
  });

  it('should refuse an empty http.host, naming the field', () => {
    expect(() => parseGatewayConfig(config(broker.url, { host: '' }), 'gw.yaml')).toThrow(/gw\.yaml: http\.host: /);
  });

  it('should listen on loopback only when a config omits the host', async () => {
    const gateway = new Gateway(parseGatewayConfig(config(broker.url, { port: 0 })));
    await gateway.start();
    try {
      expect(await connect('127.0.0.1', gateway.httpPort)).toBe('connected');
      expect((await fetch(`http://127.0.0.1:${gateway.httpPort}/health`)).status).toBe(200);
      // Only where the machine has a network address to try (a container may have none).
      if (address) expect(await connect(address, gateway.httpPort)).toBe('ECONNREFUSED');
      else console.log('no non-loopback IPv4 address on this machine: the refusal from the network is not checked');
    } finally {
      await gateway.stop();
    }
  });

  it.skipIf(!address)("should listen on every interface with host '0.0.0.0' given on the command line, and say so at start-up", async () => {
    const dir = tempDir();
    const file = path.join(dir, 'gateway.json');
    writeFileSync(file, JSON.stringify(config(broker.url, { port: 0 })));
    const proc = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(packageRoot(), 'test', 'helpers', 'edge-infer-main.ts'), 'run', '--config', file, '--quiet', '--http-host', '0.0.0.0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += String(d)));
    proc.stderr.on('data', (d) => (out += String(d)));
    const exited = new Promise((resolve) => proc.on('exit', resolve));
    try {
      const line = /http:\/\/0\.0\.0\.0:(\d+)\/health and \/metrics \(every interface/;
      const started = await waitFor(() => line.exec(out)?.[1], 30_000, 'the start-up line naming every interface').catch((err: Error) => {
        throw new Error(`${err.message}; output: ${out}`);
      });
      const port = Number(started);
      expect(await connect('127.0.0.1', port)).toBe('connected');
      expect(await connect(address as string, port)).toBe('connected');
      expect((await fetch(`http://${address}:${port}/metrics`)).status).toBe(200);
    } finally {
      proc.kill('SIGTERM');
      await exited;
    }
  });

  it('should keep the embedded broker on loopback too when a config omits its host', async () => {
    const c = config(broker.url, { port: 0 });
    const gateway = new Gateway(parseGatewayConfig({ ...c, broker: { embedded: { port: 0 }, clientId: 'gw-embedded-host' } }));
    await gateway.start();
    try {
      const port = Number(new URL(gateway.brokerUrl).port);
      expect(gateway.brokerUrl).toBe(`mqtt://127.0.0.1:${port}`);
      expect(await connect('127.0.0.1', port)).toBe('connected');
      if (address) expect(await connect(address, port)).toBe('ECONNREFUSED');
    } finally {
      await gateway.stop();
    }
  });

  it.skipIf(!address)("should listen on every interface with host '0.0.0.0' in the config", async () => {
    const gateway = new Gateway(parseGatewayConfig(config(broker.url, { port: 0, host: '0.0.0.0' })));
    await gateway.start();
    try {
      expect(await connect('127.0.0.1', gateway.httpPort)).toBe('connected');
      expect(await connect(address as string, gateway.httpPort)).toBe('connected');
    } finally {
      await gateway.stop();
    }
  });
});
