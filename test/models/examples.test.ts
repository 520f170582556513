// The committed example models, loaded through the engine, reach their goals again on fresh
// held-out simulated data with moderate faults (seeds the build never used).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelSession } from '../../runtime/engine';
import { MODERATE, featuresOf, predictWindows, simulatedWindows, taskMetrics } from '../../runtime/eval';
import { ModelRegistry, type VariantEntry } from '../../runtime/model';
import { bundledModelsDir } from '../../runtime/paths';

const GOALS: Record<string, { metric: string; atLeast: number }> = {
  'fault-classifier': { metric: 'accuracy', atLeast: 0.95 },
  'fault-transformer': { metric: 'accuracy', atLeast: 0.93 },
  'vibration-anomaly': { metric: 'rocAuc', atLeast: 0.95 },
};

let registry: ModelRegistry;
beforeAll(async () => {
  registry = await ModelRegistry.open(bundledModelsDir(), { watch: false });
});
afterAll(async () => {
  await registry.close();
});

describe('example models', () => {
  it('should all be in the models directory, none broken', () => {
    expect(registry.errors()).toEqual([]);
    expect(registry.models().map((m) => m.id).sort()).toEqual(Object.keys(GOALS).sort());
  });

  for (const [id, goal] of Object.entries(GOALS)) {
    it(`should reach ${goal.metric} ≥ ${goal.atLeast} for ${id} on fresh moderate faults`, async () => {
      const v: VariantEntry = registry.pick(id, 'fp32');
      const session = await ModelSession.load(v.file, { backend: 'wasm' });
      const windows = simulatedWindows(v.card.input, { count: 600, seed: 424242, severity: MODERATE });
      const outputs = await predictWindows(session, v.card, featuresOf(v.card.input, windows));
      const metrics = taskMetrics(v.card, outputs, windows.map((w) => w.label));
      await session.dispose();
      expect(metrics[goal.metric]).toBeGreaterThanOrEqual(goal.atLeast);
      // The card's own held-out figure says the same.
      expect(v.card.metrics[goal.metric]).toBeGreaterThanOrEqual(goal.atLeast);
    });
  }
});
