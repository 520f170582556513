import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Child processes, not worker threads: onnxruntime's WASM threads and native addons
    // (better-sqlite3, onnxruntime-node) behave as they do in production.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
