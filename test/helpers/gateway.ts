// Gateways for the tests: configs on temp databases, a gateway in this process or in a child
// process (to kill it), and numbered messages published straight with mqtt.js.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { type GatewayConfig, parseGatewayConfig } from '../../runtime/gateway/config';
import { packageRoot } from '../../runtime/paths';
import { encodeFloat32Block } from '../../runtime/stream/decoders';

export const VIBRATION_DECODER = { kind: 'float32', channels: ['vib_x', 'vib_y', 'vib_z'], header: 'edge-infer' } as const;

const dirs: string[] = [];
process.on('exit', () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A temp folder removed when the test process exits. */
export function tempDir(prefix = 'edge-infer-gw-'): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** A gateway config: classifier and anomaly detector on plant/{device}/vibration, on a temp log. */
export function testConfig(brokerUrl: string, overrides: Record<string, unknown> = {}, pipelineOverrides: Record<string, unknown> = {}): GatewayConfig {
  const dir = tempDir();
  return parseGatewayConfig(
    {
      broker: { url: brokerUrl, protocol: 4, clientId: `gw-${Math.random().toString(36).slice(2, 8)}`, reconnectMs: 200 },
      storage: { path: path.join(dir, 'log.db') },
      http: { port: 0, host: '127.0.0.1' },
      engine: { backend: 'wasm', threads: 1 },
      pipelines: [
        { name: 'classifier', topic: 'plant/{device}/vibration', decoder: VIBRATION_DECODER, model: 'fault-classifier', variant: 'fp32', alerts: { consecutive: 2, cooldownS: 0 }, ...pipelineOverrides },
        { name: 'anomaly', topic: 'plant/{device}/vibration', decoder: VIBRATION_DECODER, model: 'vibration-anomaly', variant: 'fp32', ...pipelineOverrides },
      ],
      ...overrides,
    },
    'test config',
  );
}

/** Polls until `check` returns a truthy value, or fails after `ms` with `what`. */
export async function waitFor<T>(check: () => T | Promise<T>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A connected mqtt.js client (closed by the caller). */
export async function client(url: string, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const c = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 200, ...options });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  return c;
}

/** Publishes and resolves once the broker has taken the message (QoS 1 by default: its PUBACK). */
export function publish(c: MqttClient, topic: string, payload: string | Uint8Array, qos: 0 | 1 | 2 = 1, retain = false): Promise<void> {
  const body = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  return new Promise((resolve, reject) => c.publish(topic, body, { qos, retain }, (err) => (err ? reject(err) : resolve())));
}

/** Numbered vibration blocks of a device: seq n covers samples [n·size, (n+1)·size). */
export function vibrationBlock(seq: number, size = 512, t0Ms = 1_700_000_000_000): Buffer {
  const ch = (phase: number) => Float32Array.from({ length: size }, (_, i) => 0.1 * Math.sin(((seq * size + i) / 5120) * 2 * Math.PI * 24.6 + phase));
  return encodeFloat32Block({ vib_x: ch(0), vib_y: ch(1.57), vib_z: ch(0.5) }, { channels: ['vib_x', 'vib_y', 'vib_z'], header: { seq, timestampMs: t0Ms + ((seq * size) / 5120) * 1000 } });
}

/** A gateway running `edge-infer run --config` in a child process, killable at will. */
export function spawnGateway(config: GatewayConfig, configFile: string): { proc: ChildProcess; exited: Promise<number | null>; output: () => string } {
  writeFileSync(configFile, JSON.stringify(config));
  const proc = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(packageRoot(), 'test', 'helpers', 'edge-infer-main.ts'), 'run', '--config', configFile, '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += String(d)));
  proc.stderr!.on('data', (d) => (out += String(d)));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, exited, output: () => out };
}

/**
 * A suite's gateway child process: started (and waited for until it serves /health), killed with
 * SIGKILL and started again on the same config, stopped with SIGTERM. `output` holds what every
 * process it started printed.
 */
export class ChildGateway {
  private running: ReturnType<typeof spawnGateway> | undefined;
  private earlier = '';

  constructor(readonly config: GatewayConfig, readonly configFile: string) {}

  /** Spawns the gateway and resolves once it serves /health (after its replay). */
  async start(): Promise<void> {
    this.running = spawnGateway(this.config, this.configFile);
    const running = this.running;
    await waitFor(() => running.output().includes('/health'), 30_000, 'the gateway to start');
  }

  /** kill -9, then a start on the same log. */
  async crashAndRestart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** SIGKILL; resolves when the process is gone. */
  async kill(): Promise<void> {
    const victim = this.running;
    if (!victim) return;
    this.running = undefined;
    victim.proc.kill('SIGKILL');
    await victim.exited;
    this.earlier += victim.output();
  }

  /** SIGTERM: a clean stop; resolves to the exit code. */
  async stop(): Promise<number | null> {
    const last = this.running;
    if (!last) return null;
    this.running = undefined;
    last.proc.kill('SIGTERM');
    const code = await last.exited;
    this.earlier += last.output();
    return code;
  }

  /** The HTTP port of the running process. */
  get port(): number {
    const m = /http:\/\/127\.0\.0\.1:(\d+)\/health/.exec(this.running?.output() ?? '');
    if (!m) throw new Error('the gateway is not running');
    return Number(m[1]);
  }

  get output(): string {
    return this.earlier + (this.running?.output() ?? '');
  }
}
