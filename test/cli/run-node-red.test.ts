// `edge-infer run` on embedded defaults starts a real Node-RED beside the gateway: the editor
// answers with the example flows deployed against the embedded broker, their results land in the
// Node-RED folder's log, and the child is gone after every kind of stop. `--no-node-red` starts
// none; a taken port is one line and the gateway goes on. Runs the built command (bin/, dist/),
// as `npm start` does.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { packageRoot } from '../../runtime/paths';
import { freePort } from '../helpers/brokers';
import { tempDir, waitFor } from '../helpers/gateway';

interface Run {
  proc: ChildProcess;
  cwd: string;
  out: () => string;
  exited: Promise<number | null>;
}

const running: Run[] = [];

afterEach(async () => {
  for (const r of running.splice(0)) {
    if (r.proc.exitCode === null && r.proc.signalCode === null) {
      r.proc.kill('SIGKILL');
      await r.exited;
    }
  }
});

/** `edge-infer run` in `cwd` on free ports, plant at 5× so results come quickly. */
async function run(cwd: string, ...args: string[]): Promise<Run> {
  const ports = ['--http-port', String(await freePort()), '--broker-port', String(await freePort()), '--db', path.join(cwd, 'gateway.db'), '--speed', '5', '--every', '60'];
  const proc = spawn(process.execPath, [path.join(packageRoot(), 'bin', 'edge-infer.js'), 'run', ...ports, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += String(d)));
  proc.stderr!.on('data', (d) => (out += String(d)));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const r = { proc, cwd, out: () => out, exited };
  running.push(r);
  return r;
}

/** The processes whose parent is `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      if (new RegExp(`^PPid:\\s+${pid}$`, 'm').test(status)) kids.push(Number(entry));
    } catch {
      // Ended while we looked.
    }
  }
  return kids;
}

/** Whether a process is alive (and not a zombie waiting to be reaped). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** Rows of a query on a log another process writes, or [] while the file or table is not there yet. */
function rows<T>(file: string, sql: string): T[] {
  if (!existsSync(file)) return [];
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all() as T[];
  } catch {
    return [];
  } finally {
    db.close();
  }
}

describe('edge-infer run with Node-RED beside it', () => {
  it('should start Node-RED with the example flows deployed, log their results in its folder, and stop it first', async () => {
    const cwd = tempDir('edge-infer-run-nr-');
    const port = await freePort();
    const r = await run(cwd, '--node-red-port', String(port), '--seconds', '240');
    const editor = `http://127.0.0.1:${port}/`;
    await waitFor(() => r.out().includes(`Node-RED editor: ${editor} (dashboard: ${editor}edge-infer/)`), 90_000, `the editor to answer (output: ${r.out().slice(-800)})`);
    expect(r.out()).toMatch(/dashboard: http:\/\/127\.0\.0\.1:\d+\//);
    expect(r.out()).toContain('folder ./edge-infer-node-red/ (the example flows written now; model nodes log to ./edge-infer-node-red/edge-infer.db)');

    const flows = (await (await fetch(`${editor}flows`)).json()) as Array<{ id: string; type: string; broker?: string; port?: string }>;
    expect(flows.filter((n) => n.type === 'tab').map((n) => n.id).sort()).toEqual(['tab-ab', 'tab-anomaly', 'tab-faults']);
    expect(flows.find((n) => n.type === 'mqtt-broker')).toMatchObject({ broker: '${EDGE_INFER_BROKER_HOST}', port: '${EDGE_INFER_BROKER_PORT}' });

    // The flows are connected to the embedded broker: the simulated plant's windows reach their
    // model nodes, which log to the Node-RED folder's edge-infer.db.
    const log = path.join(cwd, 'edge-infer-node-red', 'edge-infer.db');
    const logged = await waitFor(() => {
      const models = rows<{ model: string; devices: number }>(log, 'SELECT model, COUNT(*) AS devices FROM result_streams GROUP BY model ORDER BY model');
      return models.length === 2 && models.every((m) => m.devices === 6) ? models : undefined;
    }, 90_000, 'results of both logging flows for the six machines in the Node-RED log');
    expect(logged!.map((m) => m.model)).toEqual(['fault-classifier', 'vibration-anomaly']);
    // ... and the dashboard inside Node-RED shows them.
    const overview = (await (await fetch(`${editor}edge-infer/api/overview`)).json()) as { machines: unknown[] };
    expect(overview.machines).toHaveLength(6);

    const [child] = childrenOf(r.proc.pid!);
    expect(child).toBeDefined();
    r.proc.kill('SIGTERM');
    expect(await r.exited).toBe(0);
    expect(alive(child!)).toBe(false);
    // Node-RED's lines come out prefixed; its start-up notices are left out.
    expect(r.out()).not.toMatch(/Projects disabled|Encrypted credentials not found/);
    expect(r.out()).toMatch(/stopped; everything acknowledged is in the log/);
    expect(r.out()).not.toMatch(/Node-RED stopped \(/);

    // Next run in the same folder: the flows are kept, and a gateway killed with -9 takes its
    // Node-RED with it.
    const again = await run(cwd, '--node-red-port', String(port), '--seconds', '240');
    await waitFor(() => again.out().includes(`Node-RED editor: ${editor}`), 90_000, `the editor to answer again (output: ${again.out().slice(-800)})`);
    expect(again.out()).toContain('its flows kept from the last run');
    const [second] = childrenOf(again.proc.pid!);
    again.proc.kill('SIGKILL');
    await again.exited;
    await waitFor(() => !alive(second!), 20_000, 'Node-RED to stop once the gateway is gone');
  }, 300_000);

  it('should start no Node-RED with --no-node-red', async () => {
    const cwd = tempDir('edge-infer-run-nr-');
    const r = await run(cwd, '--no-node-red', '--seconds', '120');
    await waitFor(() => r.out().includes('dashboard: '), 60_000, `the gateway to start (output: ${r.out().slice(-800)})`);
    expect(childrenOf(r.proc.pid!)).toEqual([]);
    r.proc.kill('SIGTERM');
    expect(await r.exited).toBe(0);
    expect(r.out()).not.toMatch(/Node-RED/);
    expect(existsSync(path.join(cwd, 'edge-infer-node-red'))).toBe(false);
  }, 120_000);

  it('should say in one line that the port is taken and run the gateway without Node-RED', async () => {
    const cwd = tempDir('edge-infer-run-nr-');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const taken = (server.address() as net.AddressInfo).port;
    try {
      const r = await run(cwd, '--node-red-port', String(taken), '--seconds', '8', '--every', '1');
      expect(await r.exited).toBe(0);
      const lines = r.out().split('\n').filter((l) => l.includes('Node-RED'));
      expect(lines).toEqual([`edge-infer: Node-RED left out: port ${taken} is taken (another Node-RED?); --node-red-port <n> picks another, --no-node-red leaves it out`]);
      // The gateway ran on: its status lines came every second.
      expect(r.out()).toMatch(/\d\d:\d\d:\d\d pump-1 .*fault-classifier/);
    } finally {
      server.close();
    }
  }, 120_000);

  it('should refuse --node-red-port with a config of its own, in one line', async () => {
    const cwd = tempDir('edge-infer-run-nr-');
    const proc = spawn(process.execPath, [path.join(packageRoot(), 'bin', 'edge-infer.js'), 'run', '--config', path.join(cwd, 'gw.yaml'), '--node-red-port', '1881'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (d) => (err += String(d)));
    const code = await new Promise((resolve) => proc.on('exit', resolve));
    expect(code).toBe(1);
    expect(err.trim().split('\n')).toHaveLength(1);
    expect(err).toMatch(/--node-red-port: Node-RED starts beside the gateway on embedded defaults only .*--config .*gw\.yaml was given/);
  });
});
