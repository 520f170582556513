import { configDefaults, defineConfig } from 'vitest/config';

/** The deploy tests: they check the offline bundles, built in the background while the rest runs (test/helpers/prebuild-bundles.ts). */
const DEPLOY = ['test/deploy/bundle.test.ts', 'test/deploy/install.test.ts'];
/** The ARM64 run under emulation: its qemu processes take both cores of a CI machine for minutes. */
const ARM64 = 'test/deploy/arm64.test.ts';

export default defineConfig({
  test: {
    // Child processes, not worker threads: onnxruntime's WASM threads and native addons
    // (better-sqlite3, onnxruntime-node) behave as they do in production.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The deploy tests go after the rest, so that the bundles built in the background meanwhile are
    // ready; the ARM64 run goes last, on its own: beside it, the timing-sensitive suites (the
    // gateway's fuzz, with its broker keepalive) lose their CPU and fail for that alone.
    projects: [
      { extends: true, test: { name: 'edge-infer', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...DEPLOY, ARM64], globalSetup: ['test/helpers/prebuild-bundles.ts'], sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'deploy', include: DEPLOY, sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: 'arm64', include: [ARM64], sequence: { groupOrder: 2 } } },
    ],
  },
});
