import { describe, expect, it } from 'vitest';
import { parseCard } from '../../runtime/model/card';
import { amplitudeAt, computeFeatures, magnitudeSpectrum, peakFrequency } from '../../runtime/stream';
import { scratchSpectrum } from '../../runtime/stream/spectrum';

const sine = (hz: number, amp: number, n: number, fs: number, offset = 0): Float32Array =>
  Float32Array.from({ length: n }, (_, i) => offset + amp * Math.sin((2 * Math.PI * hz * i) / fs));

function input(features: object, normalization: object = { kind: 'none' }, channels = 2) {
  return parseCard({
    schema: 1, id: 'm', version: '1.0.0', title: 't', description: 'd', task: 'anomaly', precision: 'fp32',
    input: { tensor: 'x', channels: Array.from({ length: channels }, (_, i) => ({ name: `c${i}`, unit: 'g' })), sampleRate: 1024, window: 256, hop: 128, features, normalization },
    output: { tensor: 'y', score: 's', threshold: 1 },
  }).input;
}

describe('magnitudeSpectrum', () => {
  it('should show a sine at its frequency with its amplitude, ignoring a DC offset', () => {
    const s = magnitudeSpectrum(sine(64, 0.5, 1024, 1024, 1), 1024);
    expect(s.binHz).toBe(1);
    expect(peakFrequency(s)).toBe(64);
    expect(amplitudeAt(s, 64)).toBeCloseTo(0.5, 2);
    expect(s.magnitudes[0]).toBeLessThan(1e-3);
  });

  it('should zero-pad windows that are not a power of two', () => {
    const s = magnitudeSpectrum(sine(100, 1, 1000, 1000), 1000);
    expect(s.magnitudes.length).toBe(513);
    expect(Math.abs(peakFrequency(s) - 100)).toBeLessThan(2);
  });
});

describe('scratchSpectrum', () => {
  it('should give what magnitudeSpectrum gives, in a buffer the next call of that length overwrites', () => {
    const a = sine(64, 0.5, 1000, 1024, 1);
    const b = sine(200, 2, 1000, 1024);
    const first = scratchSpectrum(a, 1024);
    expect(Array.from(first.magnitudes)).toEqual(Array.from(magnitudeSpectrum(a, 1024).magnitudes));
    const kept = magnitudeSpectrum(a, 1024, 'none');
    const second = scratchSpectrum(b, 1024);
    expect(second.magnitudes).toBe(first.magnitudes);
    expect(peakFrequency(second)).toBeCloseTo(200, -1);
    // magnitudeSpectrum's result is the caller's own: later calls leave it alone.
    expect(peakFrequency(kept)).toBeCloseTo(64, -1);
    expect(Array.from(scratchSpectrum(a, 1024, 'none').magnitudes)).toEqual(Array.from(kept.magnitudes));
  });
});

describe('computeFeatures', () => {
  it('should pass raw samples through in channel order', () => {
    const a = sine(10, 1, 256, 1024);
    const b = sine(20, 2, 256, 1024);
    const f = computeFeatures(input({ transform: 'raw' }), [a, b]);
    expect(f.length).toBe(512);
    expect(f.subarray(256)).toEqual(b);
  });

  it('should give the RMS of each channel', () => {
    const f = computeFeatures(input({ transform: 'rms' }), [sine(16, 1, 256, 1024), new Float32Array(256).fill(3)]);
    expect(f[0]).toBeCloseTo(Math.SQRT1_2, 3);
    expect(f[1]).toBeCloseTo(3, 5);
  });

  it('should average the spectrum into equal bands up to maxHz', () => {
    const f = computeFeatures(input({ transform: 'fft-magnitude', bins: 8, maxHz: 256 }), [sine(100, 1, 256, 1024), sine(40, 1, 256, 1024)]);
    expect(f.length).toBe(16);
    const band = (c: number) => Array.from(f.subarray(c * 8, c * 8 + 8)).indexOf(Math.max(...f.subarray(c * 8, c * 8 + 8)));
    expect(band(0)).toBe(3); // 100 Hz in the 96–128 Hz band
    expect(band(1)).toBe(1); // 40 Hz in the 32–64 Hz band
  });

  it('should take log1p of the bands on a log scale', () => {
    const lin = computeFeatures(input({ transform: 'fft-magnitude', bins: 4, scale: 'linear' }), [sine(100, 4, 256, 1024), sine(40, 1, 256, 1024)]);
    const log = computeFeatures(input({ transform: 'fft-magnitude', bins: 4, scale: 'log' }), [sine(100, 4, 256, 1024), sine(40, 1, 256, 1024)]);
    lin.forEach((v, i) => expect(log[i]).toBeCloseTo(Math.log1p(v), 5));
  });

  it('should normalize per channel or per element as the card says', () => {
    const perChannel = computeFeatures(input({ transform: 'rms' }, { kind: 'standard', mean: [1, 2], std: [2, 4] }), [new Float32Array(256).fill(3), new Float32Array(256).fill(10)]);
    expect(Array.from(perChannel)).toEqual([1, 2]);
    const perElement = computeFeatures(input({ transform: 'raw' }, { kind: 'standard', mean: new Array(512).fill(1), std: new Array(512).fill(0.5) }), [new Float32Array(256).fill(2), new Float32Array(256)]);
    expect(perElement[0]).toBe(2);
    expect(perElement[300]).toBe(-2);
  });

  it('should refuse a normalization of the wrong length', () => {
    expect(() => computeFeatures(input({ transform: 'rms' }, { kind: 'standard', mean: [1, 2, 3], std: [1, 1, 1] }), [new Float32Array(256), new Float32Array(256)])).toThrow(/normalization has 3 values; expected 2 \(one per channel\) or 2/);
  });

  it('should refuse the wrong number of channels or a short window, naming the channel', () => {
    const spec = input({ transform: 'raw' });
    expect(() => computeFeatures(spec, [new Float32Array(256)])).toThrow(/expected 2 channels \(c0, c1\), got 1/);
    expect(() => computeFeatures(spec, [new Float32Array(256), new Float32Array(100)])).toThrow(/channel 'c1': expected a window of 256 samples, got 100/);
  });
});
