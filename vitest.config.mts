import { configDefaults, defineConfig } from 'vitest/config';

/** The ARM64 run under emulation: its qemu processes take both cores of a CI machine for minutes. */
const ARM64 = 'test/deploy/arm64.test.ts';

export default defineConfig({
  test: {
    // Child processes, not worker threads: onnxruntime's WASM threads and native addons
    // (better-sqlite3, onnxruntime-node) behave as they do in production.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The ARM64 run goes after the rest, on its own: beside it, the timing-sensitive suites (the
    // gateway's fuzz, with its broker keepalive) lose their CPU and fail for that alone.
    projects: [
      { extends: true, test: { name: 'edge-infer', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ARM64], sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'arm64', include: [ARM64], sequence: { groupOrder: 1 } } },
    ],
  },
});
