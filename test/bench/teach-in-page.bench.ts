// Teach-in on the dashboard page, what it costs the gateway, side by side in one run: the page
// polls GET api/teach-in every 0.5 s while a device learns (every 5 s otherwise), and this measures
// that request against the two the page already makes (api/overview, read on every alert change;
// api/session, the cheapest route) on a real log over real HTTP, with 6 devices (the demo plant) and
// 60, half of them learning and a quarter with an active baseline. Rounds take turns between the
// routes; each row is the median over rounds of the mean time per request. Also the page's weight:
// the teach-in module's bytes beside the whole page's JavaScript.
// Run: npx tsx test/bench/teach-in-page.bench.ts
import { readFileSync, readdirSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { ModelCard } from '../../runtime/model';
import { packageRoot } from '../../runtime/paths';
import { type ResultRecord, ResultStore } from '../../runtime/store';
import { TeachIn } from '../../runtime/teachin';
import { buildPageIfStale } from '../helpers/browser';
import { type Served, serveDashboard, tempDir } from '../serve/dashboard-helpers';
import { fmt, int, machine, median, table } from './table';

const T0 = 1_700_000_000_000;
const ROUNDS = 15;
const PER_ROUND = 40;
const ROUTES = ['api/teach-in', 'api/overview', 'api/session'] as const;
/** One logged result of a device (test/store/helpers has the same, but imports vitest). */
function result(timeMs: number, device: string, score: number): ResultRecord {
  return { timeMs, device, model: 'vibration-anomaly', variant: 'int8', score, label: null, anomaly: false, outputs: { score: [score] }, latencyMs: 2.5, windowStartMs: timeMs - 400, windowEndMs: timeMs, messageKeys: [`${device}-${timeMs}`], processedMs: timeMs + 5 };
}

const card = { id: 'vibration-anomaly', task: 'anomaly', output: { tensor: 'score', threshold: 0.8 } } as unknown as ModelCard;

/** A log of `devices` devices with a minute of results each; half learning, a quarter active. */
async function plant(devices: number): Promise<{ served: Served; store: ResultStore; learning: number; active: number }> {
  const store = ResultStore.open({ path: path.join(tempDir(), 'log.db'), batchMs: 1 });
  const names = Array.from({ length: devices }, (_, i) => `machine-${i + 1}`);
  for (const device of names) {
    await store.commit({ results: Array.from({ length: 300 }, (_, i) => result(T0 + i * 200, device, 0.1 + ((i * 7919) % 100) / 1000)) });
  }
  const baselines = store.baselines();
  const teachIn = new TeachIn(baselines, { card: (m) => (m === card.id ? card : undefined), knows: (d, m) => baselines.hasResults(d, m) }, { minWindows: 20 });
  let active = 0;
  let learning = 0;
  for (const [i, device] of names.entries()) {
    if (i % 4 === 0) {
      // Taught to the end: an active baseline of its own.
      teachIn.start(device, card.id, { windows: 20 }, 'bench');
      for (let w = 0; w < 20; w++) teachIn.learn(card, { device, model: card.id, score: 0.1 + w / 100, outputs: { score: [0.1 + w / 100] }, timeMs: T0 + 60_000 + w * 200 });
      active++;
    }
    if (i % 2 === 1) {
      teachIn.start(device, card.id, { windows: 2000 }, 'bench');
      for (let w = 0; w < 340; w++) teachIn.learn(card, { device, model: card.id, score: 0.2, outputs: { score: [0.2] }, timeMs: T0 + 60_000 + w * 200 });
      learning++;
    }
  }
  const served = await serveDashboard(store, { teachIn });
  return { served, store, learning, active };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function get(port: number, route: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: `/${route}`, agent, headers: { accept: 'application/json' } }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`${route}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

async function measure(devices: number): Promise<Map<string, { ms: number; bytes: number }>> {
  const { served, store, learning, active } = await plant(devices);
  const per = new Map<string, number[]>(ROUTES.map((r) => [r, []]));
  const bytes = new Map<string, number>();
  try {
    // Warm: the reader's thread, the statements, the connection.
    for (const r of ROUTES) for (let i = 0; i < 10; i++) bytes.set(r, await get(served.port, r));
    for (let round = 0; round < ROUNDS; round++) {
      // Each round starts with another route, so no route always runs on a machine that just warmed.
      for (let k = 0; k < ROUTES.length; k++) {
        const r = ROUTES[(round + k) % ROUTES.length];
        const t = performance.now();
        for (let i = 0; i < PER_ROUND; i++) await get(served.port, r);
        per.get(r)!.push((performance.now() - t) / PER_ROUND);
      }
    }
    console.error(`${devices} devices: ${learning} learning, ${active} with an active baseline`);
  } finally {
    await served.close();
    await store.close();
  }
  return new Map(ROUTES.map((r) => [r, { ms: median(per.get(r)!), bytes: bytes.get(r)! }]));
}

async function main(): Promise<void> {
  const small = await measure(6);
  const large = await measure(60);
  const rows = ROUTES.map((r) => {
    const s = small.get(r)!;
    const l = large.get(r)!;
    return [r, fmt(s.ms, 3), fmt(s.ms / small.get('api/overview')!.ms, 2), int(s.bytes), fmt(l.ms, 3), fmt(l.ms / large.get('api/overview')!.ms, 2), int(l.bytes)];
  });
  console.log(table(['route', '6 devices: ms/request', '× api/overview', 'bytes', '60 devices: ms/request', '× api/overview', 'bytes'], rows));
  const poll = small.get('api/teach-in')!.ms;
  console.log(`\nOne browser polling api/teach-in every 0.5 s while a device learns (6 devices): ${fmt((poll * 2) / 10, 3)} % of the time of one core here (request served and read in this process).`);

  buildPageIfStale();
  const dir = path.join(packageRoot(), 'dist', 'runtime', 'serve', 'page');
  const js = readdirSync(dir).filter((f) => f.endsWith('.js'));
  const raw = (f: string): Buffer => readFileSync(path.join(dir, f));
  const total = js.reduce((n, f) => n + raw(f).length, 0);
  const totalGz = js.reduce((n, f) => n + gzipSync(raw(f)).length, 0);
  const teach = raw('teach-in.js');
  console.log(`\n${table(['page JavaScript', 'bytes', 'gzip bytes'], [['teach-in.js', int(teach.length), int(gzipSync(teach).length)], [`all ${js.length} modules`, int(total), int(totalGz)], ['teach-in share', `${fmt((100 * teach.length) / total, 1)} %`, `${fmt((100 * gzipSync(teach).length) / totalGz, 1)} %`]])}`);
  console.log(`\n${machine()}`);
  agent.destroy();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
