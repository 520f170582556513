// A real Node-RED process for the tests, with edge-infer installed in its user directory as
// `npm install <path>` does it (a link), running a given flow from the start.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../../runtime/paths';
import { freePort } from './brokers';
import { client, waitFor } from './gateway';

export interface NodeRed {
  proc: ChildProcess;
  base: string;
  userDir: string;
  log: () => string;
}

/**
 * A Node-RED process on a user directory with edge-infer installed as `npm install <path>` does
 * it (a link), running `flow` from the start. `fs` is in the function nodes' global context so a
 * flow can write what it saw to a file synchronously (it survives kill -9 of the process).
 * `settings` are added to settings.js (httpNodeAuth ...).
 */
export async function startNodeRed(userDir: string, flow: object[], settings: Record<string, unknown> = {}): Promise<NodeRed> {
  mkdirSync(path.join(userDir, 'node_modules'), { recursive: true });
  const link = path.join(userDir, 'node_modules', 'edge-infer');
  if (!existsSync(link)) symlinkSync(packageRoot(), link, 'dir');
  writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flow));
  const port = await freePort();
  writeFileSync(
    path.join(userDir, 'settings.js'),
    `module.exports = ${JSON.stringify({ uiPort: port, uiHost: '127.0.0.1', userDir, flowFile: 'flows.json', credentialSecret: false, logging: { console: { level: 'warn' } }, ...settings }).replace(/}$/, ", functionGlobalContext: { fs: require('node:fs') } }")};\n`,
  );
  let log = '';
  const proc = spawn(process.execPath, [require.resolve('node-red/red.js'), '--userDir', userDir, '--settings', path.join(userDir, 'settings.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d) => (log += String(d)));
  proc.stderr!.on('data', (d) => (log += String(d)));
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${base}/flows`).catch(() => null))?.ok, 60_000, `Node-RED to start (log: ${log.slice(-500)})`);
  return { proc, base, userDir, log: () => log };
}

export async function stopNodeRed(nr: NodeRed, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (nr.proc.exitCode !== null || nr.proc.signalCode !== null) return;
  const exited = new Promise((r) => nr.proc.once('exit', r));
  nr.proc.kill(signal);
  await exited;
}


/**
 * Two nodes that answer `probe/ping` with `probe/pong` through the flow's broker node `broker`
 * on tab `z`. Node-RED's MQTT nodes connect and subscribe in their own time, after its HTTP API
 * answers: a plant published before then is partly lost to the flow (clean session). A broker
 * node sends all its subscriptions at once on connect, so a pong means they are all in place.
 */
export function brokerProbe(broker: string, z: string): object[] {
  return [
    { id: `${z}-probe-in`, type: 'mqtt in', z, topic: 'probe/ping', qos: '1', datatype: 'utf8', broker, nl: false, rap: true, rh: 0, inputs: 0, wires: [[`${z}-probe-out`]] },
    { id: `${z}-probe-out`, type: 'mqtt out', z, topic: 'probe/pong', qos: '1', retain: 'false', broker, wires: [] },
  ];
}

/** Resolves once the flow's `brokerProbe` answers on the broker at `url`. */
export async function flowSubscribed(url: string, nr: NodeRed, ms = 30_000): Promise<void> {
  const c = await client(url);
  try {
    let pong = false;
    c.on('message', (topic) => (pong ||= topic === 'probe/pong'));
    await new Promise((r) => c.subscribe('probe/pong', { qos: 1 }, r));
    await waitFor(() => {
      c.publish('probe/ping', 'ping', { qos: 1 });
      return pong;
    }, ms, `Node-RED's flow to answer on the broker (log: ${nr.log().slice(-300)})`);
  } finally {
    c.end(true);
  }
}
