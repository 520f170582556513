// The real `edge-infer run --config` process (bin/edge-infer.js, from dist/: build first) as
// systemd runs it: NOTIFY_SOCKET and WATCHDOG_USEC in its environment, a real notify socket, a
// real Mosquitto. READY=1 once it serves, WATCHDOG=1 every half interval, none once the broker
// has been away longer than EDGE_INFER_WATCHDOG_BROKER_S, STOPPING=1 at SIGTERM; a socket that
// is not there is one line on stderr and the gateway runs on.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { packageRoot } from '../../runtime/paths';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { tempDir, waitFor } from '../helpers/gateway';
import { type NotifySocket, startNotifySocket } from '../helpers/notify-socket';
import { speedTableConfig } from '../helpers/speed-models';

const SPEEDS = { name: 'speeds', topic: 'machine/{device}/speed', qos: 1, decoder: { kind: 'json', channels: ['speed'] }, model: 'speed-table' };
/** WATCHDOG_USEC of 2 s: a ping due every second. */
const PERIOD_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Running {
  proc: ChildProcess;
  exited: Promise<number | null>;
  output: () => string;
  stderr: () => string;
}

const running = new Set<ChildProcess>();

/** `node bin/edge-infer.js run --config <file> --quiet` with `env` over this process's environment. */
function runGateway(brokerUrl: string, env: Record<string, string>): Running {
  const dir = tempDir('edge-infer-service-');
  const file = path.join(dir, 'gateway.json');
  writeFileSync(file, JSON.stringify(speedTableConfig({ url: brokerUrl, protocol: 5, clientId: `gw-service-${path.basename(dir)}`, reconnectMs: 100 }, [SPEEDS], 'service test config')));
  const proc = spawn(process.execPath, [path.join(packageRoot(), 'bin', 'edge-infer.js'), 'run', '--config', file, '--quiet'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += String(d)));
  proc.stderr!.on('data', (d) => (err += String(d)));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, exited, output: () => out + err, stderr: () => err };
}

function healthPort(r: Running): number {
  const m = /http:\/\/127\.0\.0\.1:(\d+)\/health/.exec(r.output());
  if (!m) throw new Error(`the gateway has not said where /health is: ${r.output()}`);
  return Number(m[1]);
}

describe('edge-infer run under a service manager', () => {
  let broker: MosquittoBroker | undefined;
  let socket: NotifySocket | undefined;
  afterEach(async () => {
    for (const p of running) p.kill('SIGKILL');
    running.clear();
    await broker?.stop();
    await socket?.stop();
    broker = socket = undefined;
  });

  it('should say READY=1 once it serves, ping every half interval, stop pinging once the broker is away past the tolerance, and say STOPPING=1 at SIGTERM', async () => {
    broker = await startMosquitto();
    socket = await startNotifySocket();
    const gw = runGateway(broker.url, { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: String(2 * PERIOD_MS * 1000), EDGE_INFER_WATCHDOG_BROKER_S: '2' });

    const ready = await socket.next('READY=1', 60_000);
    // Started: the log open, the broker connected, /health answering ok.
    const health = (await (await fetch(`http://127.0.0.1:${healthPort(gw)}/health`)).json()) as { ok: boolean; broker: string };
    expect(health).toMatchObject({ ok: true, broker: 'connected' });
    expect(ready.fields).toContain(`MAINPID=${gw.proc.pid}`);
    expect(ready.fields).toContain(`STATUS=running: broker ${broker.url}, 1 pipeline(s), log ${/log (\S+),/.exec(gw.output())![1]}`);

    await waitFor(() => socket!.with('WATCHDOG=1').length >= 5, 20_000, 'five pings');
    const ts = socket.with('WATCHDOG=1').map((m) => m.t);
    const between = ts.slice(1).map((t, i) => t - ts[i]).sort((a, b) => a - b);
    expect(between[Math.floor(between.length / 2)]).toBeGreaterThan(PERIOD_MS * 0.85);
    expect(between[Math.floor(between.length / 2)]).toBeLessThan(PERIOD_MS * 1.3);
    expect(socket.with('WATCHDOG=1').every((m) => m.fields.includes(`MAINPID=${gw.proc.pid}`))).toBe(true);

    // The broker goes away: pings go on for the 2 s tolerated, then stop, and the gateway says why.
    await broker.stop();
    const goneAt = Date.now();
    await waitFor(() => /watchdog: no ping to systemd while the broker has been \w+ for/.test(gw.stderr()), 15_000, 'the withheld ping on stderr');
    const withheldAt = Date.now();
    await sleep(3 * PERIOD_MS);
    expect(socket.with('WATCHDOG=1').filter((m) => m.t > withheldAt)).toEqual([]);
    expect(socket.with('WATCHDOG=1').filter((m) => m.t > goneAt).length).toBeGreaterThanOrEqual(1);
    expect(socket.with('STATUS=').at(-1)!.fields.find((f) => f.startsWith('STATUS='))).toMatch(/^STATUS=watchdog pings withheld: the broker has been/);
    // Back: pings resume, with the STATUS= line of a gateway that is well.
    await broker.restart();
    const resumed = await socket.next('WATCHDOG=1', 15_000, Date.now());
    expect(resumed.fields).toContain(ready.fields.find((f) => f.startsWith('STATUS=')));

    gw.proc.kill('SIGTERM');
    const stopping = await socket.next('STOPPING=1', 15_000);
    expect(await gw.exited).toBe(0);
    expect(stopping.fields).toContain('STATUS=stopping: logging what is queued');
    // Nothing after STOPPING=1.
    expect(socket.messages.filter((m) => m.t > stopping.t && m.fields.includes('WATCHDOG=1'))).toEqual([]);
  }, 120_000);

  it('should leave the watchdog alone when WATCHDOG_PID names another process, and still say READY=1', async () => {
    broker = await startMosquitto();
    socket = await startNotifySocket();
    const gw = runGateway(broker.url, { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: String(2 * PERIOD_MS * 1000), WATCHDOG_PID: String(process.pid) });
    await socket.next('READY=1', 60_000);
    await sleep(3 * PERIOD_MS);
    expect(socket.with('WATCHDOG=1')).toEqual([]);
    gw.proc.kill('SIGTERM');
    await socket.next('STOPPING=1', 15_000);
    expect(await gw.exited).toBe(0);
  }, 90_000);

  it('should say once that the service manager cannot be told, and serve and stop as usual', async () => {
    broker = await startMosquitto();
    const gone = path.join(tempDir('edge-infer-notify-gone-'), 'notify.sock');
    const gw = runGateway(broker.url, { NOTIFY_SOCKET: gone, WATCHDOG_USEC: String(2 * PERIOD_MS * 1000) });
    await waitFor(() => /cannot tell the service manager/.test(gw.stderr()), 60_000, 'the line on stderr');
    // Several pings' worth of failures later: still one line, still serving.
    await sleep(3 * PERIOD_MS);
    const health = (await (await fetch(`http://127.0.0.1:${healthPort(gw)}/health`)).json()) as { ok: boolean };
    expect(health.ok).toBe(true);
    expect(gw.stderr().match(/cannot tell the service manager/g)).toHaveLength(1);
    expect(gw.stderr()).toContain(`NOTIFY_SOCKET=${gone}`);
    gw.proc.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
  }, 90_000);
});
