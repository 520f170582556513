// wasm and native give the same outputs on every example model, within a stated tolerance: the
// two builds of onnxruntime differ only in float summation order and kernels.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ModelSession, availableBackends, resolveBackend, syntheticFeeds } from '../../runtime/engine';
import { OrtBackendSession } from '../../runtime/engine/backends/ort-session';
import { outputAgreement } from '../../runtime/eval';
import { ModelRegistry } from '../../runtime/model';
import { bundledModelsDir } from '../../runtime/paths';

/** Largest absolute difference allowed between backends, relative to the output's scale. */
const TOLERANCE = 1e-4;
/** For int8-dynamic variants: a uint8 step of an activation, taken on one backend and not the other. */
const DYNAMIC_TOLERANCE = 1e-2;

describe('backends', () => {
  it('should pick native for auto where onnxruntime-node loads, else wasm', () => {
    expect(resolveBackend('auto').name).toBe(availableBackends()[0]);
    expect(resolveBackend('wasm').name).toBe('wasm');
  });

  it('should have onnxruntime-node here, as package.json installs it on this platform', () => {
    expect(availableBackends()).toContain('native');
  });

  it('should refuse a session that onnxruntime gave to another backend than the one asked for', async () => {
    const registry = await ModelRegistry.open(bundledModelsDir(), { watch: false });
    const model = readFileSync(registry.pick(registry.models()[0].id, 'fp32').file);
    await registry.close();
    // onnxruntime-web's handler asked to be onnxruntime-node's: what happens when onnxruntime-web
    // took the shared 'cpu' name first.
    const ortWeb = require('onnxruntime-web');
    await expect(OrtBackendSession.create(ortWeb, model, { executionProviders: ['wasm'] }, /^OnnxruntimeSessionHandler$/)).rejects.toMatchObject({
      code: 'E_BACKEND',
      message: expect.stringMatching(/onnxruntime-web was loaded before onnxruntime-node/),
    });
  });

  it('should give the same outputs on wasm and native for every example model', async () => {
    const registry = await ModelRegistry.open(bundledModelsDir(), { watch: false });
    const variants = registry.models().flatMap((m) => m.variants);
    await registry.close();
    expect(variants.length).toBeGreaterThanOrEqual(3);
    for (const v of variants) {
      const wasm = await ModelSession.load(v.file, { backend: 'wasm' });
      const native = await ModelSession.load(v.file, { backend: 'native' });
      const feeds = syntheticFeeds(wasm.signature.inputs, 16, {}, 7);
      const a = (await wasm.run(feeds)).outputs;
      const b = (await native.run(feeds)).outputs;
      for (const name of Object.keys(a)) {
        const x = a[name].data as Float32Array;
        const y = b[name].data as Float32Array;
        const scale = Math.max(1, ...Array.from(x, Math.abs));
        const { maxAbsError, cosine } = outputAgreement(x, y);
        // Activations quantized at run time (int8-dynamic): the float kernels before a
        // DynamicQuantizeLinear (attention, GELU, the norms) differ between the backends by a few
        // ulps, and a value on a rounding boundary takes the next uint8 step on one of them. One
        // step moves the outputs by a fraction of a percent; anything larger is a real disagreement.
        const dynamic = v.variant === 'int8-dynamic';
        expect(maxAbsError / scale, `${v.id} ${v.variant} output '${name}'`).toBeLessThan(dynamic ? DYNAMIC_TOLERANCE : TOLERANCE);
        expect(cosine, `${v.id} ${v.variant} output '${name}'`).toBeGreaterThan(dynamic ? 0.9999 : 0.99999);
      }
      await wasm.dispose();
      await native.dispose();
    }
  });
});
