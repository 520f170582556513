// One contract, run for every exporter fixture and every quantization method: the quantized
// model loads and runs on both backends, agrees with fp32, leaves the input model alone, comes
// out byte for byte the same when made twice, and names in a notice what it left in fp32.
import { beforeAll, describe, expect, it } from 'vitest';
import type { BackendName } from '../../runtime/engine';
import { decodeModel } from '../../runtime/onnx';
import { FIXTURES, type ExporterFixture } from '../helpers/exporter-fixtures';
import { BACKENDS, type Method, type MethodFamily, fp32WeightReaders, heldOutWindows, quantizeFixture, runOn, stackWindows, worstCosine } from './harness';

/**
 * What each fixture must name in its notices per method family: the operators (by type) or nodes
 * (by name) that stay fp32. Only what the fixture was built to exercise; other notices may exist.
 */
export const EXPECTED_NOTICES: Record<string, Partial<Record<MethodFamily, string[]>>> = {
  'pytorch-linear': { dynamic: ['/fc2/Gemm'] },
  'layernorm-decomposed': { static: ['ReduceMean', 'Sub', 'Pow', 'Sqrt', 'Div'] },
  'layernorm-fused': { static: ['LayerNormalization'] },
  'gelu-erf': { static: ['Div', 'Erf'] },
  'gelu-tanh-tf': { static: ['Pow', 'Tanh'] },
  'pytorch-flatten-view': { static: ['Shape', 'Gather', 'Concat'] },
  attention: { 'weight-only': ['/attn/MatMul', '/attn/MatMul_1'], dynamic: ['/attn/MatMul', '/attn/MatMul_1'], static: ['Div'] },
};

type Quantized = Awaited<ReturnType<typeof quantizeFixture>>;

function describeFixture(fixture: ExporterFixture, methods: readonly Method[]): void {
  describe(`${fixture.name} (${fixture.pattern})`, () => {
    const model = decodeModel(fixture.bytes());
    const feeds = stackWindows(heldOutWindows(fixture));
    const reference = {} as Record<BackendName, Record<string, Float32Array>>;

    beforeAll(async () => {
      for (const backend of BACKENDS) reference[backend] = await runOn(fixture.bytes(), backend, feeds, `${fixture.name} fp32`);
    });

    for (const method of methods) {
      describe(method.id, () => {
        // Quantized once and again on first use; a quantizer that throws fails every test below with its message.
        let made: Promise<[Quantized, Quantized]> | undefined;
        const twice = (): Promise<[Quantized, Quantized]> => {
          made ??= (async () => [await quantizeFixture(method, model, fixture), await quantizeFixture(method, model, fixture)] as [Quantized, Quantized])();
          return made;
        };

        it(`should load and run on wasm and native and agree with fp32 (cosine ≥ ${method.cosine})`, async () => {
          const [q] = await twice();
          for (const backend of BACKENDS) {
            const outputs = await runOn(q.bytes, backend, feeds, `${fixture.name} ${method.id}`);
            const cosine = worstCosine(reference[backend], outputs);
            expect(cosine, `${backend}: cosine with fp32`).toBeGreaterThanOrEqual(method.cosine);
          }
        });

        it('should leave the fp32 model as it was and give the same bytes when quantized twice', async () => {
          const [a, b] = await twice();
          expect(a.inputChanged, 'the input model was modified').toBe(false);
          expect(b.inputChanged, 'the input model was modified').toBe(false);
          expect(Buffer.compare(a.bytes, b.bytes), 'two quantizations differ').toBe(0);
        });

        it('should name in a notice every operator it leaves in fp32', async () => {
          const [q] = await twice();
          const notices = q.outcome.notices.join('\n');
          for (const node of fp32WeightReaders(q.outcome.model)) {
            expect(notices, `${node.op_type} '${node.name}' still reads an fp32 weight`).toContain(node.name ?? node.op_type);
          }
          for (const name of EXPECTED_NOTICES[fixture.name]?.[method.family] ?? []) expect(notices).toContain(name);
        });
      });
    }
  });
}

/** The contract for every fixture that has weights, under each of `methods`. */
export function describeMethodMatrix(methods: readonly Method[]): void {
  for (const fixture of FIXTURES.filter((f) => f.name !== 'no-weights')) describeFixture(fixture, methods);
}
