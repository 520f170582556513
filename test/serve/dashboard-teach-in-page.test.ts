// Teach-in from the dashboard's page, in a real browser (Debian's Chromium through playwright-core)
// against a real gateway in a child process: an embedded broker, a simulated plant of two healthy
// machines, the anomaly detector and the classifier, a log on disk and a dashboard user. In order,
// as an operator would: see no baseline; teach pump-1 from the form and watch it count and become
// active with its own threshold; cancel one on fan-1, and one of 30 minutes over pump-1's baseline;
// see a period too short fail with the gateway's reason, the classifier refused in the gateway's
// words and a target below the minimum refused; and a start after the session ended start
// nothing. teachIn.minWindows is lowered to 20 and the plant runs at twice real time, so a
// 30-window teach-in takes about 3 s.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import bcrypt from 'bcryptjs';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { buildPageIfStale, launchBrowser, openPage } from '../helpers/browser';
import { freePort } from '../helpers/brokers';
import { ChildGateway, tempDir, waitFor } from '../helpers/gateway';

const USER = 'otto';
const PASSWORD = 'night-shift-3';
const PLANT = {
  id: 'teach-in-test',
  title: 'Teach-in test plant: two healthy machines',
  description: 'pump-1 and fan-1, healthy throughout.',
  machines: [
    { device: 'pump-1', profile: 'pump-motor', seed: 111 },
    { device: 'fan-1', profile: 'fan', seed: 211 },
  ],
  publish: { topic: 'plant/{device}/{stream}', streams: ['vibration'], encoding: 'float32', qos: 1 },
};
const VIBRATION = { kind: 'float32', channels: ['vib_x', 'vib_y', 'vib_z'], header: 'edge-infer' } as const;
const TARGET = 30;

let gateway: ChildGateway;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let errors: string[];
let dbPath: string;

/** The teach-in line of a device's model on the overview. */
function line(device: string, model = 'vibration-anomaly'): Locator {
  return page.locator(`.machine[data-device="${device}"] .model[data-model="${model}"] .teach-in`);
}

async function text(l: Locator): Promise<string> {
  return (await l.textContent()) ?? '';
}

/** The log's teach-ins of a device, newest first. */
function baselines(device: string): Array<{ model: string; state: string; startedBy: string | null; targetWindows: number | null; windows: number; threshold: number | null }> {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT model, state, started_by AS startedBy, target_windows AS targetWindows, windows, threshold FROM baselines WHERE device = ? ORDER BY id DESC').all(device) as never;
  } finally {
    db.close();
  }
}

/** Opens a line's form, sets how many windows or minutes (the default stays when null) and starts. */
async function start(l: Locator, amount: number | null, unit: 'windows' | 'minutes' = 'windows'): Promise<void> {
  await l.locator('.teach-in-open').click();
  await l.locator('.teach-in-unit').selectOption(unit);
  if (amount !== null) await l.locator('.teach-in-amount').fill(String(amount));
  await l.locator('.teach-in-start').click();
}

beforeAll(async () => {
  buildPageIfStale();
  const dir = tempDir('edge-infer-teach-in-page-');
  const plantFile = path.join(dir, 'plant.json');
  writeFileSync(plantFile, JSON.stringify(PLANT));
  dbPath = path.join(dir, 'log.db');
  const config = parseGatewayConfig(
    {
      broker: { embedded: { port: await freePort() }, protocol: 4, clientId: 'teach-in-page-gateway' },
      storage: { path: dbPath },
      http: { port: 0, host: '127.0.0.1', users: [{ user: USER, passwordHash: bcrypt.hashSync(PASSWORD, 4) }] },
      engine: { backend: 'wasm', threads: 1 },
      pipelines: [
        { name: 'vibration-anomaly', topic: 'plant/{device}/vibration', decoder: VIBRATION, model: 'vibration-anomaly' },
        { name: 'fault-classifier', topic: 'plant/{device}/vibration', decoder: VIBRATION, model: 'fault-classifier' },
      ],
      simulate: { plant: plantFile, speed: 2 },
      teachIn: { minWindows: 20 },
    },
    'teach-in page test config',
  );
  gateway = new ChildGateway(config, path.join(dir, 'gateway.json'));
  [browser] = await Promise.all([launchBrowser(), gateway.start()]);
  ({ context, page, errors } = await openPage(browser));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
});

describe('teach-in on the dashboard page in Chromium', () => {
  it('shows each machine without a baseline, judged by the model\'s threshold', async () => {
    await page.goto(`http://127.0.0.1:${gateway.port}/`);
    await page.locator('#login-user').fill(USER);
    await page.locator('#login-password').fill(PASSWORD);
    await page.locator('dialog button[type=submit]').click();
    await page.locator('dialog').waitFor({ state: 'detached' });
    for (const device of ['pump-1', 'fan-1']) {
      await line(device).and(page.locator('[data-state="none"]')).waitFor({ timeout: 20_000 });
      expect(await text(line(device).locator('.teach-in-state'))).toBe('No baseline: the model\'s threshold 11.19 applies');
    }
    // The form's default passes the gateway's checks; minutes have their own.
    await line('pump-1').locator('.teach-in-open').click();
    await expect(line('pump-1').locator('.teach-in-amount').inputValue()).resolves.toBe('2000');
    await line('pump-1').locator('.teach-in-unit').selectOption('minutes');
    await expect(line('pump-1').locator('.teach-in-amount').inputValue()).resolves.toBe('30');
    await line('pump-1').locator('.teach-in-unit').selectOption('windows');
    await line('pump-1').locator('.teach-in-open').click();
    await expect(line('pump-1').locator('.teach-in-form').isHidden()).resolves.toBe(true);
  });

  it('teaches pump-1 from the form: learning, counting, then active with its own threshold on the bar', async () => {
    const pump = line('pump-1');
    await start(pump, TARGET);
    await pump.and(page.locator('[data-state="learning"]')).waitFor();
    await expect(pump.locator('.teach-in-cancel').isVisible()).resolves.toBe(true);
    const counts = new Set<number>();
    await waitFor(
      async () => {
        const m = /^Teach-in: learning pump-1's normal — (\d+) of 30 windows; the model's threshold 11\.19 applies meanwhile$/.exec(await text(pump.locator('.teach-in-state')));
        if (m) counts.add(Number(m[1]));
        return (await pump.getAttribute('data-state')) === 'active';
      },
      20_000,
      'pump-1 active',
    );
    // Counted on the page as it learned: more than one count between none and all.
    expect([...counts].filter((n) => n > 0 && n < TARGET).length).toBeGreaterThanOrEqual(2);
    const [row] = baselines('pump-1');
    expect(row).toMatchObject({ model: 'vibration-anomaly', state: 'active', startedBy: USER, targetWindows: TARGET, windows: TARGET });
    const own = row.threshold!.toFixed(row.threshold! < 100 ? 2 : 0);
    expect(await text(pump.locator('.teach-in-state'))).toMatch(new RegExp(`^Baseline active: pump-1's own threshold ${own.replace('.', '\\.')} \\(the model's: 11\\.19\\), from 30 healthy windows, since \\w{3} \\d+, \\d\\d:\\d\\d:\\d\\d( [AP]M)?$`));
    // The device's own threshold replaces the card's on its score bar; fan-1 keeps the card's.
    await waitFor(async () => (await text(page.locator('.machine[data-device="pump-1"] .model[data-model="vibration-anomaly"] .threshold'))) === `/ ${own}`, 5000, 'pump-1\'s own threshold on its bar');
    expect(await text(page.locator('.machine[data-device="fan-1"] .model[data-model="vibration-anomaly"] .threshold'))).toBe('/ 11.19');
    // The machine's page shows the same baseline under the model's title.
    await page.goto(`http://127.0.0.1:${gateway.port}/#/machine/pump-1`);
    const drill = page.locator('.model-charts[data-model="vibration-anomaly"] .teach-in[data-state="active"]');
    await drill.waitFor();
    expect(await text(drill.locator('.teach-in-state'))).toMatch(/^Baseline active: pump-1's own threshold/);
    // Its score chart draws the threshold pump-1 is judged by, not the card's.
    const caption = page.locator('.model-charts[data-model="vibration-anomaly"] figure[data-kind="score"] figcaption');
    await waitFor(async () => (await text(caption)) === `Score (threshold ${own})`, 5000, "pump-1's own threshold on its score chart");
    await page.goto(`http://127.0.0.1:${gateway.port}/#/`);
    await line('fan-1').and(page.locator('[data-state="none"]')).waitFor();
  });

  it('cancels fan-1\'s teach-in of the default 2,000 windows (back to none) and one of 30 minutes over pump-1\'s baseline (which stays)', async () => {
    const fan = line('fan-1');
    await start(fan, null);
    await waitFor(async () => /^Teach-in: learning fan-1's normal — \d+ of 2,000 windows/.test(await text(fan.locator('.teach-in-state'))), 5000, 'fan-1 learning');
    await fan.locator('.teach-in-cancel').click();
    await fan.and(page.locator('[data-state="none"]')).waitFor();
    expect(await text(fan.locator('.teach-in-state'))).toBe('No baseline: the model\'s threshold 11.19 applies');
    expect(baselines('fan-1')).toMatchObject([{ state: 'cancelled', targetWindows: 2000, threshold: null }]);

    // A new teach-in of 30 minutes over pump-1's active baseline, cancelled: its own threshold stays.
    const pump = line('pump-1');
    const before = await text(pump.locator('.teach-in-state'));
    await pump.locator('.teach-in-open').click();
    await pump.locator('.teach-in-unit').selectOption('minutes');
    await pump.locator('.teach-in-start').click();
    await waitFor(async () => /^Teach-in: learning pump-1's normal — \d+ windows so far of 30 min; its own threshold [\d.]+ applies meanwhile$/.test(await text(pump.locator('.teach-in-state'))), 5000, 'pump-1 learning for 30 min');
    await pump.locator('.teach-in-cancel').click();
    await pump.and(page.locator('[data-state="active"]')).waitFor();
    expect(await text(pump.locator('.teach-in-state'))).toBe(before);
    expect(baselines('pump-1').map((b) => b.state)).toEqual(['cancelled', 'active']);
  });

  it('says why a period too short for a baseline failed, in the gateway\'s words', async () => {
    // 0.05 min is 3 s of fan-1's data: about 15 windows, fewer than the 20 a baseline needs here.
    const fan = line('fan-1');
    await start(fan, 0.05, 'minutes');
    const note = fan.locator('.teach-in-note');
    await note.waitFor({ timeout: 10_000 });
    const [row] = baselines('fan-1');
    expect(row).toMatchObject({ state: 'failed', targetWindows: null, threshold: null });
    expect(row.windows).toBeLessThan(20);
    expect(await text(note)).toBe(`The last teach-in of fan-1 failed: ${row.windows} windows learned in 0.05 min, fewer than the 20 a baseline needs`);
    await expect(fan.getAttribute('data-state')).resolves.toBe('none');
  });

  it('shows the classifier\'s refusal and a too-small target as the gateway words them, and starts neither', async () => {
    const classifier = line('pump-1', 'fault-classifier');
    await start(classifier, 100);
    const refusal = classifier.locator('.teach-in-error');
    await refusal.waitFor();
    // What the API itself answers the same request, asked with the page's session.
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const res = await fetch(`http://127.0.0.1:${gateway.port}/api/teach-in/start`, { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: JSON.stringify({ device: 'pump-1', model: 'fault-classifier', windows: 100 }) });
    const { error } = (await res.json()) as { error: string };
    expect(res.status).toBe(400);
    expect(error).toMatch(/fault-classifier' is a classifier/);
    expect(await text(refusal)).toBe(error);
    await expect(classifier.getAttribute('data-state')).resolves.toBe('none');

    const fan = line('fan-1');
    await start(fan, 5);
    await waitFor(async () => (await text(fan.locator('.teach-in-error'))) === 'teach-in: windows must be at least 20 (fewer say nothing of a high quantile), got 5', 5000, 'the minimum named');
    expect(baselines('pump-1').filter((b) => b.model === 'fault-classifier')).toEqual([]);
    expect(baselines('fan-1').map((b) => b.state)).toEqual(['failed', 'cancelled']);
  });

  it('starts nothing once the session has ended, and says why', async () => {
    // The session ends behind the page's back (another tab logged out, the gateway restarted).
    await context.clearCookies();
    const fan = line('fan-1');
    await fan.locator('.teach-in-start').click();
    await waitFor(async () => (await text(fan.locator('.teach-in-error'))) === 'Not started: api/teach-in/start: log in first. Log in and try again.', 5000, 'the 401 explained');
    // Now the page knows: the header offers a login, and the next try does not even ask.
    await page.locator('#session button', { hasText: 'Log in' }).waitFor();
    await fan.locator('.teach-in-start').click();
    await waitFor(async () => /^Log in to start or cancel a teach-in/.test(await text(fan.locator('.teach-in-error'))), 5000, 'the page\'s own reason');
    expect(baselines('fan-1').map((b) => b.state)).toEqual(['failed', 'cancelled']);
    await expect(fan.getAttribute('data-state')).resolves.toBe('none');
  });

  it('words every state of a teach-in in the plant\'s words (the page\'s own module, in the page)', async () => {
    const said = await page.evaluate<string[]>(`import('./teach-in.js').then((m) => {
      const learning = { windows: 340, targetWindows: null, targetMinutes: 30, startedMs: 0, firstWindowMs: 0 };
      const baseline = { threshold: 9.87, windows: 2000, quantile: 0.999, margin: 1, median: 5, maxScore: 9, activeSinceMs: null };
      return [
        m.describe({ device: 'press-2', model: 'm', state: 'learning', threshold: 11.19, cardThreshold: 11.19, learning }),
        m.describe({ device: 'press-2', model: 'm', state: 'learning', threshold: 9.87, cardThreshold: 11.19, learning: { ...learning, windows: 12, targetWindows: 2000, targetMinutes: null }, baseline }),
        m.describe({ device: 'press-2', model: 'm', state: 'active', threshold: 9.87, cardThreshold: null, baseline }),
        m.describe({ device: 'press-2', model: 'm', state: 'none', threshold: null, cardThreshold: null }),
        m.count(100000),
        m.ended('press-2', { state: 'cancelled', reason: null, windows: 1234, targetWindows: 2000, targetMinutes: null, startedBy: 'cli', startedMs: 0, endedMs: 1, threshold: null }),
        m.ended('press-2', { state: 'failed', reason: null, windows: 3, targetWindows: null, targetMinutes: 1, startedBy: null, startedMs: 0, endedMs: 1, threshold: null }),
        String(m.ended('press-2', { state: 'active', reason: null, windows: 2000, targetWindows: 2000, targetMinutes: null, startedBy: null, startedMs: 0, endedMs: 1, threshold: 9 })),
      ];
    })`);
    expect(said).toEqual([
      'Teach-in: learning press-2\'s normal — 340 windows so far of 30 min; the model\'s threshold 11.19 applies meanwhile',
      'Teach-in: learning press-2\'s normal — 12 of 2,000 windows; its own threshold 9.87 applies meanwhile',
      'Baseline active: press-2\'s own threshold 9.87, from 2,000 healthy windows',
      'No baseline: the model\'s own rule applies',
      '100,000',
      'The last teach-in of press-2 was cancelled after 1,234 windows (started by cli)',
      'The last teach-in of press-2 failed: the gateway gave no reason',
      'null',
    ]);
  });

  it('threw no error in the page (the refusals are answers, not errors)', () => {
    expect(errors.filter((e) => !/status of (400|401)\b/.test(e))).toEqual([]);
  });
});
