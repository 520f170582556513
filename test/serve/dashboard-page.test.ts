// The dashboard's page in a real browser (Debian's Chromium through playwright-core) against a real
// gateway in a child process: an embedded broker, a simulated plant whose fan develops an
// imbalance a few seconds in, two example models, a log on disk, and a dashboard user. The steps
// run in order on one gateway, as an operator would: log in, watch the machines, see the fan turn
// to fault, acknowledge its alert, open its day, restart the gateway and find the day still there,
// then the same page on a phone, in dark and light. The README's screenshots are taken here.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import bcrypt from 'bcryptjs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { packageRoot } from '../../runtime/paths';
import { buildPageIfStale, launchBrowser, openPage, overflowsSideways } from '../helpers/browser';
import { freePort } from '../helpers/brokers';
import { ChildGateway, tempDir, waitFor } from '../helpers/gateway';

const USER = 'anna';
const PASSWORD = 'shift-2-lead';
const ROOT = packageRoot();
const IMAGES = path.join(ROOT, 'docs', 'images');

// Three machines; the fan's imbalance starts 3 s in and reaches its severity 5 s later, so an
// alert is raised within seconds rather than the demo plant's half minute.
const PLANT = {
  id: 'dashboard-test',
  title: 'Dashboard test plant: three machines, the fan unbalanced early',
  description: 'pump-1 and compressor-1 stay healthy; fan-1 develops an imbalance from 3 s (over 5 s to severity 0.6).',
  machines: [
    { device: 'pump-1', profile: 'pump-motor', seed: 101 },
    { device: 'fan-1', profile: 'fan', seed: 201, faults: [{ type: 'imbalance', onsetS: 3, rampS: 5, severity: 0.6 }] },
    { device: 'compressor-1', profile: 'compressor', seed: 301 },
  ],
  publish: { topic: 'plant/{device}/{stream}', streams: ['vibration'], encoding: 'float32', qos: 1 },
};
const DEVICES = PLANT.machines.map((m) => m.device);
const VIBRATION = { kind: 'float32', channels: ['vib_x', 'vib_y', 'vib_z'], header: 'edge-infer' } as const;

let gateway: ChildGateway;
let browser: Browser;
let dbPath: string;
const pageErrors: string[] = [];

function base(): string {
  return `http://127.0.0.1:${gateway.port}/`;
}

/** A desktop page, logged in through the page's own login form, showing the overview. */
async function loggedIn(options: Parameters<typeof openPage>[1] = {}, at = ''): Promise<Page> {
  const { page, errors } = await openPage(browser, options);
  page.on('close', () => pageErrors.push(...errors.filter((e) => !/\b401\b/.test(e))));
  await page.goto(base() + at);
  await page.locator('#login-user').fill(USER);
  await page.locator('#login-password').fill(PASSWORD);
  await page.locator('dialog button[type=submit]').click();
  await page.locator('dialog').waitFor({ state: 'detached' });
  return page;
}

function dataMs(page: Page, selector: string, attr = 'data-last-ms'): Promise<number> {
  return page
    .locator(selector)
    .first()
    .getAttribute(attr)
    .then((v) => Number(v ?? NaN));
}

/** Mean of the background's RGB channels: dark themes sit low, light ones high. */
async function backgroundLevel(page: Page): Promise<number> {
  const rgb = await page.evaluate<string>('getComputedStyle(document.body).backgroundColor');
  const [r, g, b] = (rgb.match(/\d+/g) ?? []).map(Number);
  return (r + g + b) / 3;
}

beforeAll(async () => {
  // The gateway serves the built page (dist/runtime/serve/page): this version of it.
  buildPageIfStale();
  const dir = tempDir('edge-infer-dashboard-');
  const plantFile = path.join(dir, 'plant.json');
  writeFileSync(plantFile, JSON.stringify(PLANT));
  dbPath = path.join(dir, 'log.db');
  const config = parseGatewayConfig(
    {
      broker: { embedded: { port: await freePort() }, protocol: 4, clientId: 'dashboard-test-gateway' },
      storage: { path: dbPath },
      http: { port: 0, host: '127.0.0.1', users: [{ user: USER, passwordHash: bcrypt.hashSync(PASSWORD, 8) }] },
      engine: { backend: 'wasm', threads: 1 },
      pipelines: [
        { name: 'vibration-anomaly', topic: 'plant/{device}/vibration', decoder: VIBRATION, model: 'vibration-anomaly' },
        { name: 'fault-classifier', topic: 'plant/{device}/vibration', decoder: VIBRATION, model: 'fault-classifier' },
      ],
      simulate: { plant: plantFile, speed: 1 },
    },
    'dashboard test config',
  );
  gateway = new ChildGateway(config, path.join(dir, 'gateway.json'));
  [browser] = await Promise.all([launchBrowser(), gateway.start()]);
  mkdirSync(IMAGES, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
});

describe('the dashboard page in Chromium', () => {
  let page: Page;

  it('asks for a login, then shows every machine of the plant with its models', async () => {
    page = await loggedIn();
    await page.locator('body[data-ready]').waitFor();
    // A machine whose first result arrives after the first render joins from the live feed.
    await waitFor(async () => (await page.locator('.machine').count()) === DEVICES.length, 20_000, 'every machine on the overview');
    for (const device of DEVICES) {
      const card = page.locator(`.machine[data-device="${device}"]`);
      await expect(card.locator('.model[data-model="vibration-anomaly"] .score').textContent()).resolves.toMatch(/\d/);
      await expect(card.locator('.model[data-model="fault-classifier"] .class').textContent()).resolves.toMatch(/\w/);
      await expect(card.locator('.state').textContent()).resolves.toMatch(/^(normal|warning|fault)$/);
    }
    expect(await page.evaluate<number | null>('window.edgeInferStats.firstRenderMs')).toBeGreaterThan(0);
    // The same page at /dashboard: its URLs are relative, so it finds its files and its API there too.
    await page.goto(`${base()}dashboard`);
    await page.locator('body[data-ready] .machine').first().waitFor();
    await page.goto(base());
    await page.locator('body[data-ready] .machine').first().waitFor();
  });

  it('moves the scores live, from the event stream', async () => {
    const row = '.machine[data-device="pump-1"] .model[data-model="vibration-anomaly"]';
    const before = await dataMs(page, row);
    await waitFor(async () => (await dataMs(page, row)) > before, 10_000, 'a newer result on the card');
    const drawn = await page.evaluate<{ drawn: number; latenciesMs: number[] }>('window.edgeInferStats');
    expect(drawn.drawn).toBeGreaterThan(0);
    expect(Math.max(...drawn.latenciesMs)).toBeLessThan(1000);
  });

  it('turns the unbalanced fan to fault, first on the page, with its alert', async () => {
    const fan = page.locator('.machine[data-device="fan-1"]');
    await waitFor(async () => (await fan.getAttribute('data-state')) === 'fault', 45_000, 'fan-1 in fault');
    await expect(fan.locator('.state').textContent()).resolves.toBe('fault');
    await expect(page.locator('.machine').first().getAttribute('data-device')).resolves.toBe('fan-1');
    await fan.locator('.alert-line').first().waitFor();
    await page.screenshot({ path: path.join(IMAGES, 'dashboard.png') });
  });

  it('acknowledges the alert: who and when on the page and in the log', async () => {
    const fan = page.locator('.machine[data-device="fan-1"]');
    const id = Number(await fan.locator('.alert-line').first().getAttribute('data-alert-id'));
    await fan.locator('.alert-line button.ack').first().click();
    await waitFor(async () => /acknowledged by anna/.test((await fan.locator('.alert-line .acked').first().textContent().catch(() => '')) ?? ''), 10_000, 'the acknowledgement on the card');
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare('SELECT acked_by AS by, acked_ms AS ms FROM alerts WHERE id = ?').get(id) as { by: string; ms: number };
      expect(row.by).toBe(USER);
      expect(Math.abs(row.ms - Date.now())).toBeLessThan(60_000);
    } finally {
      db.close();
    }
    await page.goto(`${base()}#/alerts`);
    const listed = page.locator(`.alerts-history tr[data-alert-id="${id}"]`);
    await listed.waitFor();
    await expect(listed.locator('.acked').textContent()).resolves.toMatch(/^anna, /);
  });

  it('opens the fan over 24 h: charts of score, class and RMS that follow live results, and zoom', async () => {
    const asked: URL[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/chart?')) asked.push(new URL(r.url()));
    });
    await page.goto(`${base()}#/machine/fan-1?range=24h`);
    await page.locator('button[data-range="24h"][aria-pressed="true"]').waitFor();
    const score = '.model-charts[data-model="vibration-anomaly"] .chart-score';
    for (const chart of [score, '.model-charts[data-model="fault-classifier"] .chart-class', '.chart-rms']) {
      await waitFor(async () => Number(await page.locator(chart).getAttribute('data-points')) > 0, 10_000, `points on ${chart}`);
    }
    // Two points per pixel of the chart's width, over 24 h, asked per model and for the RMS.
    const width = await page.locator(`${score} .plot`).evaluate((e) => (e as unknown as { clientWidth: number }).clientWidth);
    const q = asked.find((u) => u.searchParams.get('model') === 'vibration-anomaly' && !u.searchParams.has('field'))!.searchParams;
    expect(Number(q.get('points'))).toBe(Math.min(5000, Math.round(2 * width)));
    expect(Number(q.get('to')) - Number(q.get('from'))).toBeGreaterThanOrEqual(24 * 3600_000);
    expect(asked.some((u) => u.searchParams.get('field') === 'rms')).toBe(true);
    const before = await dataMs(page, score);
    await waitFor(async () => (await dataMs(page, score)) > before, 10_000, 'a live point on the score chart');

    await page.locator(`${score} .u-over`).scrollIntoViewIfNeeded();
    const plot = (await page.locator(`${score} .u-over`).boundingBox())!;
    await page.mouse.move(plot.x + plot.width * 0.7, plot.y + plot.height / 2);
    await page.mouse.down();
    await page.mouse.move(plot.x + plot.width * 0.95, plot.y + plot.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.locator('.zoom-back:not([hidden])').waitFor();
    await expect(page.locator('.range-status').textContent()).resolves.toMatch(/zoomed/);
    await page.locator('.zoom-back').click();
    await expect(page.locator('.range-status').textContent()).resolves.toMatch(/now \(live\)/);
  });

  it('fits a phone: no sideways scrolling, cards stacked, charts as wide as the screen', async () => {
    const phone = await loggedIn({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await phone.locator('body[data-ready] .machine').first().waitFor();
    expect(await overflowsSideways(phone)).toBe(false);
    const xs = await phone.locator('.machine').evaluateAll((cards) => cards.map((c) => (c as unknown as { offsetLeft: number }).offsetLeft));
    expect(new Set(xs).size).toBe(1);
    await phone.goto(`${base()}#/machine/fan-1?range=1h`);
    await phone.locator('.chart-score[data-points]').first().waitFor();
    expect(await overflowsSideways(phone)).toBe(false);
    for (const view of ['#/alerts', '#/models', '#/health']) {
      await phone.goto(base() + view);
      await phone.locator('main h1').waitFor();
      await phone.waitForTimeout(300);
      expect(await overflowsSideways(phone), view).toBe(false);
    }
    await phone.close();
  });

  it('follows the dark preference, switches to light with the toggle and remembers it', async () => {
    const dark = await loggedIn({ colorScheme: 'dark' });
    await dark.locator('body[data-ready]').waitFor();
    expect(await backgroundLevel(dark)).toBeLessThan(60);
    await expect(dark.locator('#theme').getAttribute('aria-pressed')).resolves.toBe('true');
    await dark.locator('#theme').click();
    expect(await backgroundLevel(dark)).toBeGreaterThan(200);
    await dark.reload();
    await dark.locator('body[data-ready]').waitFor();
    expect(await backgroundLevel(dark)).toBeGreaterThan(200);
    await expect(dark.locator('html').getAttribute('data-theme')).resolves.toBe('light');
    await dark.close();
    const light = await loggedIn({ colorScheme: 'light' });
    await light.locator('body[data-ready]').waitFor();
    expect(await backgroundLevel(light)).toBeGreaterThan(200);
    await light.close();
  });

  it('draws a custom range around what the plant logged: the fault of the fan as it developed', async () => {
    const score = '.model-charts[data-model="vibration-anomaly"] .chart-score';
    await page.goto(`${base()}#/machine/fan-1?range=15m`);
    await waitFor(async () => Number(await page.locator(score).getAttribute('data-points')) > 0, 10_000, 'points over 15 min');
    // Half a minute of the plant at least, so the picture (the README's) shows the fault grow.
    const first = await dataMs(page, score, 'data-first-ms');
    await waitFor(() => Date.now() - first > 30_000, 30_000, 'half a minute of results');
    const local = (ms: number): Promise<string> => page.evaluate<string>(`new Date(${ms} - new Date(${ms}).getTimezoneOffset() * 60000).toISOString().slice(0, 19)`);
    await page.locator('button[data-range="custom"]').click();
    await page.locator('#range-from').fill(await local(first - 2000));
    await page.locator('#range-to').fill(await local(Date.now() + 2000));
    await page.locator('#range-custom button[type=submit]').click();
    await page.locator('button[data-range="custom"][aria-pressed="true"]').waitFor();
    await waitFor(async () => /· (every result|buckets)/.test((await page.locator('.range-status').textContent()) ?? ''), 10_000, 'the custom range drawn');
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(IMAGES, 'machine.png'), fullPage: true });
  });

  it('shows the day still there after the gateway restarts on the same log', async () => {
    const before = await dataMs(page, '.chart-score');
    await page.close();
    const restartAt = Date.now();
    await gateway.stop();
    await gateway.start();
    page = await loggedIn({}, '#/machine/fan-1?range=24h');
    const score = '.model-charts[data-model="vibration-anomaly"] .chart-score';
    await waitFor(async () => Number(await page.locator(score).getAttribute('data-points')) > 0, 15_000, 'points after the restart');
    expect(await dataMs(page, score, 'data-first-ms')).toBeLessThan(Math.min(before, restartAt));
    await page.goto(`${base()}#/alerts`);
    await expect(page.locator('.alerts-history .acked').first().textContent()).resolves.toMatch(/^anna, /);
    await page.close();
  });

  it('threw no error in any page', () => {
    expect(pageErrors).toEqual([]);
  });
});
