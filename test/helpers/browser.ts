// A real browser for the dashboard's tests: Debian's Chromium, headless, driven by playwright-core.
// `.ci/run` installs it; a missing one fails the test with what to install, it never skips.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Page } from 'playwright-core';
import { packageRoot } from '../../runtime/paths';

export const CHROMIUM = '/usr/lib/chromium/chromium';

/** Launches Chromium headless (no sandbox: the tests may run as root in a container). */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
}

/**
 * A page in a fresh context (its own storage and cookies) that fails the test on an uncaught
 * error or a console error from the page: a dashboard that throws is broken even if it renders.
 */
export async function openPage(browser: Browser, options: BrowserContextOptions = {}): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A favicon the server does not have is the browser's request, not the page's.
    if (m.type() === 'error' && !/favicon/.test(m.location().url)) errors.push(`console: ${m.text()} (${m.location().url})`);
  });
  return { context, page, errors };
}

/** Whether the document is wider than the viewport (a page that scrolls sideways on a phone). */
export function overflowsSideways(page: Page): Promise<boolean> {
  // A string: the tests are compiled without the DOM's types.
  return page.evaluate<boolean>('document.documentElement.scrollWidth > document.documentElement.clientWidth + 1');
}

/**
 * Builds the dashboard's page into dist/ (what the gateway serves) when a source of it is newer than
 * the build: `npm test` builds first (pretest), and a second build beside a browser test that is
 * serving the page would swap its files under it.
 */
export function buildPageIfStale(): void {
  const root = packageRoot();
  const sources = [path.join(root, 'runtime', 'serve', 'page'), path.join(root, 'runtime', 'serve', 'dashboard-contract.ts')];
  const built = path.join(root, 'dist', 'runtime', 'serve', 'page');
  const newest = Math.max(...sources.flatMap((s) => (statSync(s).isDirectory() ? readdirSync(s).map((f) => statSync(path.join(s, f)).mtimeMs) : [statSync(s).mtimeMs])));
  const files = existsSync(built) ? readdirSync(built) : [];
  const oldest = files.length ? Math.min(...files.map((f) => statSync(path.join(built, f)).mtimeMs)) : -Infinity;
  const expected = readdirSync(sources[0]).map((f) => f.replace(/\.ts$/, '.js'));
  if (oldest >= newest && expected.every((f) => files.includes(f))) return;
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.page.json'], { cwd: root, stdio: 'inherit' });
  execFileSync(process.execPath, ['scripts/copy-page.js'], { cwd: root, stdio: 'inherit' });
}
