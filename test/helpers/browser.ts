// A real browser for the dashboard's tests: Debian's Chromium, headless, driven by playwright-core.
// `.ci/run` installs it; a missing one fails the test with what to install, it never skips.
import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Page } from 'playwright-core';

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
