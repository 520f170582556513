// The package's entry: what the README's library section imports is there, and works.
import { describe, expect, it } from 'vitest';
import * as api from '../runtime';
import pkg from '../package.json';

describe('the package entry', () => {
  it('should be the compiled runtime/index', () => {
    expect(pkg.main).toBe('dist/runtime/index.js');
    expect(pkg.types).toBe('dist/runtime/index.d.ts');
  });

  it('should export the engine, registry, quantizer, FP8 codec, pipeline, gateway and fine-tune', () => {
    for (const name of ['ModelSession', 'float32', 'ModelRegistry', 'quantizeModel', 'float32ToFp8', 'fp8ToFloat32', 'Pipeline', 'Gateway', 'ResultStore', 'parseGatewayConfig', 'EdgeInferError', 'fineTune', 'taughtWindowsOf']) {
      expect(api, name).toHaveProperty(name);
    }
  });

  it('should run the README example: a window of the classifier, and an FP8 round trip', async () => {
    const session = await api.ModelSession.load(`${api.bundledModelsDir()}/fault-classifier/fault-classifier.fp32.onnx`, { backend: 'auto', threads: 1 });
    const features = new Float32Array(3 * 256).fill(0.01);
    const { outputs, ms } = await session.run({ spectrum: api.float32(features, [1, 3, 256]) });
    const probabilities = Array.from(Object.values(outputs)[0].data as Float32Array);
    expect(probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    expect(ms).toBeGreaterThan(0);
    const results = await session.runWindows([{ spectrum: api.float32(features, [3, 256]) }, { spectrum: api.float32(features.map(() => Number.NaN), [3, 256]) }]);
    expect(results.map((r) => r.ok)).toEqual([true, false]);
    await session.dispose();
    expect(api.fp8ToFloat32(api.float32ToFp8(1.5, 'e4m3fn'), 'e4m3fn')).toBe(1.5);
  });
});
