import { describe, expect, it } from 'vitest';
import { type BearingLocation, type FaultType, MachineSimulator, bearingFrequencies, profileById, renderWindow } from '../../devices';
import { amplitudeAt, magnitudeSpectrum, type Spectrum } from '../../runtime/stream';
import { rms } from './helpers';

const FS = 2000;
const pump = profileById('pump-motor');
const FR = pump.machine.shaftHz;
const LINE = pump.machine.mainsHz;

function currentSpectrum(fault?: { type: FaultType; severity: number; location?: BearingLocation }): Spectrum {
  const w = renderWindow(pump, { seed: 31, length: 16000, stream: 'current', fault, shaftHz: FR, t0: 50 });
  return magnitudeSpectrum(w.channels.current, FS);
}

describe('motor current', () => {
  const normal = currentSpectrum();

  it('should carry the line frequency at √2 × rated current × load, with small 3rd and 5th harmonics', () => {
    const fundamental = amplitudeAt(normal, LINE, 0.3);
    const rated = Math.SQRT2 * pump.machine.ratedCurrentA;
    // Load within its ±2.5 σ range around nominal, sensor gain within ±5 %.
    const { nominal, spread } = pump.machine.load;
    expect(fundamental).toBeGreaterThan(0.95 * rated * (nominal - 2.5 * spread));
    expect(fundamental).toBeLessThan(1.05 * rated * (nominal + 2.5 * spread));
    expect(amplitudeAt(normal, 3 * LINE, 0.3) / fundamental).toBeGreaterThan(0.005);
    expect(amplitudeAt(normal, 3 * LINE, 0.3) / fundamental).toBeLessThan(0.05);
    expect(amplitudeAt(normal, 5 * LINE, 0.3) / fundamental).toBeLessThan(0.05);
  });

  for (const type of ['imbalance', 'misalignment', 'looseness'] as const) {
    it(`should grow sidebands at f_line ± f_r with ${type}`, () => {
      const s = currentSpectrum({ type, severity: 0.3 });
      expect(amplitudeAt(s, LINE - FR, 0.3)).toBeGreaterThan(3 * amplitudeAt(normal, LINE - FR, 0.3));
      expect(amplitudeAt(s, LINE + FR, 0.3)).toBeGreaterThan(3 * amplitudeAt(normal, LINE + FR, 0.3));
    });
  }

  it('should grow sidebands at f_line ± k·f_defect with a bearing fault', () => {
    const f = bearingFrequencies(pump.machine.bearing, FR);
    for (const [location, defect] of [['outer', f.bpfo], ['inner', f.bpfi]] as const) {
      const s = currentSpectrum({ type: 'bearing', severity: 0.3, location });
      for (const hz of [LINE + defect, Math.abs(LINE - defect), LINE + 2 * defect]) {
        expect(amplitudeAt(s, hz, 0.3)).toBeGreaterThan(4 * amplitudeAt(normal, hz, 0.3));
      }
      // The eccentricity sidebands stay where they were.
      expect(amplitudeAt(s, LINE + FR, 0.3)).toBeLessThan(1.5 * amplitudeAt(normal, LINE + FR, 0.3));
    }
  });

  it('should follow the load: the current amplitude moves as the load wanders', () => {
    const sim = new MachineSimulator(pump, { seed: 4 });
    const levels: number[] = [];
    for (let minute = 0; minute < 10; minute++) {
      levels.push(rms(sim.next('current', FS).channels.current));
      sim.next('current', 59 * FS);
    }
    expect(Math.max(...levels) / Math.min(...levels)).toBeGreaterThan(1.1);
  });
});
