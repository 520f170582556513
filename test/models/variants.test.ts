// The committed int8 and FP8 variants of the example models, against their fp32 model on fresh
// held-out simulated windows (seeds the build and the quantizer never used): the task metric
// stays within 1 point (anomaly: ROC AUC within 0.01) and the decisions agree on ≥ 98 % of the
// windows (classification: top-1; anomaly: the flag at the card's threshold).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelSession } from '../../runtime/engine';
import { MODERATE, argmax, featuresOf, predictWindows, simulatedWindows, taskMetrics } from '../../runtime/eval';
import { type ModelCard, ModelRegistry } from '../../runtime/model';
import { bundledModelsDir } from '../../runtime/paths';

const MODELS = ['fault-classifier', 'fault-transformer', 'vibration-anomaly'];
const VARIANTS = ['int8', 'int8-dynamic', 'fp8-e4m3'];
const WINDOWS = 600;

let registry: ModelRegistry;
beforeAll(async () => {
  registry = await ModelRegistry.open(bundledModelsDir(), { watch: false });
});
afterAll(async () => {
  await registry.close();
});

/** The decision a window's output stands for: the top class, or whether the score crosses the threshold. */
function decision(card: ModelCard, output: ArrayLike<number>): number {
  return card.task === 'classification' ? argmax(output) : Number(output[0] >= (card.output.threshold ?? Infinity));
}

describe.each(MODELS)('committed variants of %s', (id) => {
  let fp32: { card: ModelCard; outputs: Float32Array[]; metric: number };
  let windows: ReturnType<typeof simulatedWindows>;
  const metricOf = (card: ModelCard) => (card.task === 'classification' ? 'accuracy' : 'rocAuc');

  beforeAll(async () => {
    const v = registry.pick(id, 'fp32');
    windows = simulatedWindows(v.card.input, { count: WINDOWS, seed: 515151, severity: MODERATE });
    const session = await ModelSession.load(v.file, { backend: 'wasm' });
    try {
      const outputs = await predictWindows(session, v.card, featuresOf(v.card.input, windows));
      fp32 = { card: v.card, outputs, metric: taskMetrics(v.card, outputs, windows.map((w) => w.label))[metricOf(v.card)] };
    } finally {
      await session.dispose();
    }
  }, 60_000);

  it.each(VARIANTS)('%s should stay within 1 point of fp32 and agree with it on ≥ 98 % of the windows', async (name) => {
    const v = registry.pick(id, name);
    expect(v.variant).toBe(name);
    const session = await ModelSession.load(v.file, { backend: 'wasm' });
    try {
      const outputs = await predictWindows(session, v.card, featuresOf(v.card.input, windows));
      const metric = taskMetrics(v.card, outputs, windows.map((w) => w.label))[metricOf(v.card)];
      expect(Math.abs(metric - fp32.metric)).toBeLessThanOrEqual(0.01);
      const agree = outputs.filter((o, i) => decision(v.card, o) === decision(fp32.card, fp32.outputs[i])).length / WINDOWS;
      expect(agree).toBeGreaterThanOrEqual(0.98);
    } finally {
      await session.dispose();
    }
  }, 60_000);
});
