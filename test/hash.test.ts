import { describe, expect, it } from 'vitest';
import { fmix32 } from '../runtime/hash';

describe('fmix32', () => {
  it("should give murmur3's finalizer values, as unsigned 32-bit numbers", () => {
    expect(fmix32(0)).toBe(0);
    expect(fmix32(1)).toBe(0x514e28b7);
    expect(fmix32(-1)).toBe(fmix32(0xffffffff));
    expect(fmix32(0xffffffff)).toBeGreaterThanOrEqual(0);
  });

  it('should flip about half of the output bits when one input bit flips', () => {
    let flips = 0;
    let trials = 0;
    for (let x = 1; x < 2000; x += 7) {
      for (let bit = 0; bit < 32; bit++) {
        flips += popcount(fmix32(x) ^ fmix32(x ^ (1 << bit)));
        trials += 32;
      }
    }
    expect(flips / trials).toBeGreaterThan(0.45);
    expect(flips / trials).toBeLessThan(0.55);
  });
});

function popcount(v: number): number {
  let n = 0;
  for (let x = v >>> 0; x; x >>>= 1) n += x & 1;
  return n;
}
