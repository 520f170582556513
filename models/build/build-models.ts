// `npm run models:build`: trains the example models on the simulated plant and writes them to
// models/<id>/<id>.fp32.onnx with their cards. Reproducible: every seed is fixed here.
//   --only <id>     build one model
//   --quick         a few hundred windows and epochs, to try the pipeline (not for committing)
//   --variants-only skip training: make the int8 and FP8 variants of the fp32 models there are
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-wasm';
import { ModelSession } from '../../runtime/engine';
import { MODERATE, featuresOf, outputAgreement, predictWindows, quantile, simulatedWindows, taskMetrics } from '../../runtime/eval';
import { type ModelCard, parseCard } from '../../runtime/model/card';
import { main as cli } from '../../runtime/cli';
import { encodeModel, writeFileAtomic } from '../../runtime/onnx';
import { QUANT_TARGETS } from '../../runtime/quant';
import { normalize } from '../../runtime/stream/features';
import { type ExampleModel, type FeatureStats, anomalyModel, classifierModel, transformerModel } from './examples';
import { parameterCount } from './nn';
import { type Dataset, predict, stackDataset, trainNet } from './train';

const { values: args } = parseArgs({ options: { only: { type: 'string' }, quick: { type: 'boolean', default: false }, out: { type: 'string' }, 'variants-only': { type: 'boolean', default: false } } });
const OUT = path.resolve(args.out ?? path.join(__dirname, '..'));
const quick = args.quick;
const n = (full: number): number => (quick ? Math.max(50, Math.round(full / 20)) : full);

/** Mean and standard deviation per group of feature elements (one group per element or per channel), std floored. */
function statistics(features: Float32Array[], groups: number): FeatureStats {
  const width = features[0].length;
  const per = width / groups;
  const sum = new Float64Array(groups);
  const sq = new Float64Array(groups);
  for (const f of features) for (let i = 0; i < width; i++) {
    const g = Math.floor(i / per);
    sum[g] += f[i];
    sq[g] += f[i] * f[i];
  }
  const count = features.length * per;
  const mean = Float32Array.from(sum, (s) => s / count);
  const std = Float32Array.from(sq, (s, g) => Math.max(1e-3, Math.sqrt(Math.max(0, s / count - mean[g] * mean[g]))));
  return { mean, std };
}

const round6 = (v: number): number => Number(v.toPrecision(6));

/** Standardizes features in place with per-element or per-channel statistics. */
function applyStats(features: Float32Array[], stats: FeatureStats): void {
  const per = features[0].length / stats.mean.length;
  for (const f of features) for (let i = 0; i < f.length; i++) {
    const g = Math.floor(i / per);
    f[i] = (f[i] - stats.mean[g]) / stats.std[g];
  }
}

interface Split { features: Float32Array[]; labels: number[] }

function makeSplit(card: ModelCard, count: number, seed: number, opts: { labels?: Array<'normal'>; severity?: readonly [number, number] } = {}): Split {
  const windows = simulatedWindows(card.input, { count, seed, labels: opts.labels, severity: opts.severity });
  return { features: featuresOf(card.input, windows), labels: windows.map((w) => w.label) };
}

function log(id: string, message: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${id}: ${message}`);
}

async function buildOne(model: ExampleModel, plan: { train: number; epochs: number; batch: number; lr: number; seed: number }): Promise<void> {
  const id = model.card.id;
  const t0 = Date.now();
  let card = parseCard(model.card, id);
  const anomaly = card.task === 'anomaly';
  // Anomaly detectors learn healthy machines only; classifiers see every condition.
  const train = makeSplit(card, n(plan.train), plan.seed + 1, { labels: anomaly ? ['normal'] : undefined, severity: [0.1, 1] });
  log(id, `${train.features.length} training windows rendered (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  // The training features' statistics standardize the network's input: inside the ONNX graph
  // (per feature element) or in the card (per channel), as the model says.
  const inGraph = model.normalization === 'graph';
  let stats = statistics(train.features, inGraph ? train.features[0].length : card.input.channels.length);
  if (!inGraph) {
    stats = { mean: Float32Array.from(stats.mean, round6), std: Float32Array.from(stats.std, round6) };
    card = parseCard({ ...card, input: { ...card.input, normalization: { kind: 'standard', mean: Array.from(stats.mean), std: Array.from(stats.std) } } }, id);
    for (const f of train.features) normalize(card.input, f);
  } else {
    applyStats(train.features, stats);
  }
  const data: Dataset = stackDataset(train.features, model.shape, anomaly ? undefined : train.labels);
  await trainNet(model.net, data, {
    epochs: quick ? 3 : plan.epochs,
    batchSize: plan.batch,
    learningRate: plan.lr,
    seed: plan.seed + 2,
    objective: anomaly ? 'reconstruct' : 'classes',
    classes: card.output.labels?.length,
    onEpoch: (e, loss) => log(id, `epoch ${e + 1}: loss ${loss.toFixed(4)}`),
  });

  // Validation (all conditions, full severity range) sets the anomaly threshold; the held-out
  // test set has fresh seeds and moderate faults only, and is what the card reports.
  const validation = makeSplit(card, n(1000), plan.seed + 3);
  const test = makeSplit(card, n(2500), plan.seed + 4, { severity: MODERATE });
  let bytes = encodeModel(model.toOnnx(card, stats));
  let session = await ModelSession.load(bytes, { backend: 'wasm', name: id });
  if (anomaly) {
    const scores = (await predictWindows(session, card, validation.features)).map((o) => o[0]);
    const healthy = scores.filter((_, i) => validation.labels[i] === 0);
    // The 99th percentile of healthy windows: about one false alarm per hundred healthy windows.
    const threshold = Number(quantile(healthy, 0.99).toPrecision(4));
    card = parseCard({ ...card, output: { ...card.output, threshold } }, id);
  }
  const outputs = await predictWindows(session, card, test.features);
  const metrics = taskMetrics(card, outputs, test.labels);
  const rounded = Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, Number(v.toFixed(4))]));
  card = parseCard({
    ...card,
    metrics: { ...rounded, heldOutWindows: test.features.length, trainingWindows: train.features.length, parameters: parameterCount(model.net) },
    training: `Trained by \`npm run models:build\` (models/build/) with TensorFlow.js on ${train.features.length} simulated windows of the built-in pump, fan and compressor profiles (${anomaly ? 'healthy machines only' : 'faults of severity 0.1–1'}); metrics on ${test.features.length} fresh held-out windows with moderate faults (severity 0.25–0.45).`,
  }, id);
  await session.dispose();

  // The ONNX graph must compute what TensorFlow.js trained.
  bytes = encodeModel(model.toOnnx(card, stats));
  session = await ModelSession.load(bytes, { backend: 'wasm', name: id });
  const check = test.features.slice(0, 64);
  const fromOnnx = await predictWindows(session, card, check);
  // The network saw standardized features; with in-graph standardization the ONNX model sees raw ones.
  const standardized = check.map((f) => Float32Array.from(f));
  if (inGraph) applyStats(standardized, stats);
  const reference = predict(model.net, stackDataset(standardized, model.shape));
  let worst = 0;
  fromOnnx.forEach((o, i) => {
    const ref = reference.values.subarray(i * reference.width, (i + 1) * reference.width);
    const refOut = anomaly ? [tf.tidy(() => tf.max(tf.square(tf.sub(tf.tensor(ref), tf.tensor(standardized[i])))).dataSync()[0])] : softmax(ref);
    worst = Math.max(worst, outputAgreement(o, refOut).maxAbsError);
  });
  await session.dispose();
  if (worst > 1e-3) throw new Error(`${id}: the ONNX graph disagrees with the trained network (max abs error ${worst})`);

  const dir = path.join(OUT, id);
  await fs.mkdir(dir, { recursive: true });
  await writeFileAtomic(path.join(dir, `${id}.fp32.onnx`), bytes);
  await writeFileAtomic(path.join(dir, `${id}.fp32.model.json`), `${JSON.stringify(card, null, 2)}\n`);
  log(id, `done in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${JSON.stringify(card.metrics)}; ONNX vs TF.js max abs error ${worst.toExponential(2)}`);
}

function softmax(logits: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(logits));
  const e = Array.from(logits, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

async function main(): Promise<void> {
  await tf.setBackend('wasm');
  await tf.ready();
  const builds: Array<[string, () => Promise<void>]> = [
    ['vibration-anomaly', () => buildOne(anomalyModel(11), { train: 4000, epochs: 40, batch: 64, lr: 2e-3, seed: 1100 })],
    ['fault-classifier', () => buildOne(classifierModel(21), { train: 6000, epochs: 40, batch: 64, lr: 2e-3, seed: 2100 })],
    ['fault-transformer', () => buildOne(transformerModel(31), { train: 6000, epochs: 14, batch: 32, lr: 1e-3, seed: 3100 })],
  ];
  const only = args.only;
  if (only && !builds.some(([id]) => id === only)) throw new Error(`--only: no example model '${only}' (${builds.map(([id]) => id).join(', ')})`);
  for (const [id, build] of builds) {
    if (only && id !== only) continue;
    if (!args['variants-only']) await build();
    await buildVariants(id);
  }
}

/**
 * The low-bit variants of a model, made by the same `edge-infer quantize` a user runs on a
 * gateway: static int8 calibrated on the simulator, dynamic int8, and weight-only FP8.
 */
async function buildVariants(id: string): Promise<void> {
  const fp32 = path.join(OUT, id, `${id}.fp32.onnx`);
  for (const to of QUANT_TARGETS) {
    const out = path.join(OUT, id, `${id}.${to}.onnx`);
    const code = await cli(['node', 'edge-infer', 'quantize', fp32, '--to', to, '--calibrate', 'sim:3', '--samples', quick ? '100' : '1000', '--method', 'percentile', '--no-html', '-o', out]);
    if (code !== 0) throw new Error(`${id}: quantizing to ${to} failed`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
