import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, type PolicyCandidate, type Precision, formatPolicy, parseCard, parsePolicy, pickVariant } from '../../runtime/model';
import { thrown } from '../helpers/errors';
import { makeCard } from './fixtures';

function candidate(variant: string, precision: Precision, sizeBytes: number, metricDelta?: number): PolicyCandidate {
  const card = parseCard(makeCard({ precision, variant, metricDelta }));
  return { variant, precision, sizeBytes, card };
}

const fp32 = candidate('fp32', 'fp32', 40_000);
const int8 = candidate('int8', 'int8', 11_000, -0.004);
const fp8 = candidate('fp8-e4m3', 'fp8-e4m3', 10_500, -0.021);
const int8Dynamic = candidate('int8-dynamic', 'int8', 10_800); // no metricDelta on its card

describe('variant policy', () => {
  it('should read every policy form and write it back the same way', () => {
    for (const text of ['fp32', 'int8-dynamic', 'fp8-e4m3', 'smallest', 'smallest-within:1', 'smallest-within:0.5', 'most-accurate']) {
      expect(formatPolicy(parsePolicy(text))).toBe(text);
    }
    expect(parsePolicy(' smallest ')).toEqual({ kind: 'smallest' });
    expect(formatPolicy(DEFAULT_POLICY)).toBe('smallest-within:1');
  });

  it('should refuse a policy it cannot read with E_ARGUMENT saying what is expected', () => {
    for (const text of ['', 'Smallest', 'smallest-within', 'smallest-within:', 'smallest-within:-1', 'smallest-within:one', 'fastest please']) {
      const err = thrown(() => parsePolicy(text));
      expect(err.code).toBe('E_ARGUMENT');
      expect(err.message).toMatch(/expected/);
    }
  });

  it('should pick an exact variant by name, and name the variants there are when it is absent', () => {
    expect(pickVariant([fp32, int8, fp8], 'int8')).toBe(int8);
    const err = thrown(() => pickVariant([fp32, int8, fp8], 'fp16'));
    expect(err.code).toBe('E_REGISTRY');
    expect(err.message).toBe("model 'fault-classifier' has no variant 'fp16' (it has fp32, fp8-e4m3, int8)");
  });

  it('should pick the smallest file for smallest', () => {
    expect(pickVariant([fp32, int8, fp8, int8Dynamic], 'smallest')).toBe(fp8);
  });

  it('should pick the smallest variant within the points of fp32, fp32 always qualifying', () => {
    expect(pickVariant([fp32, int8, fp8, int8Dynamic], 'smallest-within:1')).toBe(int8);
    expect(pickVariant([fp32, int8, fp8, int8Dynamic], 'smallest-within:2.1')).toBe(fp8);
    expect(pickVariant([fp32, int8, fp8], 'smallest-within:0.1')).toBe(fp32);
    expect(pickVariant([fp32, int8, fp8, int8Dynamic])).toBe(int8); // the default policy
  });

  it('should count a loss of exactly the allowed points as within', () => {
    const exact = candidate('int8', 'int8', 9_000, -0.007);
    expect(pickVariant([fp32, exact], 'smallest-within:0.7')).toBe(exact);
  });

  it('should say why no variant is within the points when fp32 is missing', () => {
    const err = thrown(() => pickVariant([fp8, int8Dynamic], 'smallest-within:1'));
    expect(err.code).toBe('E_REGISTRY');
    expect(err.message).toContain('no variant is within 1 point of fp32');
    expect(err.message).toContain('fp8-e4m3 is 2.10 points below fp32');
    expect(err.message).toContain('int8-dynamic has no quantization.agreement.metricDelta on its card');
  });

  it('should pick fp32 as most accurate, else the variant that kept the most of the metric', () => {
    expect(pickVariant([int8, fp32, fp8], 'most-accurate')).toBe(fp32);
    expect(pickVariant([fp8, int8Dynamic, int8], 'most-accurate')).toBe(int8);
    // Without figures, more bits win.
    expect(pickVariant([candidate('fp8-e5m2', 'fp8-e5m2', 9_000), int8Dynamic], 'most-accurate')).toBe(int8Dynamic);
  });

  it('should refuse to pick from no variants', () => {
    expect(thrown(() => pickVariant([], 'smallest')).code).toBe('E_REGISTRY');
  });

  it('should treat sizes within 2 % as equal and take the more accurate of them', () => {
    const e4m3 = candidate('fp8-e4m3', 'fp8-e4m3', 10_003, -0.001);
    const e5m2 = candidate('fp8-e5m2', 'fp8-e5m2', 10_000, -0.003);
    expect(pickVariant([fp32, e5m2, e4m3], 'smallest').variant).toBe('fp8-e4m3');
    expect(pickVariant([fp32, e5m2, e4m3], 'smallest-within:1').variant).toBe('fp8-e4m3');
    const muchSmaller = candidate('fp8-e5m2', 'fp8-e5m2', 9_000, -0.003);
    expect(pickVariant([fp32, muchSmaller, e4m3], 'smallest').variant).toBe('fp8-e5m2');
  });

  it('should pick the same variant whatever order the variants come in', () => {
    // 11.0 / 10.8 / 10.6 kB: each within 2 % of the next, but 11.0 is not within 2 % of 10.6.
    const a = candidate('int8', 'int8', 11_000, -0.001);
    const b = candidate('fp8-e4m3', 'fp8-e4m3', 10_800, -0.002);
    const c = candidate('fp8-e5m2', 'fp8-e5m2', 10_600, -0.003);
    const orders = [[a, b, c], [a, c, b], [b, a, c], [b, c, a], [c, a, b], [c, b, a]];
    for (const order of orders) {
      expect(pickVariant([fp32, ...order], 'smallest').variant, order.map((v) => v.variant).join(' ')).toBe('fp8-e4m3');
      expect(pickVariant([fp32, ...order], 'smallest-within:1').variant).toBe('fp8-e4m3');
    }
  });
});
