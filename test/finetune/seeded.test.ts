// The fine-tune's seeded numbers: the same seed gives the same shuffle and probes, so a fine-tune
// of the same windows writes the same model.
import { describe, expect, it } from 'vitest';
import { seeded } from '../../runtime/finetune/seeded';

describe('seeded', () => {
  it('should give the same numbers for the same seed, other numbers for another, all in [0, 1)', () => {
    const take = (seed: number): number[] => {
      const next = seeded(seed);
      return Array.from({ length: 1000 }, () => next());
    };
    const a = take(7);
    expect(take(7)).toEqual(a);
    expect(take(8)).not.toEqual(a);
    expect(a.every((x) => x >= 0 && x < 1)).toBe(true);
    // Spread over the interval, not stuck in a corner of it.
    expect(a.filter((x) => x < 0.5).length).toBeGreaterThan(400);
    expect(a.filter((x) => x < 0.5).length).toBeLessThan(600);
  });

  it('should take a seed of 0 as 1, since a zero state would repeat', () => {
    const zero = seeded(0);
    const one = seeded(1);
    expect([zero(), zero(), zero()]).toEqual([one(), one(), one()]);
  });
});
