// Vitest global setup of the main test project: when the run includes the deploy tests (the whole
// suite, as `npm test` runs it), starts building their bundles in the background at once, at the
// lowest CPU priority (nice 19), so that the minutes of compiling and packing overlap the tests
// that wait on brokers and timers instead of adding to the run. The deploy tests run after the
// rest (their own project, later in vitest.config.ts) and take the bundles from
// test/helpers/shared-bundle.ts. Whatever is still building when the run ends is stopped.
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { type BundleArch, builderOf, buildingMarker, bundleFingerprint, keptBundle, keptRoot } from './shared-bundle';

const DEPLOY_TESTS = ['test/deploy/bundle.test.ts', 'test/deploy/install.test.ts', 'test/deploy/arm64.test.ts'];

/** Whether vitest's command line (its file filters) selects a deploy test. */
export function runsDeployTests(argv: readonly string[]): boolean {
  const filters = argv.filter((a) => !a.startsWith('-') && !['run', 'vitest'].includes(a) && !a.endsWith('vitest.mjs') && !/[/\\]vitest$/.test(a));
  // Vitest's filters are parts of file paths.
  return filters.length === 0 || filters.some((f) => DEPLOY_TESTS.some((t) => t.includes(f.replace(/^\.\//, ''))));
}

export default function setup(): (() => void) | undefined {
  if (!runsDeployTests(process.argv.slice(2))) return undefined;
  const fingerprint = bundleFingerprint();
  const arches = (['arm64', 'x64'] as BundleArch[]).filter((a) => !keptBundle(a, fingerprint) && builderOf(a, fingerprint) === undefined);
  if (arches.length === 0) return undefined;
  const tsx = require.resolve('tsx/cli');
  const child: ChildProcess = spawn('nice', ['-n', '19', process.execPath, tsx, path.join(__dirname, 'build-kept-bundles.ts'), fingerprint, ...arches], { detached: true, stdio: 'ignore' });
  child.unref();
  // Marked here too (nice execs node: the same pid), so nothing takes them for unbuilt meanwhile.
  mkdirSync(keptRoot(), { recursive: true });
  if (child.pid !== undefined) for (const a of arches) writeFileSync(buildingMarker(a, fingerprint), String(child.pid));
  return () => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
}
