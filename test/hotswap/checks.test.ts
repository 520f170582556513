// The checks an update passes: its card against the serving variant's, and agreement with the
// serving variant on windows, with real sessions of fault-classifier.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelSession } from '../../runtime/engine';
import { cardMismatch, compareOnWindows } from '../../runtime/hotswap';
import { type ModelCard, parseCardJson } from '../../runtime/model';
import { exampleVariant, renamed, withWeights } from '../helpers/hotswap';

const fp32 = exampleVariant('fault-classifier', 'fp32');
const card: ModelCard = parseCardJson(fp32.cardText);
const edited = (change: (c: Record<string, any>) => void): ModelCard => {
  const c = JSON.parse(fp32.cardText);
  change(c);
  return parseCardJson(JSON.stringify(c));
};

describe('cardMismatch', () => {
  it('should let another variant of the same model through', () => {
    expect(cardMismatch(card, parseCardJson(exampleVariant('fault-classifier', 'int8').cardText))).toBeNull();
    expect(cardMismatch(card, parseCardJson(renamed(fp32.cardText, 'fp32-retrained')))).toBeNull();
  });

  it('should name every field that differs: id, task, input, output', () => {
    expect(cardMismatch(card, parseCardJson(exampleVariant('vibration-anomaly', 'fp32').cardText))).toMatch(/^its card does not match the serving model: id is 'vibration-anomaly', the serving model's is 'fault-classifier'; task is anomaly, the serving model's is classification; .*input\.features is/);
    expect(cardMismatch(card, edited((c) => (c.output.threshold = 0.7)))).toBe('its card does not match the serving model: output.threshold is 0.7, the serving model\'s is 0.5');
    expect(cardMismatch(card, edited((c) => (c.input.hop = 512)))).toMatch(/input\.hop is 512, the serving model's is 1024/);
    expect(cardMismatch(card, edited((c) => (c.output.labels[4] = 'loose')))).toMatch(/output\.labels is \["normal",.*"loose"\], the serving model's is/);
  });
});

describe('compareOnWindows', () => {
  let a: ModelSession;
  let int8: ModelSession;
  let skewed: ModelSession;
  const windows = Array.from({ length: 30 }, (_, i) => ({ timeMs: i, device: 'd', dims: [3, 256], features: Float32Array.from({ length: 768 }, (_, k) => Math.log1p(Math.abs(Math.sin(i * 7 + k)) * 3)) }));

  beforeAll(async () => {
    const opts = { backend: 'wasm' as const, threads: 1 };
    a = await ModelSession.load(fp32.onnx, { ...opts, name: 'fp32' });
    int8 = await ModelSession.load(exampleVariant('fault-classifier', 'int8').onnx, { ...opts, name: 'int8' });
    // The last layer negated: its top class is fp32's least likely one. The same shapes, another mind.
    skewed = await ModelSession.load(withWeights(fp32.onnx, (n, v) => (n === 'logits.bias' || n === 'logits.weight') && (v.forEach((x, k) => (v[k] = -x)), true)), { ...opts, name: 'skewed' });
  });
  afterAll(async () => {
    for (const s of [a, int8, skewed]) await s?.dispose();
  });

  it('should find a variant in full agreement with itself', async () => {
    const r = await compareOnWindows(card, a, a, windows, { minLabelAgreement: 1, maxScoreDelta: 0 });
    expect(r).toEqual({ figures: { windows: 30, labelAgreement: 1, maxScoreDelta: 0 }, problem: null });
  });

  it('should refuse a variant whose decisions differ, with the share and the bound', async () => {
    const r = await compareOnWindows(card, a, skewed, windows, { minLabelAgreement: 0.98 });
    expect(r.figures.labelAgreement).toBeLessThan(0.5);
    expect(r.problem).toMatch(/^it agrees with the serving variant on \d+\.\d % of the 30 newest recorded windows, the bound is 98\.0 % \(modelUpdates\.agreement\.minLabelAgreement\)$/);
  });

  it('should refuse a score difference over maxScoreDelta, and pass it under a looser one', async () => {
    const strict = await compareOnWindows(card, a, int8, windows, { minLabelAgreement: 0, maxScoreDelta: 0 });
    expect(strict.figures.maxScoreDelta).toBeGreaterThan(0);
    expect(strict.problem).toMatch(/its score differs from the serving variant's by up to [\d.e-]+ on the 30 newest recorded windows, the bound is 0 \(modelUpdates\.agreement\.maxScoreDelta\)/);
    expect((await compareOnWindows(card, a, int8, windows, { minLabelAgreement: 0, maxScoreDelta: 1 })).problem).toBeNull();
  });

  it('should refuse a candidate that cannot run a window the serving variant runs', async () => {
    const gone = await ModelSession.load(fp32.onnx, { backend: 'wasm', threads: 1, name: 'gone' });
    await gone.dispose();
    await expect(compareOnWindows(card, a, gone, windows, { minLabelAgreement: 0 })).rejects.toThrow(/disposed/);
    const r = await compareOnWindows(card, a, a, [], { minLabelAgreement: 0 });
    expect(r.problem).toBe('the serving variant ran none of the 0 recorded windows: nothing to compare');
  });
});
