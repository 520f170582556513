// The dashboard inside a real Node-RED, at <httpNodeRoot>/edge-infer/: the example flows' model
// nodes log the simulated plant, and the page, the overview, the models, the live feed and
// acknowledgement answer from that log; redeploys leak no reader threads or file handles; with
// httpNodeAuth an anonymous request is refused and the acknowledging user is Node-RED's.
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FlowNode, exampleFlows } from '../../runtime/cli/node-red-flows';
import type { AlertView, AlertsView, ModelsView, OverviewView } from '../../runtime/serve';
import { PlantPublisher } from '../../runtime/stream/plant-publisher';
import { type TestBroker, startAedes } from '../helpers/brokers';
import { tempDir, waitFor } from '../helpers/gateway';
import { twoPumps } from '../helpers/plants';
import { launchBrowser, openPage } from '../helpers/browser';
import { type NodeRed, startNodeRed, stopNodeRed } from '../helpers/node-red-process';
import { packageRoot } from '../../runtime/paths';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const bcrypt = require('bcryptjs') as { hashSync(s: string, rounds: number): string };

const plant = twoPumps('dashboard');

let broker: TestBroker;
let open: NodeRed;
let guarded: NodeRed;
const BASIC = `Basic ${Buffer.from('operator:shift-two').toString('base64')}`;
/** A POST as the page sends it: JSON (the dashboard refuses other bodies, as a guard against forms from other sites). */
const POST = { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' };

/** The example flows (all three, merged as `edge-infer run` deploys them) on the test broker. */
function flows(only?: string): FlowNode[] {
  const all = exampleFlows().map((n) => (n.type === 'mqtt-broker' ? { ...n, broker: '127.0.0.1', port: String(broker.port) } : n));
  if (!only) return all;
  return all.filter((n) => n.id === only || n.z === only || n.type === 'mqtt-broker' || n.type === 'edge-infer-runtime');
}

async function publishPlant(seconds: number): Promise<void> {
  const publisher = new PlantPublisher(plant, { url: broker.url, speed: 10, seconds });
  await publisher.start();
  await publisher.run();
  await publisher.stop();
}

async function json<T>(url: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(url, init);
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

function overviewModels(o: OverviewView): Record<string, string[]> {
  return Object.fromEntries(o.machines.map((m) => [m.device, m.models.map((x) => x.model).sort()]));
}

/** OS threads and open file descriptors of a process. */
function handles(pid: number): { threads: number; fds: number } {
  return { threads: readdirSync(`/proc/${pid}/task`).length, fds: readdirSync(`/proc/${pid}/fd`).length };
}

beforeAll(async () => {
  broker = await startAedes();
  [open, guarded] = await Promise.all([
    startNodeRed(tempDir('edge-infer-nr-dash-'), flows()),
    startNodeRed(tempDir('edge-infer-nr-dash-auth-'), flows('tab-anomaly'), { httpNodeAuth: { user: 'operator', pass: bcrypt.hashSync('shift-two', 8) } }),
  ]);
  // Both have subscribed once their broker node is connected; give them the plant.
  await new Promise((r) => setTimeout(r, 1500));
  await publishPlant(8);
}, 180_000);

afterAll(async () => {
  for (const nr of [open, guarded]) if (nr) await stopNodeRed(nr);
  await broker?.stop();
});

describe('the dashboard inside Node-RED', () => {
  it('should serve the page at /edge-infer/, and send /edge-infer to it', async () => {
    const index = await fetch(`${open.base}/edge-infer/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/text\/html/);
    expect(await index.text()).toMatch(/<!doctype html>/i);
    const bare = await fetch(`${open.base}/edge-infer`, { redirect: 'manual' });
    expect(bare.status).toBe(301);
    expect(new URL(bare.headers.get('location')!, `${open.base}/edge-infer`).pathname).toBe('/edge-infer/');
  });

  it('should show the machines the flows\' model nodes logged, with their models', async () => {
    const overview = await waitFor(async () => {
      const o = await json<OverviewView>(`${open.base}/edge-infer/api/overview`);
      const byDevice = overviewModels(o);
      return byDevice['pump-a']?.length === 2 && byDevice['pump-b']?.length === 2 ? o : undefined;
    }, 30_000, `both machines with both logging models (log: ${open.log().slice(-400)})`);
    expect(overviewModels(overview!)).toEqual({ 'pump-a': ['fault-classifier', 'vibration-anomaly'], 'pump-b': ['fault-classifier', 'vibration-anomaly'] });
    expect(overview!.machines.find((m) => m.device === 'pump-b')!.state).not.toBe('normal');
    const session = await json<{ host: string; user: string | null; canAcknowledge: boolean }>(`${open.base}/edge-infer/api/session`);
    expect(session).toMatchObject({ host: 'node-red', user: 'node-red', canAcknowledge: true });
  });

  it('should show the same page in a browser: the machines, live, a machine\'s charts, no error from the page', async () => {
    const browser = await launchBrowser();
    try {
      const { page, errors } = await openPage(browser);
      await page.goto(`${open.base}/edge-infer/`);
      await page.waitForSelector('body[data-ready]');
      for (const device of ['pump-a', 'pump-b']) await page.getByRole('link', { name: device, exact: true }).waitFor();
      // Live: more of the plant, drawn as it comes without a reload.
      const drawn = (): Promise<number> => page.evaluate<number>('window.edgeInferStats.drawn');
      const before = await drawn();
      const publishing = publishPlant(3);
      await waitFor(async () => (await drawn()) > before, 20_000, 'live results drawn');
      await publishing;
      await page.screenshot({ path: path.join(packageRoot(), 'docs', 'images', 'node-red.png') });
      await page.getByRole('link', { name: 'pump-b', exact: true }).click();
      const score = '.model-charts[data-model="vibration-anomaly"] .chart-score';
      await waitFor(async () => Number(await page.locator(score).getAttribute('data-points')) > 0, 20_000, 'points on pump-b\'s score chart');
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('should list the models of the model nodes that log, with variant, size and backend', async () => {
    const { models } = await json<ModelsView>(`${open.base}/edge-infer/api/models`);
    // The A/B flow's nodes do not log, so its fp32 and FP8 classifiers are not this log's models.
    expect(models.map((m) => m.model).sort()).toEqual(['fault-classifier', 'vibration-anomaly']);
    for (const m of models) {
      expect(m.pipeline).toBeNull();
      expect(m.bytes).toBeGreaterThan(1000);
      expect(['wasm', 'native']).toContain(m.backend);
      expect(m.windowsPerS).toBeGreaterThanOrEqual(0);
    }
  });

  it('should acknowledge and clear an alert as the user node-red when Node-RED asks no login', async () => {
    const alert = await waitFor(async () => (await json<AlertsView>(`${open.base}/edge-infer/api/alerts?active=1&device=pump-b`)).alerts[0], 30_000, 'an active alert of pump-b');
    const acked = await json<AlertView>(`${open.base}/edge-infer/api/alerts/${alert!.id}/ack`, POST);
    expect(acked).toMatchObject({ id: alert!.id, ackedBy: 'node-red' });
    expect(acked.ackedMs).toBeGreaterThan(Date.now() - 60_000);
    const cleared = await json<AlertView>(`${open.base}/edge-infer/api/alerts/${alert!.id}/clear`, POST);
    expect(cleared.clearedBy).toBe('node-red');
    const missing = await fetch(`${open.base}/edge-infer/api/alerts/999999/ack`, POST);
    expect(missing.status).toBe(404);
  });

  it('should push results committed by the model nodes on the live feed', async () => {
    const controller = new AbortController();
    const res = await fetch(`${open.base}/edge-infer/api/live`, { signal: controller.signal });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    const publishing = publishPlant(2);
    let text = '';
    try {
      await waitFor(async () => {
        const { value } = await reader.read();
        text += new TextDecoder().decode(value);
        return text.includes('event: results');
      }, 30_000, 'a results event');
    } finally {
      controller.abort();
      await publishing;
    }
    expect(text).toMatch(/"device":"pump-[ab]"/);
  });

  it('should serve a runtime by its config node id at /edge-infer/runtime/<id>/, and say so of an unknown one', async () => {
    const o = await json<OverviewView>(`${open.base}/edge-infer/runtime/ei-runtime/api/overview`);
    expect(o.machines.map((m) => m.device)).toEqual(['pump-a', 'pump-b']);
    expect((await fetch(`${open.base}/edge-infer/runtime/nope/api/overview`)).status).toBe(404);
  });

  it('should leak no reader threads or file handles over redeploys', async () => {
    const deploy = async (): Promise<void> => {
      const res = await fetch(`${open.base}/flows`, { method: 'POST', headers: { 'content-type': 'application/json', 'Node-RED-Deployment-Type': 'full' }, body: JSON.stringify(flows()) });
      expect(res.status).toBeLessThan(300);
      // The new runtime's dashboard opens its reader at the first request.
      await waitFor(async () => (await fetch(`${open.base}/edge-infer/api/overview`)).ok, 20_000, 'the dashboard after the deploy');
    };
    await deploy();
    await new Promise((r) => setTimeout(r, 1000));
    const before = handles(open.proc.pid!);
    for (let i = 0; i < 4; i++) await deploy();
    await new Promise((r) => setTimeout(r, 1000));
    const after = handles(open.proc.pid!);
    expect(after.threads).toBeLessThanOrEqual(before.threads);
    // A socket of a request or of the broker may be open at either count; a reader and its log's
    // files (db, -wal, -shm) per deploy would be four more each time.
    expect(after.fds).toBeLessThanOrEqual(before.fds + 2);
  }, 120_000);

  it('should show the only runtime at /edge-infer/, and list them when several log elsewhere', async () => {
    const deploy = async (nodes: FlowNode[]): Promise<void> => {
      const res = await fetch(`${open.base}/flows`, { method: 'POST', headers: { 'content-type': 'application/json', 'Node-RED-Deployment-Type': 'full' }, body: JSON.stringify(nodes) });
      expect(res.status).toBeLessThan(300);
    };
    const elsewhere = flows().map((n) => (n.type === 'edge-infer-runtime' ? { ...n, dbPath: path.join(open.userDir, 'elsewhere.db') } : n));
    await deploy(elsewhere);
    await waitFor(async () => (await fetch(`${open.base}/edge-infer/api/overview`)).ok, 20_000, 'the only runtime at /edge-infer/');
    // A second runtime, logging to a third file: /edge-infer/ cannot pick, and lists both.
    await deploy([...elsewhere, { id: 'ei-runtime-2', type: 'edge-infer-runtime', name: 'second', dbPath: path.join(open.userDir, 'second.db') }]);
    // (While the deploy runs, there is a moment with no runtime at all.)
    const page = await waitFor(async () => {
      const r = await fetch(`${open.base}/edge-infer/`);
      const text = r.status === 404 ? await r.text() : '';
      return text.includes('runtime-2') ? text : undefined;
    }, 20_000, 'the list of runtimes');
    expect(page).toContain('href="runtime/ei-runtime/"');
    expect(page).toContain('href="runtime/ei-runtime-2/"');
    const api = await fetch(`${open.base}/edge-infer/api/overview`);
    expect(api.status).toBe(404);
    expect(((await api.json()) as { error: string }).error).toMatch(/no edge-infer runtime logs to .*edge-infer\.db; pick one: runtime\/ei-runtime\/ \(.*elsewhere\.db\), runtime\/ei-runtime-2\/ \(.*second\.db\)/);
    expect((await fetch(`${open.base}/edge-infer/runtime/ei-runtime-2/api/overview`)).ok).toBe(true);
  });
});

describe('the dashboard behind httpNodeAuth', () => {
  it('should refuse a request without Node-RED\'s login', async () => {
    for (const p of ['/edge-infer/', '/edge-infer/api/overview', '/edge-infer/api/alerts/1/ack']) {
      const res = await fetch(`${guarded.base}${p}`, { method: p.endsWith('/ack') ? 'POST' : 'GET' });
      expect(res.status, p).toBe(401);
    }
    const wrong = await fetch(`${guarded.base}/edge-infer/api/overview`, { headers: { authorization: `Basic ${Buffer.from('operator:guess').toString('base64')}` } });
    expect(wrong.status).toBe(401);
  });

  it('should answer the logged-in user, who acknowledges under their name', async () => {
    const headers = { authorization: BASIC };
    const session = await json<{ user: string | null }>(`${guarded.base}/edge-infer/api/session`, { headers });
    expect(session.user).toBe('operator');
    const o = await waitFor(async () => {
      const v = await json<OverviewView>(`${guarded.base}/edge-infer/api/overview`, { headers });
      return v.machines.length === 2 ? v : undefined;
    }, 30_000, 'both machines');
    expect(overviewModels(o!)).toEqual({ 'pump-a': ['vibration-anomaly'], 'pump-b': ['vibration-anomaly'] });
    const alert = await waitFor(async () => (await json<AlertsView>(`${guarded.base}/edge-infer/api/alerts?device=pump-b`, { headers })).alerts[0], 30_000, 'an alert of pump-b');
    const acked = await json<AlertView>(`${guarded.base}/edge-infer/api/alerts/${alert!.id}/ack`, { ...POST, headers: { ...headers, ...POST.headers } });
    expect(acked.ackedBy).toBe('operator');
  });
});
