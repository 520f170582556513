// Run by quant.bench.ts in a fresh process: loads one model in one mode and prints how much
// resident memory the loaded session holds, and its time per window. Not a benchmark by itself.
import { ModelSession, float32 } from '../../runtime/engine';
import { GraphBuilder, encodeModel } from '../../runtime/onnx';
import { type WeightLoading, loadOptionsFor } from '../../runtime/quant';

// Run with --expose-gc (and tsx as an --import, so the flag reaches this process): without a
// collection the fp32 file's bytes would still be counted against the fp32 session.
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('memory-probe needs node --expose-gc');
const settle = async (): Promise<number> => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  return process.memoryUsage().rss;
};

async function main(): Promise<void> {
  const [file, precision, mode, backend] = process.argv.slice(2);
  // Start the runtime (and its thread pool) on a tiny model first, so the baseline includes it.
  const g = new GraphBuilder('tiny');
  g.output(g.op1('Relu', [g.input('x', 'float32', ['batch', 2])]), 'float32', ['batch', 2], 'y');
  const tiny = await ModelSession.load(encodeModel(g.build()), { backend: backend as 'wasm' | 'native', threads: 1 });
  await tiny.run({ x: float32([1, 2], [1, 2]) });
  const before = await settle();
  const s = await ModelSession.load(file, { backend: backend as 'wasm' | 'native', threads: 1, ...loadOptionsFor(precision, mode as WeightLoading) });
  const x = float32(new Float32Array(2048 * 8).fill(0.5), [8, 2048]);
  await s.run({ x });
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) await s.run({ x });
  const ms = (performance.now() - t0) / 5 / 8;
  const after = await settle();
  console.log(JSON.stringify({ rssMb: (after - before) / 1e6, ms }));
  await s.dispose();
  await tiny.dispose();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
