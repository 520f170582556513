import { describe, expect, it } from 'vitest';
import { Random, hashSeed } from '../../devices';

function draw(r: Random, n: number): number[] {
  return Array.from({ length: n }, () => r.nextUint32());
}

describe('seeded random numbers', () => {
  it('should repeat the same sequence for the same seed and tags', () => {
    expect(draw(new Random(42, 'noise', 'vib_x'), 100)).toEqual(draw(new Random(42, 'noise', 'vib_x'), 100));
  });

  it('should give different sequences for different seeds and different tags', () => {
    const base = draw(new Random(42, 'noise'), 20);
    expect(draw(new Random(43, 'noise'), 20)).not.toEqual(base);
    expect(draw(new Random(42, 'other'), 20)).not.toEqual(base);
    expect(draw(new Random(42.5, 'noise'), 20)).not.toEqual(base);
    expect(hashSeed(1, 'ab', 'c')).not.toBe(hashSeed(1, 'a', 'bc'));
  });

  it('should draw uniform numbers inside the open interval with the right mean', () => {
    const r = new Random(7);
    let sum = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < 20000; i++) {
      const u = r.uniform(2, 4);
      lo = Math.min(lo, u);
      hi = Math.max(hi, u);
      sum += u;
    }
    expect(lo).toBeGreaterThan(2);
    expect(hi).toBeLessThan(4);
    expect(sum / 20000).toBeCloseTo(3, 1);
  });

  it('should draw gaussian numbers with the asked mean and standard deviation', () => {
    const r = new Random(11);
    const n = 40000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const g = r.gaussian(1, 2);
      s += g;
      s2 += g * g;
    }
    const mean = s / n;
    expect(mean).toBeCloseTo(1, 1);
    expect(Math.sqrt(s2 / n - mean * mean)).toBeCloseTo(2, 1);
  });
});
