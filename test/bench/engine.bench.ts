// Engine benchmarks, measured side by side in one run on the example models:
//  1. the engine's overhead over a bare onnxruntime-web session.run (same model, same batch);
//  2. wasm vs native throughput;
//  3. throughput at batch 1, 8 and 32.
// The engine first: it loads onnxruntime-node before onnxruntime-web claims the 'cpu' backend.
import { ModelSession, availableBackends, syntheticFeeds, timeSideBySide } from '../../runtime/engine';
import * as ortWeb from 'onnxruntime-web';
import { sessionExtra } from '../../runtime/engine/backends/ort-session';
import { ModelRegistry } from '../../runtime/model';
import { bundledModelsDir } from '../../runtime/paths';
import { fmt, int, machine, table } from './table';

// Eleven rounds of 40 runs, after a second's warm-up each: V8 optimizes onnxruntime's
// WebAssembly kernels only once they run hot.
const SIDE_BY_SIDE = { rounds: 11, runsPerTurn: 40, warmupMs: 1000 };

async function main(): Promise<void> {
  const registry = await ModelRegistry.open(bundledModelsDir(), { watch: false });
  const models = registry.models().map((m) => registry.pick(m.id, 'fp32'));
  await registry.close();
  // One thread, as the gateway and the Node-RED runtime run models (the WASM pool is per process).
  const threads = 1;
  const native = availableBackends().includes('native');

  // 1. Overhead: validation, tensor wrapping and timing around the same onnxruntime-web call.
  const overhead: Array<Array<string | number>> = [];
  for (const v of models) {
    const engine = await ModelSession.load(v.file, { backend: 'wasm', threads });
    // The same session options the engine passes (idle threads sleep), so that only what the
    // engine adds around session.run is measured.
    const bare = await ortWeb.InferenceSession.create(v.file, { executionProviders: ['wasm'], graphOptimizationLevel: 'all', extra: sessionExtra() });
    for (const batch of [1, 32]) {
      const feeds = syntheticFeeds(engine.signature.inputs, batch);
      const ortFeeds = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ortWeb.Tensor('float32', t.data as Float32Array, t.dims)]));
      const [bareMs, engineMs] = await timeSideBySide([() => bare.run(ortFeeds), () => engine.run(feeds)], SIDE_BY_SIDE);
      overhead.push([v.id, batch, fmt(bareMs, 3), fmt(engineMs, 3), `${fmt((engineMs / bareMs - 1) * 100, 1)} %`]);
    }
    await bare.release();
    await engine.dispose();
  }
  console.log('Engine overhead over a bare onnxruntime-web session.run (goal ≤ 5 %)\n');
  console.log(table(['model', 'batch', 'bare ms/run', 'engine ms/run', 'overhead'], overhead));

  // 2 and 3. Throughput by backend and batch.
  const backends = native ? (['wasm', 'native'] as const) : (['wasm'] as const);
  const rows: Array<Array<string | number>> = [];
  for (const v of models) {
    const sessions = await Promise.all(backends.map((b) => ModelSession.load(v.file, { backend: b, threads })));
    for (const batch of [1, 8, 32]) {
      const feeds = syntheticFeeds(sessions[0].signature.inputs, batch);
      const ms = await timeSideBySide(sessions.map((s) => () => s.run(feeds)), { ...SIDE_BY_SIDE, runsPerTurn: batch === 1 ? 60 : 20 });
      const perSecond = ms.map((m) => (batch * 1000) / m);
      rows.push([v.id, batch, ...perSecond.map(int), ...(native ? [`${fmt(perSecond[1] / perSecond[0])}×`] : [])]);
    }
    for (const s of sessions) await s.dispose();
  }
  console.log(`\nThroughput in windows/s (${threads} threads${native ? '' : '; onnxruntime-node not installed, wasm only'})\n`);
  console.log(table(['model', 'batch', ...backends.map((b) => `${b} windows/s`), ...(native ? ['native / wasm'] : [])], rows));
  console.log(`\n${machine()}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
