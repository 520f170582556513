// A real Node-RED, started by the test in a temp user directory with this package installed the
// way `npm install <path>` does it: the admin API lists one node type per model, each example
// flow deploys and works against a real broker with the simulated plant publishing, a model
// added while Node-RED runs is registered, and the editor's quantize endpoint makes a variant.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundledModelsDir, packageRoot } from '../../runtime/paths';
import Database from 'better-sqlite3';
import { PlantPublisher } from '../../runtime/stream/plant-publisher';
import { type MosquittoBroker, freePort, startMosquitto } from '../helpers/brokers';
import { client, tempDir, waitFor } from '../helpers/gateway';
import { twoPumps } from '../helpers/plants';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const bcrypt = require('bcryptjs') as { hashSync(s: string, rounds: number): string };
// Node-RED's own WebSocket library, for the editor's comms channel.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const WebSocket = require('ws') as new (url: string) => {
  on(event: 'open' | 'message' | 'error', listener: (data: unknown) => void): void;
  send(text: string): void;
  close(): void;
};

let broker: MosquittoBroker;
let nodeRed: ChildProcess;
let userDir: string;
let modelsDir: string;
let base: string;
let token: string;
let log = '';

const plant = twoPumps('nodered');

async function admin(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/**
 * An example flow as Import > Examples offers it (Node-RED's examples library), pointed at the
 * test broker (and recording every window).
 */
async function exampleFlow(name: string): Promise<object[]> {
  const res = await admin('GET', `/library/examples/flows/edge-infer/${name}`);
  if (!res.ok) throw new Error(`example '${name}': ${res.status} ${await res.text()}`);
  const nodes = (await res.json()) as Array<Record<string, unknown>>;
  for (const n of nodes) {
    if (n.type === 'mqtt-broker') Object.assign(n, { broker: '127.0.0.1', port: String(broker.port) });
    if (n.type === 'edge-infer-runtime') Object.assign(n, { backend: 'wasm', recordEvery: 1 });
  }
  return nodes;
}

async function publishPlant(seconds: number): Promise<void> {
  const publisher = new PlantPublisher(plant, { url: broker.url, speed: 10, seconds });
  await publisher.start();
  await publisher.run();
  await publisher.stop();
}

beforeAll(async () => {
  if (!existsSync(path.join(packageRoot(), 'dist', 'nodes', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does it first)');
  broker = await startMosquitto();
  userDir = tempDir('edge-infer-nr-');
  modelsDir = path.join(userDir, 'models');
  cpSync(bundledModelsDir(), modelsDir, { recursive: true, filter: (f) => !f.includes(`${path.sep}build`) });
  // Step 1 of the README, as written: `npm install /path/to/edge-infer` in the user directory.
  writeFileSync(path.join(userDir, 'package.json'), JSON.stringify({ name: 'node-red-project', private: true }));
  execFileSync('npm', ['install', packageRoot(), '--no-audit', '--no-fund'], { cwd: userDir, stdio: 'ignore' });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  writeFileSync(
    path.join(userDir, 'settings.js'),
    `module.exports = ${JSON.stringify({
      uiPort: port,
      uiHost: '127.0.0.1',
      userDir,
      flowFile: 'flows.json',
      credentialSecret: false,
      adminAuth: { type: 'credentials', users: [{ username: 'admin', password: bcrypt.hashSync('factory-floor', 8), permissions: '*' }] },
      edgeInfer: { modelsDir },
      logging: { console: { level: 'warn' } },
    })};\n`,
  );
  nodeRed = spawn(process.execPath, [require.resolve('node-red/red.js'), '--userDir', userDir, '--settings', path.join(userDir, 'settings.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
  nodeRed.stdout!.on('data', (d) => (log += String(d)));
  nodeRed.stderr!.on('data', (d) => (log += String(d)));
  await waitFor(async () => (await fetch(`${base}/auth/login`).catch(() => null))?.ok, 60_000, `Node-RED to start (log: ${log.slice(-500)})`);
  const auth = await fetch(`${base}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: 'node-red-admin', grant_type: 'password', scope: '*', username: 'admin', password: 'factory-floor' }) });
  token = ((await auth.json()) as { access_token: string }).access_token;
}, 120_000);

afterAll(async () => {
  nodeRed?.kill('SIGTERM');
  await new Promise((r) => (nodeRed && nodeRed.exitCode === null ? nodeRed.once('exit', r) : r(null)));
  await broker?.stop();
});

describe('edge-infer in a real Node-RED', () => {
  it('should list one node type per model, and the runtime config node, in the admin API', async () => {
    const sets = (await (await admin('GET', '/nodes')).json()) as Array<{ module: string; types: string[] }>;
    const ours = sets.filter((s) => s.module === 'edge-infer').flatMap((s) => s.types);
    expect(ours.sort()).toEqual(['edge-infer-fault-classifier', 'edge-infer-fault-transformer', 'edge-infer-runtime', 'edge-infer-vibration-anomaly']);
    const models = (await (await admin('GET', '/edge-infer/models')).json()) as Array<{ type: string; title: string; help: string }>;
    expect(models.map((m) => m.title).sort()).toEqual(['Rotating machine fault classifier', 'Transformer fault classifier (raw vibration)', 'Vibration anomaly detector']);
    expect(models.find((m) => m.type === 'edge-infer-fault-classifier')?.help).toMatch(/vib_x.*\[g\].*5120 Hz/s);
  });

  it('should word the editor\'s messages from the node set\'s own message catalog', async () => {
    // The editor code of this node set, as the editor loads it, and every key it names with a namespace.
    const html = await (await admin('GET', '/nodes/edge-infer/edge-infer', undefined, { accept: 'text/html' })).text();
    const keys = [...html.matchAll(/RED\._\('([^':]+):([^']+)'/g)].map(([, ns, key]) => ({ ns, key }));
    expect(keys.map((k) => k.key)).toContain('edge-infer.notify.newModel');
    const catalogs = (await (await admin('GET', '/nodes/messages?lng=en-US')).json()) as Record<string, Record<string, unknown>>;
    for (const { ns, key } of keys) {
      const text = key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], catalogs[ns]);
      expect(text, `${ns}:${key}`).toEqual(expect.any(String));
    }
  });

  it('should keep its admin endpoints behind adminAuth', async () => {
    const res = await fetch(`${base}/edge-infer/models`);
    expect(res.status).toBe(401);
  });

  it('should refuse an anonymous Quantize with 401, and start no job', async () => {
    const res = await fetch(`${base}/edge-infer/quantize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'fault-classifier', to: 'int8', samples: 1000 }) });
    expect(res.status).toBe(401);
    const job = await fetch(`${base}/edge-infer/quantize/q1`);
    expect(job.status).toBe(401);
    // Signed in, no job q1 exists: the refused request started nothing.
    expect((await admin('GET', '/edge-infer/quantize/q1')).status).toBe(404);
  });

  it('should deploy the anomaly flow and publish alerts for the faulty pump', async () => {
    const res = await admin('POST', '/flows', await exampleFlow('vibration-anomaly-detection'), { 'Node-RED-Deployment-Type': 'full' });
    expect(res.status).toBeLessThan(300);
    const sub = await client(broker.url);
    const alerts: string[] = [];
    sub.on('message', (topic) => alerts.push(topic));
    await new Promise((r) => sub.subscribe('edge-infer/alerts/#', { qos: 1 }, r));
    await publishPlant(6);
    await waitFor(() => alerts.length > 0, 30_000, `an alert (Node-RED log: ${log.slice(-400)})`);
    expect(new Set(alerts)).toEqual(new Set(['edge-infer/alerts/pump-b']));
    sub.end(true);
    // The runtime logged every result to the default log in the user directory (read as another
    // process would: a fresh read-only connection each time).
    const db = path.join(userDir, 'edge-infer.db');
    const rows = (sql: string): Array<Record<string, unknown>> => {
      const conn = new Database(db, { readonly: true });
      try {
        return conn.prepare(sql).all() as Array<Record<string, unknown>>;
      } finally {
        conn.close();
      }
    };
    await waitFor(() => (rows('SELECT COUNT(*) AS n FROM results')[0].n as number) >= 2 * 25, 20_000, 'results in SQLite');
    expect(rows("SELECT DISTINCT device FROM results WHERE model = 'vibration-anomaly' ORDER BY device").map((r) => r.device)).toEqual(['pump-a', 'pump-b']);
  });

  it('should deploy the fault classification flow and report the imbalance', async () => {
    const res = await admin('POST', '/flows', await exampleFlow('fault-classification'), { 'Node-RED-Deployment-Type': 'full' });
    expect(res.status).toBeLessThan(300);
    const sub = await client(broker.url);
    const faults = new Map<string, string>();
    sub.on('message', (topic, payload) => faults.set(topic, (JSON.parse(String(payload)) as { label: string }).label));
    await new Promise((r) => sub.subscribe('edge-infer/faults/#', { qos: 1 }, r));
    // 30 simulated seconds: the log records the ~300 windows the Quantize test below needs (250: a fifth held out, 50 for the check).
    await publishPlant(30);
    await waitFor(() => faults.get('edge-infer/faults/pump-b') === 'imbalance', 30_000, 'the imbalance reported');
    sub.end(true);
  });

  it('should deploy the A/B flow and report the agreement of fp32 and FP8', async () => {
    const res = await admin('POST', '/flows', await exampleFlow('ab-precision'), { 'Node-RED-Deployment-Type': 'full' });
    expect(res.status).toBeLessThan(300);
    const sub = await client(broker.url);
    const reports: Array<{ windows: number; agreement: number }> = [];
    sub.on('message', (_t, payload) => reports.push(JSON.parse(String(payload))));
    await new Promise((r) => sub.subscribe('edge-infer/ab/#', { qos: 1 }, r));
    await publishPlant(4);
    await waitFor(() => reports.some((r) => r.windows >= 20), 30_000, 'twenty paired windows');
    expect(reports.at(-1)!.agreement).toBeGreaterThanOrEqual(0.95);
    sub.end(true);
  });

  it('should have closed every deployed flow without a model losing its session or its log', async () => {
    const res = await admin('POST', '/flows', [], { 'Node-RED-Deployment-Type': 'full' });
    expect(res.status).toBeLessThan(300);
    expect(log).not.toMatch(/session was disposed|runtime is closed|results not logged/);
  });

  it('should register the node type of a model added while Node-RED runs', async () => {
    const dir = path.join(modelsDir, 'pump-classifier');
    mkdirSync(dir);
    const card = JSON.parse(readFileSync(path.join(modelsDir, 'fault-classifier', 'fault-classifier.fp32.model.json'), 'utf8'));
    writeFileSync(path.join(dir, 'pump-classifier.fp32.model.json'), JSON.stringify({ ...card, id: 'pump-classifier', title: 'Pump fault classifier' }));
    cpSync(path.join(modelsDir, 'fault-classifier', 'fault-classifier.fp32.onnx'), path.join(dir, 'pump-classifier.fp32.onnx'));
    await waitFor(async () => {
      const sets = (await (await admin('GET', '/nodes')).json()) as Array<{ module: string; types: string[] }>;
      return sets.some((s) => s.module === 'edge-infer' && s.types.includes('edge-infer-pump-classifier'));
    }, 15_000, 'the new node type');
  });

  it('should quantize a model from the editor, calibrated on the windows this gateway recorded', async () => {
    const start = await admin('POST', '/edge-infer/quantize', { model: 'fault-classifier', to: 'fp8-e4m3', samples: 200 });
    const job = (await start.json()) as { id: string; error?: string };
    expect(start.status, job.error).toBe(200);
    const status = (await waitFor(async () => {
      const s = (await (await admin('GET', `/edge-infer/quantize/${job.id}`)).json()) as { state: string; error?: string; report?: { top1: number; sizeBytes: number; fp32SizeBytes: number } };
      return s.state === 'running' ? null : s;
    }, 60_000, 'the quantization job'))!;
    expect(status.error).toBeUndefined();
    expect(status.state).toBe('done');
    expect(status.report!.sizeBytes / status.report!.fp32SizeBytes).toBeLessThan(0.3);
    expect(status.report!.top1).toBeGreaterThanOrEqual(0.98);
    await waitFor(async () => {
      const list = (await (await admin('GET', '/edge-infer/models')).json()) as Array<{ id: string; variants: Array<{ variant: string }> }>;
      return list.find((m) => m.id === 'fault-classifier')?.variants.some((v) => v.variant === 'fp8-e4m3-gateway');
    }, 10_000, 'the new variant listed');
    // An editor that subscribes only now, after the job ended, still hears how it ended.
    const heard = await new Promise<{ state: string }>((resolve, reject) => {
      const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/comms`);
      const timer = setTimeout(() => reject(new Error('no status on the comms channel')), 5000);
      ws.on('open', () => ws.send(JSON.stringify({ auth: token })));
      ws.on('message', (data) => {
        const msg = JSON.parse(String(data)) as { auth?: string } | Array<{ topic: string; data: { state: string } }>;
        if (!Array.isArray(msg)) {
          if (msg.auth === 'ok') ws.send(JSON.stringify({ subscribe: `edge-infer/quantize/${job.id}` }));
          return;
        }
        const status = msg.find((m) => m.topic === `edge-infer/quantize/${job.id}`);
        if (status) {
          clearTimeout(timer);
          ws.close();
          resolve(status.data);
        }
      });
      ws.on('error', reject);
    });
    expect(heard.state).toBe('done');
    const bad = await admin('POST', '/edge-infer/quantize', { model: 'fault-classifier', to: 'int4' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/to must be one of int8, int8-dynamic, fp8-e4m3, fp8-e5m2/);
  });
});
