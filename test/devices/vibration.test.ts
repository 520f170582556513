import { describe, expect, it } from 'vitest';
import { type FaultType, type BearingLocation, bearingFrequencies, builtinProfiles, profileById, renderWindow } from '../../devices';
import { amplitudeAt, magnitudeSpectrum, peakFrequency, type Spectrum } from '../../runtime/stream';
import { bandLevel, envelopeSpectrum, rms } from './helpers';

const FS = 5120;
const pump = profileById('pump-motor');
const FR = pump.machine.shaftHz;
const AXES = ['vib_x', 'vib_y', 'vib_z'] as const;

/** The same pump (seed), at the same speed and moment, normal or with a fault. */
function pumpWindow(fault?: { type: FaultType; severity: number; location?: BearingLocation }, length = 16384, seed = 21) {
  return renderWindow(pump, { seed, length, fault, shaftHz: FR, t0: 100 });
}

function spectra(fault?: { type: FaultType; severity: number; location?: BearingLocation }, length?: number): Record<(typeof AXES)[number], Spectrum> {
  const w = pumpWindow(fault, length);
  return { vib_x: magnitudeSpectrum(w.channels.vib_x, FS), vib_y: magnitudeSpectrum(w.channels.vib_y, FS), vib_z: magnitudeSpectrum(w.channels.vib_z, FS) };
}

/** Amplitude of order k of the shaft speed. */
function order(s: Spectrum, k: number): number {
  return amplitudeAt(s, k * FR, 0.4);
}

/** Phase of a sinusoid at hz, from a Hann-windowed DFT at exactly that frequency. */
function phaseAt(x: Float32Array, hz: number): number {
  let re = 0;
  let im = 0;
  for (let n = 0; n < x.length; n++) {
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / (x.length - 1));
    re += w * x[n] * Math.cos((2 * Math.PI * hz * n) / FS);
    im -= w * x[n] * Math.sin((2 * Math.PI * hz * n) / FS);
  }
  return Math.atan2(im, re);
}

/** |a − b| in degrees, 0..180. */
function phaseGap(a: number, b: number): number {
  const d = Math.abs(((a - b) * 180) / Math.PI) % 360;
  return d > 180 ? 360 - d : d;
}

function median(xs: ArrayLike<number>): number {
  const s = Array.from(xs).sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

describe('vibration: healthy machines', () => {
  it('should vibrate at realistic levels: 0.05–0.5 g RMS, with a 1 g gravity offset on the vertical axis only', () => {
    for (const p of builtinProfiles()) {
      const w = renderWindow(p, { seed: 1, length: 4096 });
      for (const axis of AXES) {
        expect(rms(w.channels[axis])).toBeGreaterThan(0.05);
        expect(rms(w.channels[axis])).toBeLessThan(0.5);
      }
      const mean = (x: Float32Array): number => x.reduce((s, v) => s + v, 0) / x.length;
      expect(mean(w.channels.vib_y)).toBeGreaterThan(0.9);
      expect(mean(w.channels.vib_y)).toBeLessThan(1.1);
      expect(Math.abs(mean(w.channels.vib_x))).toBeLessThan(0.05);
      expect(Math.abs(mean(w.channels.vib_z))).toBeLessThan(0.05);
    }
  });

  it('should show the 1x of the shaft speed the window was asked for', () => {
    const w = renderWindow(pump, { seed: 3, length: 16384, shaftHz: 23.1, fault: { type: 'imbalance', severity: 0.3 } });
    expect(peakFrequency(magnitudeSpectrum(w.channels.vib_x, FS), 5, 40)).toBeCloseTo(23.1, 0);
  });

  it('should differ from machine to machine', () => {
    const oneX = [1, 2, 3, 4, 5, 6].map((seed) => amplitudeAt(magnitudeSpectrum(renderWindow(pump, { seed, length: 8192, shaftHz: FR }).channels.vib_x, FS), FR, 0.5));
    expect(Math.max(...oneX) / Math.min(...oneX)).toBeGreaterThan(1.5);
  });

  it('should scale to m/s² when the channel asks for it', () => {
    const metric = structuredClone(pump);
    const ch = metric.streams[0].channels[0];
    if (ch.signal === 'vibration') ch.unit = 'm/s²';
    const g = renderWindow(pump, { seed: 4, length: 256 }).channels.vib_x;
    const ms2 = renderWindow(metric, { seed: 4, length: 256 }).channels.vib_x;
    for (let i = 0; i < 256; i += 17) expect(ms2[i]).toBeCloseTo(g[i] * 9.80665, 3);
  });
});

describe('vibration: fault signatures at moderate severity (0.3)', () => {
  const normal = spectra();

  it('should raise 1x in the radial axes far more than in the axial with imbalance, with little harmonic content', () => {
    const imb = spectra({ type: 'imbalance', severity: 0.3 });
    const rise = (axis: (typeof AXES)[number], k: number): number => order(imb[axis], k) - order(normal[axis], k);
    expect(rise('vib_x', 1)).toBeGreaterThan(0.05);
    expect(rise('vib_y', 1)).toBeGreaterThan(0.05);
    expect(order(imb.vib_x, 1)).toBeGreaterThan(3 * order(normal.vib_x, 1));
    expect(Math.abs(rise('vib_z', 1))).toBeLessThan(rise('vib_x', 1) / 5);
    expect(Math.abs(rise('vib_x', 2))).toBeLessThan(rise('vib_x', 1) / 10);
    expect(Math.abs(rise('vib_x', 3))).toBeLessThan(rise('vib_x', 1) / 10);
  });

  it('should put x and y about 90° apart at 1x with imbalance', () => {
    const w = pumpWindow({ type: 'imbalance', severity: 0.5 });
    expect(phaseGap(phaseAt(w.channels.vib_x, FR), phaseAt(w.channels.vib_y, FR))).toBeGreaterThan(70);
    expect(phaseGap(phaseAt(w.channels.vib_x, FR), phaseAt(w.channels.vib_y, FR))).toBeLessThan(110);
  });

  it('should grow the imbalance 1x steadily with severity', () => {
    const levels = [0, 0.1, 0.3, 0.6, 1].map((severity) => order(spectra(severity ? { type: 'imbalance', severity } : undefined, 8192).vib_x, 1));
    for (let i = 1; i < levels.length; i++) expect(levels[i]).toBeGreaterThan(levels[i - 1]);
    expect(levels[4]).toBeGreaterThan(8 * levels[0]);
  });

  it('should raise 2x radially and 1x/2x axially with misalignment, axial in anti-phase with radial', () => {
    const mis = spectra({ type: 'misalignment', severity: 0.3 });
    expect(order(mis.vib_x, 2)).toBeGreaterThan(order(mis.vib_x, 1));
    expect(order(mis.vib_x, 2)).toBeGreaterThan(4 * order(normal.vib_x, 2));
    expect(order(mis.vib_y, 2)).toBeGreaterThan(4 * order(normal.vib_y, 2));
    expect(order(mis.vib_z, 1)).toBeGreaterThan(3 * order(normal.vib_z, 1));
    expect(order(mis.vib_z, 2)).toBeGreaterThan(4 * order(normal.vib_z, 2));
    // The textbook rule: axial above half the radial.
    expect(order(mis.vib_z, 2)).toBeGreaterThan(0.5 * order(mis.vib_x, 2));
    expect(order(mis.vib_x, 3)).toBeGreaterThan(3 * order(normal.vib_x, 3));
    const w = pumpWindow({ type: 'misalignment', severity: 0.5 });
    expect(phaseGap(phaseAt(w.channels.vib_x, 2 * FR), phaseAt(w.channels.vib_z, 2 * FR))).toBeGreaterThan(140);
  });

  describe('bearing defects', () => {
    const f = bearingFrequencies(pump.machine.bearing, FR);
    const band = [1000, 2500] as const;
    const normalWindow = pumpWindow(undefined, 32768);
    const normalEnvelope = envelopeSpectrum(normalWindow.channels.vib_y, FS, ...band);

    for (const [location, defectHz, name, what] of [
      ['outer', f.bpfo, 'BPFO', 'an outer-race defect'],
      ['inner', f.bpfi, 'BPFI', 'an inner-race defect'],
      ['ball', 2 * f.bsf, '2×BSF', 'a ball defect'],
    ] as const) {
      it(`should show ${name} in the envelope spectrum for ${what}`, () => {
        const w = pumpWindow({ type: 'bearing', severity: 0.3, location }, 32768);
        const env = envelopeSpectrum(w.channels.vib_y, FS, ...band);
        const line = amplitudeAt(env, defectHz, 0.5);
        expect(line).toBeGreaterThan(8 * median(env.magnitudes.subarray(Math.round(5 / env.binHz), Math.round(500 / env.binHz))));
        expect(line).toBeGreaterThan(5 * amplitudeAt(normalEnvelope, defectHz, 0.5));
        // The strongest line near the defect frequency is the defect frequency itself.
        expect(peakFrequency(env, defectHz * 0.8, defectHz * 1.2)).toBeCloseTo(defectHz, 0);
        // Its harmonic is there too.
        expect(amplitudeAt(env, 2 * defectHz, 0.6)).toBeGreaterThan(3 * amplitudeAt(normalEnvelope, 2 * defectHz, 0.6));
      });
    }

    it('should modulate an inner-race defect by the shaft speed (sidebands at BPFI ± 1x) and a ball defect by the cage (FTF)', () => {
      const inner = envelopeSpectrum(pumpWindow({ type: 'bearing', severity: 0.3, location: 'inner' }, 32768).channels.vib_y, FS, ...band);
      const outer = envelopeSpectrum(pumpWindow({ type: 'bearing', severity: 0.3, location: 'outer' }, 32768).channels.vib_y, FS, ...band);
      const ball = envelopeSpectrum(pumpWindow({ type: 'bearing', severity: 0.3, location: 'ball' }, 32768).channels.vib_y, FS, ...band);
      const floor = median(inner.magnitudes.subarray(Math.round(5 / inner.binHz), Math.round(500 / inner.binHz)));
      expect(amplitudeAt(inner, f.bpfi - FR, 0.5)).toBeGreaterThan(4 * floor);
      expect(amplitudeAt(inner, f.bpfi + FR, 0.5)).toBeGreaterThan(4 * floor);
      expect(amplitudeAt(inner, FR, 0.5)).toBeGreaterThan(4 * amplitudeAt(outer, FR, 0.5));
      expect(amplitudeAt(ball, f.ftf, 0.3)).toBeGreaterThan(4 * amplitudeAt(outer, f.ftf, 0.3));
    });

    it('should raise the resonance band of the raw spectrum', () => {
      const w = pumpWindow({ type: 'bearing', severity: 0.3, location: 'outer' }, 8192);
      const raw = magnitudeSpectrum(w.channels.vib_y, FS);
      const healthy = magnitudeSpectrum(pumpWindow(undefined, 8192).channels.vib_y, FS);
      // The strongest 200 Hz band between 1 and 2.4 kHz: where this machine's structure rings.
      const resonanceBand = (sp: Spectrum): number => {
        let best = 0;
        for (let lo = 1000; lo <= 2200; lo += 25) best = Math.max(best, bandLevel(sp, lo, lo + 200));
        return best;
      };
      expect(resonanceBand(raw)).toBeGreaterThan(2.5 * resonanceBand(healthy));
      // ... but leaves the shaft orders alone.
      expect(order(raw, 1)).toBeLessThan(1.5 * order(healthy, 1));
    });
  });

  it('should show half harmonics and a long comb of harmonics with looseness, mostly in one direction', () => {
    const loose = spectra({ type: 'looseness', severity: 0.3 });
    for (const k of [0.5, 1.5, 2.5]) expect(order(loose.vib_y, k)).toBeGreaterThan(4 * order(normal.vib_y, k));
    let raised = 0;
    for (let k = 1; k <= 10; k++) if (order(loose.vib_y, k) > 3 * order(normal.vib_y, k)) raised++;
    expect(raised).toBeGreaterThanOrEqual(7);
    let y = 0;
    let x = 0;
    for (let k = 2; k <= 10; k++) {
      y += order(loose.vib_y, k) - order(normal.vib_y, k);
      x += order(loose.vib_x, k) - order(normal.vib_x, k);
    }
    expect(y).toBeGreaterThan(2 * x);
  });

  it('should truncate the waveform of a loose machine on one side', () => {
    // Skewness of the vertical axis over many revolutions: a symmetric machine's is near zero.
    const skew = (x: Float32Array): number => {
      const m = x.reduce((s, v) => s + v, 0) / x.length;
      let s2 = 0;
      let s3 = 0;
      for (const v of x) {
        s2 += (v - m) ** 2;
        s3 += (v - m) ** 3;
      }
      return s3 / x.length / (s2 / x.length) ** 1.5;
    };
    const healthy = skew(pumpWindow(undefined, 16384).channels.vib_y);
    const loose = skew(pumpWindow({ type: 'looseness', severity: 0.6 }, 16384).channels.vib_y);
    expect(Math.abs(healthy)).toBeLessThan(0.1);
    expect(Math.abs(loose)).toBeGreaterThan(0.3);
  });
});
