import { describe, expect, it } from 'vitest';
import { type FaultSpec, MachineSimulator, profileById } from '../../devices';

const pump = profileById('pump-motor');

/** Bearing housing temperature, one sample a second, for `seconds`. */
function temperatures(seconds: number, faults: FaultSpec[] = [], seed = 6): Float32Array {
  return new MachineSimulator(pump, { seed, faults }).next('temperature', seconds).channels.temperature;
}

function meanOf(x: Float32Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s += x[i];
  return s / (to - from);
}

describe('temperature', () => {
  it('should start warm, above ambient by the load heating, and report in 0.1 °C steps', () => {
    const t = temperatures(60);
    const { ambientC, riseAtRatedC } = pump.machine.thermal;
    expect(t[0]).toBeGreaterThan(ambientC + 0.2 * riseAtRatedC);
    expect(t[0]).toBeLessThan(ambientC + 1.3 * riseAtRatedC);
    for (const v of t) expect(Math.abs(v * 10 - Math.round(v * 10))).toBeLessThan(1e-3);
    // Sensor noise is small: a minute never jumps by degrees.
    for (let i = 1; i < t.length; i++) expect(Math.abs(t[i] - t[i - 1])).toBeLessThan(0.5);
  });

  it('should rise over minutes after a bearing fault appears, following the thermal time constant', () => {
    const onset = 60;
    const healthy = temperatures(1800);
    const faulty = temperatures(1800, [{ type: 'bearing', onsetS: onset, severity: 0.8, location: 'outer' }]);
    const gap = (t: number): number => meanOf(faulty, t - 10, t + 10) - meanOf(healthy, t - 10, t + 10);
    expect(Math.abs(gap(40))).toBeLessThan(0.2);
    // A first-order system: a little after one minute, most of the way after several time constants.
    expect(gap(onset + 120)).toBeGreaterThan(1);
    expect(gap(onset + 600)).toBeGreaterThan(gap(onset + 120) + 3);
    expect(gap(1780)).toBeGreaterThan(gap(onset + 600));
    expect(gap(1780)).toBeLessThan(20);
  });

  it('should heat with misalignment but not with imbalance', () => {
    const healthy = temperatures(1200);
    const misaligned = temperatures(1200, [{ type: 'misalignment', onsetS: 0, severity: 0.6 }]);
    const unbalanced = temperatures(1200, [{ type: 'imbalance', onsetS: 0, severity: 0.6 }]);
    expect(meanOf(misaligned, 1100, 1200) - meanOf(healthy, 1100, 1200)).toBeGreaterThan(2);
    expect(Math.abs(meanOf(unbalanced, 1100, 1200) - meanOf(healthy, 1100, 1200))).toBeLessThan(0.1);
  });
});
