// Dashboard benchmark, side by side in one run:
//  1. ingest unharmed: the gateway's rate on one Mosquitto with no browser open, against its rate
//     with five browsers (Chromium, one context each) on a machine's drill-down polling its 30-day
//     charts from a log holding 10.4 million results, and with five on the live overview (every
//     result of the ingest pushed to each), in rounds taking turns. On a plant the browsers run on
//     other machines; here they would take the gateway's cores, so the gateway (this process: its
//     main thread, the log reader's worker, SQLite) runs on core 0 and Chromium and Mosquitto on
//     core 1 (taskset), and the gateway's CPU time per message is measured beside its rate;
//  2. the page: first paint of the overview, and result to pixel (from the commit of a result to
//     the frame that draws it) on the gateway with the simulated plant;
//  3. browser memory over a run with two machines' drill-downs (twelve charts) updating each second
//     (--minutes, default 3; the goal is stated for 30);
//  4. the one-command start (`npm start` without npm's own process): from the start of the
//     command to the first machine on the dashboard in a browser, and the resident memory of the
//     gateway and the Node-RED beside it after a minute.
// Run: npx tsx test/bench/dashboard.bench.ts [--minutes 30] [--page-only | --ingest-only]   (or: npm run bench dashboard)
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { Gateway } from '../../runtime/gateway/gateway';
import { embeddedDefaults } from '../../runtime/gateway/defaults';
import { quantile } from '../../runtime/stats';
import { PlantPublisher } from '../../runtime/stream/plant-publisher';
import { resolvePlant } from '../../runtime/cli/plant';
import { CHROMIUM } from '../helpers/browser';
import { freePort, startMosquitto } from '../helpers/brokers';
import { testConfig, vibrationBlock, waitFor } from '../helpers/gateway';
import { packageRoot } from '../../runtime/paths';
import { DAY, HISTORY_MODEL, HISTORY_T0, buildHistory, historyDevice } from './history';
import { publish } from './publish';
import { fmt, int, machine, median, table } from './table';

const HISTORY_DEVICES = 4;
const HISTORY_DAYS = 30;
const BROWSERS = 5;
/** Each browser asks for its machine's 30-day score and RMS charts this often. */
const POLL_MS = 2000;
/** Points a chart asks for: two per pixel of a 1200-pixel-wide chart. */
const CHART_POINTS = 2400;
const DEVICES = 8;
const PER_DEVICE = 1500;
const ROUNDS = 15;
const MODES = ['none', 'charts', 'overview'] as const;
type Mode = (typeof MODES)[number];

const minutesArg = process.argv.indexOf('--minutes');
const MEMORY_MINUTES = minutesArg > 0 ? Number(process.argv[minutesArg + 1]) : 3;

/** Chromium, on the given cores when told (through a wrapper that starts it under taskset). */
async function launch(dir: string, cores?: string): Promise<Browser> {
  let executablePath = CHROMIUM;
  if (cores !== undefined) {
    executablePath = path.join(dir, 'chromium-pinned');
    writeFileSync(executablePath, `#!/bin/sh\nexec taskset -c ${cores} ${CHROMIUM} "$@"\n`);
    chmodSync(executablePath, 0o755);
  }
  return chromium.launch({ executablePath, args: ['--no-sandbox', '--enable-precise-memory-info', '--js-flags=--expose-gc'] });
}

/** Every thread of a process on the given cores. */
function pin(pid: number, cores: string): void {
  execFileSync('taskset', ['-a', '-cp', cores, String(pid)], { stdio: 'ignore' });
}

/**
 * In the page: ask for the machine's 30-day charts every POLL_MS, keeping each answer's time. (A
 * string, not a function: the bench runs under tsx, whose helpers the page does not have.)
 */
function startPolling(page: Page, device: string): Promise<void> {
  const query = `device=${device}&model=${HISTORY_MODEL}&from=${HISTORY_T0}&to=${HISTORY_T0 + HISTORY_DAYS * DAY - 1}&points=${CHART_POINTS}`;
  return page.evaluate(`(() => {
    window.benchTimes = [];
    window.benchErrors = 0;
    const ask = async (field) => {
      const t0 = performance.now();
      const res = await fetch('api/chart?${query}&field=' + field);
      const body = await res.json();
      if (!res.ok || !Array.isArray(body.points)) window.benchErrors++;
      else window.benchTimes.push(performance.now() - t0);
    };
    window.benchPoll = setInterval(() => Promise.all([ask('score'), ask('rms')]).catch(() => window.benchErrors++), ${POLL_MS});
  })()`);
}

async function stopPolling(page: Page): Promise<{ times: number[]; errors: number }> {
  return page.evaluate('(() => { clearInterval(window.benchPoll); return { times: window.benchTimes, errors: window.benchErrors }; })()');
}

/** Part 1: the gateway's rate with no browser and with five polling, in alternating rounds. */
async function ingest(dir: string): Promise<void> {
  const file = path.join(dir, 'month.db');
  const built = buildHistory(file, HISTORY_DEVICES, HISTORY_DAYS);
  // The gateway (this process and the threads it starts from now on) on core 0, the rest on core 1.
  pin(process.pid, '0');
  const broker = await startMosquitto();
  for (const pid of execFileSync('pgrep', ['-f', broker.dataDir]).toString().trim().split('\n')) pin(Number(pid), '1');
  const browser = await launch(dir, '1');
  const pages = await Promise.all(Array.from({ length: BROWSERS }, async () => (await browser.newContext()).newPage()));
  const rates: Record<Mode, number[]> = { none: [], charts: [], overview: [] };
  const cpu: Record<Mode, number[]> = { none: [], charts: [], overview: [] };
  const chartTimes: number[] = [];
  let chartErrors = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const mode = MODES[round % MODES.length];
      const config = testConfig(broker.url, { storage: { path: file }, scheduler: { maxBatch: 64, maxWaitMs: 5, maxQueue: 4096, policy: 'pause' } }, { recordEvery: 0 });
      config.pipelines = config.pipelines.filter((p) => p.name === 'anomaly');
      // One client id for every round: its session resumes empty, where a new id each round would
      // leave the broker a session per round queueing every later round's messages.
      config.broker = { ...config.broker, clientId: 'bench-dashboard-gateway' };
      const gw = new Gateway(config, () => undefined);
      await gw.start();
      try {
        if (mode === 'charts') {
          await Promise.all(pages.map((p, i) => p.goto(`${gw.dashboardUrl}#/machine/${historyDevice(i % HISTORY_DEVICES)}?range=30d`)));
          await Promise.all(pages.map((p, i) => startPolling(p, historyDevice(i % HISTORY_DEVICES))));
        } else if (mode === 'overview') {
          await Promise.all(pages.map((p) => p.goto(gw.dashboardUrl)));
          await Promise.all(pages.map((p) => p.waitForSelector('body[data-ready]')));
        }
        // Each round its own samples (a later start time): nothing is a redelivery of an earlier round.
        const messages: Array<{ topic: string; payload: Buffer }> = [];
        const t0 = 1_700_000_000_000 + (round + 1) * 10 * DAY;
        for (let seq = 0; seq < PER_DEVICE; seq++) for (let d = 0; d < DEVICES; d++) messages.push({ topic: `plant/m${d}/vibration`, payload: vibrationBlock(seq, 512, t0 + d) });
        const before = gw.log.counts().results;
        const expected = before + DEVICES * (Math.floor((PER_DEVICE * 512 - 2048) / 1024) + 1);
        const start = performance.now();
        const used = process.cpuUsage();
        await publish(broker.url, messages);
        await waitFor(() => gw.log.counts().results >= expected, 300_000, 'the gateway');
        rates[mode].push(messages.length / ((performance.now() - start) / 1000));
        const { user, system } = process.cpuUsage(used);
        cpu[mode].push((user + system) / messages.length);
        if (mode === 'charts') {
          for (const p of pages) {
            const polled = await stopPolling(p);
            chartTimes.push(...polled.times);
            chartErrors += polled.errors;
          }
        }
        if (mode !== 'none') await Promise.all(pages.map((p) => p.goto('about:blank')));
      } finally {
        await gw.stop();
      }
    }
  } finally {
    await browser.close();
    await broker.stop();
    pin(process.pid, '0,1');
  }
  const none = median(rates.none);
  const cpuNone = median(cpu.none);
  const row = (label: string, mode: Mode): Array<string | number> => [label, rates[mode].map((r) => int(r)).join(', '), int(median(rates[mode])), fmt(median(rates[mode]) / none), fmt(median(cpu[mode]), 0), fmt(median(cpu[mode]) / cpuNone)];
  console.log(`Ingest with the dashboard open: ${int(DEVICES * PER_DEVICE)} QoS 1 messages (512 × 3 float32) per round into the vibration-anomaly pipeline, on a log of ${int(built.rows)} results (${HISTORY_DEVICES} machines × ${HISTORY_DAYS} days); ${ROUNDS} rounds taking turns; the gateway on core 0, Mosquitto and Chromium on core 1 (goal: with five browsers within 5 % of none)\n`);
  console.log(
    table(
      ['browsers', 'rounds (messages/s)', 'median messages/s', 'vs none', 'gateway CPU µs/message', 'vs none'],
      [
        row('none', 'none'),
        row(`${BROWSERS} on a machine's drill-down, each polling its 30-day score and RMS charts (${CHART_POINTS} points) every ${POLL_MS / 1000} s`, 'charts'),
        row(`${BROWSERS} on the live overview (every result pushed to each)`, 'overview'),
      ],
    ),
  );
  console.log(`\n30-day chart answers while ingesting: ${chartTimes.length} (errors ${chartErrors}), p50 ${fmt(quantile(chartTimes, 0.5), 1)} ms, p99 ${fmt(quantile(chartTimes, 0.99), 1)} ms, in the browser (request to parsed JSON)`);
}

/** Part 2 and 3: the page on the gateway with the simulated plant. */
async function page(dir: string): Promise<void> {
  const brokerPort = await freePort();
  const config = embeddedDefaults({ brokerPort, httpPort: 0, db: path.join(dir, 'plant.db'), speed: 1 });
  const gw = new Gateway(config, () => undefined);
  await gw.start();
  const plant = await resolvePlant('demo');
  const publisher = new PlantPublisher(plant, { url: gw.brokerUrl, speed: 1, clientId: 'bench-plant' });
  await publisher.start();
  const publishing = publisher.run();
  const browser = await launch(dir);
  try {
    await waitFor(() => gw.log.counts().results > 20, 60_000, 'the first results');
    // First paint of the overview: a fresh browser context each time (no cache).
    const paints: Array<{ fcp: number; ready: number }> = [];
    for (let k = 0; k < 7; k++) {
      const context = await browser.newContext();
      const p = await context.newPage();
      await p.goto(gw.dashboardUrl);
      await p.waitForSelector('body[data-ready]', { timeout: 30_000 });
      paints.push(
        await p.evaluate<{ fcp: number; ready: number }>("({ fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN, ready: window.edgeInferStats.firstRenderMs })"),
      );
      await context.close();
    }
    console.log(`\nThe overview, ${paints.length} loads in fresh browser contexts (goal: first paint ≤ 1.5 s)\n`);
    console.log(
      table(
        ['measure', 'median ms', 'max ms'],
        [
          ['first contentful paint', fmt(median(paints.map((p) => p.fcp)), 0), fmt(Math.max(...paints.map((p) => p.fcp)), 0)],
          ['machines shown (body[data-ready])', fmt(median(paints.map((p) => p.ready)), 0), fmt(Math.max(...paints.map((p) => p.ready)), 0)],
        ],
      ),
    );
    await pixels(browser, gw);
    await memory(browser, gw);
  } finally {
    await browser.close();
    await publisher.stop();
    await publishing.catch(() => undefined);
    await gw.stop();
  }
}

/** Result to pixel: from a result's commit (the gateway's clock) to the frame that draws it (the same clock). */
async function pixels(browser: Browser, gw: Gateway): Promise<void> {
  const p = await (await browser.newContext()).newPage();
  await p.goto(gw.dashboardUrl);
  await p.waitForSelector('body[data-ready]');
  await new Promise((r) => setTimeout(r, 30_000));
  const lags = await p.evaluate<number[]>('window.edgeInferStats.latenciesMs');
  console.log(`\nResult to pixel on the overview over 30 s (goal: p95 ≤ 1 s): ${lags.length} results drawn, p50 ${fmt(quantile(lags, 0.5), 0)} ms, p95 ${fmt(quantile(lags, 0.95), 0)} ms, max ${fmt(Math.max(...lags), 0)} ms`);
  await p.context().close();
}

/** The browsers' JS heap (after a collection) each minute, on two machines' drill-downs updating each second. */
async function memory(browser: Browser, gw: Gateway): Promise<void> {
  const tabs = await Promise.all(
    ['fan-1', 'pump-2'].map(async (device) => {
      const p = await (await browser.newContext()).newPage();
      const cdp = await p.context().newCDPSession(p);
      await cdp.send('Performance.enable');
      await p.goto(`${gw.dashboardUrl}#/machine/${device}?range=15m`);
      await p.waitForSelector('[data-last-ms]');
      return { p, cdp };
    }),
  );
  await new Promise((r) => setTimeout(r, 10_000));
  const charts = (await Promise.all(tabs.map((t) => t.p.locator('[data-last-ms]').count()))).reduce((a, b) => a + b, 0);
  const heap = async (): Promise<number> => {
    let total = 0;
    for (const { cdp } of tabs) {
      await cdp.send('HeapProfiler.collectGarbage');
      const { metrics } = (await cdp.send('Performance.getMetrics')) as { metrics: Array<{ name: string; value: number }> };
      total += metrics.find((m) => m.name === 'JSHeapUsedSize')!.value;
    }
    return total;
  };
  const samples: number[] = [await heap()];
  for (let m = 1; m <= MEMORY_MINUTES; m++) {
    await new Promise((r) => setTimeout(r, 60_000));
    samples.push(await heap());
  }
  const first = samples[0];
  console.log(`\nBrowser memory over ${MEMORY_MINUTES} min on fan-1's and pump-2's drill-downs (15 min range, ${charts} charts, live), JS heap of both pages after a collection (goal: flat within ±10 % over 30 min)\n`);
  console.log(table(['minute', 'heap MB', 'vs first'], samples.map((s, i) => [i === 0 ? '0 (10 s in)' : i, fmt(s / 1e6, 2), fmt(s / first)])));
  console.log(`\nend / start ${fmt(samples[samples.length - 1] / first, 3)}, peak / low ${fmt(Math.max(...samples) / Math.min(...samples), 3)}`);
  for (const t of tabs) await t.p.context().close();
}

/** Resident memory of a process and every process below it, bytes (VmRSS). */
function treeRss(pid: number): { bytes: number; processes: number } {
  let bytes = 0;
  let processes = 0;
  const walk = (p: number): void => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) bytes += Number(m[1]) * 1024;
      processes++;
    } catch {
      return; // gone meanwhile
    }
    let children = '';
    try {
      children = execFileSync('pgrep', ['-P', String(p)]).toString();
    } catch {
      // no children: pgrep exits 1
    }
    for (const c of children.trim().split('\n').filter(Boolean)) walk(Number(c));
  };
  walk(pid);
  return { bytes, processes };
}

/** Part 4: `npm start`'s command in an empty folder, on free ports: first machine on the dashboard, then memory. */
async function start(dir: string): Promise<void> {
  const cwd = mkdtempSync(path.join(dir, 'start-'));
  const [http, broker, nodeRed] = [await freePort(), await freePort(), await freePort()];
  const t0 = performance.now();
  // As package.json's start script runs it.
  const proc = spawn(process.execPath, ['--max-semi-space-size=4', path.join(packageRoot(), 'bin', 'edge-infer.js'), 'run', '--http-port', String(http), '--broker-port', String(broker), '--node-red-port', String(nodeRed)], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += String(d)));
  proc.stderr!.on('data', (d) => (out += String(d)));
  const browser = await launch(dir);
  try {
    const p = await (await browser.newContext()).newPage();
    const url = `http://127.0.0.1:${http}/`;
    await waitFor(async () => (await fetch(url).catch(() => null))?.ok, 60_000, `the dashboard (output: ${out.slice(-400)})`);
    await p.goto(url);
    await p.waitForSelector('[data-last-ms]', { timeout: 60_000 });
    const firstMachine = performance.now() - t0;
    await waitFor(() => out.includes('Node-RED editor:'), 60_000, `Node-RED (output: ${out.slice(-400)})`);
    const nodeRedUp = performance.now() - t0;
    const samples: Array<{ s: number; bytes: number; processes: number }> = [];
    for (const at of [30, 60, 90]) {
      const wait = t0 + at * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      samples.push({ s: at, ...treeRss(proc.pid!) });
    }
    console.log(`\nThe one-command start in an empty folder (the start script's command; npm's own process adds about 55 MB), a browser on the dashboard (goals: first result on the dashboard ≤ 10 s; resident ≤ 400 MB)\n`);
    console.log(
      table(
        ['measure', 'figure'],
        [
          ['start → first machine drawn on the dashboard', `${fmt(firstMachine / 1000, 1)} s`],
          ['start → Node-RED editor answering', `${fmt(nodeRedUp / 1000, 1)} s`],
          ...samples.map((x): [string, string] => [`resident at ${x.s} s (gateway, Node-RED: ${x.processes} processes)`, `${fmt(x.bytes / 1048576, 0)} MB`]),
        ],
      ),
    );
  } finally {
    await browser.close();
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-dashboard-bench-'));
  try {
    if (!process.argv.includes('--page-only')) await ingest(dir);
    if (!process.argv.includes('--ingest-only')) {
      await page(dir);
      await start(dir);
    }
    console.log(`\n${machine()}; Chromium ${CHROMIUM}, headless`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
