import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-wasm';
import { MODERATE, featuresOf, rocAuc, simulatedWindows } from '../../runtime/eval';
import { parseCard } from '../../runtime/model/card';
import { normalize } from '../../runtime/stream/features';
import { SPECTRUM_INPUT } from './examples';
import { Dense, Init, Relu, Sequential } from './nn';
import { predict, stackDataset, trainNet } from './train';

async function main() {
  await tf.setBackend('wasm');
  const bins = Number(process.argv[2] ?? 64);
  const hidden = Number(process.argv[3] ?? 16);
  let c = parseCard({ schema: 1, id: 'x', version: '1.0.0', title: 't', description: 'd', task: 'anomaly', precision: 'fp32',
    input: { ...SPECTRUM_INPUT, features: { transform: 'fft-magnitude', bins, scale: 'log' } }, output: { tensor: 'y', score: 's', threshold: 1 } });
  const trainW = simulatedWindows(c.input, { count: 3000, seed: 5, labels: ['normal'] });
  const testW = simulatedWindows(c.input, { count: 1000, seed: 9, severity: MODERATE });
  const ftr = featuresOf(c.input, trainW);
  const d = ftr[0].length;
  const mean = new Array(d).fill(0), sd = new Array(d).fill(0);
  for (const f of ftr) for (let i = 0; i < d; i++) { mean[i] += f[i] / ftr.length; }
  for (const f of ftr) for (let i = 0; i < d; i++) { sd[i] += (f[i] - mean[i]) ** 2 / ftr.length; }
  c = parseCard({ ...c, input: { ...c.input, normalization: { kind: 'standard', mean, std: sd.map((v) => Math.max(1e-3, Math.sqrt(v))) } } });
  for (const f of ftr) normalize(c.input, f);
  const fte = featuresOf(c.input, testW);
  const init = new Init(3);
  const net = new Sequential([new Dense(init, 'e1', d, 64), new Relu(), new Dense(init, 'e2', 64, hidden), new Relu(), new Dense(init, 'd1', hidden, 64), new Relu(), new Dense(init, 'd2', 64, d)]);
  await trainNet(net, stackDataset(ftr, [d]), { epochs: 40, batchSize: 64, learningRate: 2e-3, seed: 4, objective: 'reconstruct' });
  const out = predict(net, stackDataset(fte, [d]));
  const res = fte.map((f, i) => Array.from(f, (v, j) => (v - out.values[i * d + j]) ** 2));
  const pos = testW.map((w) => w.label !== 0);
  const scorers: Record<string, (r: number[]) => number> = {
    mean: (r) => r.reduce((a, b) => a + b, 0) / r.length,
    max: (r) => Math.max(...r),
    top8: (r) => [...r].sort((a, b) => b - a).slice(0, 8).reduce((a, b) => a + b, 0) / 8,
    top4: (r) => [...r].sort((a, b) => b - a).slice(0, 4).reduce((a, b) => a + b, 0) / 4,
  };
  for (const [name, fn] of Object.entries(scorers)) {
    const s = res.map(fn);
    const per = [1, 2, 3, 4].map((k) => rocAuc(s.filter((_, i) => testW[i].label === 0 || testW[i].label === k), testW.filter((w) => w.label === 0 || w.label === k).map((w) => w.label !== 0)).toFixed(3)).join(' ');
    console.log(bins, hidden, name, rocAuc(s, pos).toFixed(3), per);
  }
}
main();
