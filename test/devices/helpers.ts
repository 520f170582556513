// Signal analysis the way a vibration analyst does it, for checking the simulators' physics.
import FFT from 'fft.js';
import { type Spectrum, magnitudeSpectrum, nextPowerOfTwo } from '../../runtime/stream';

/**
 * Envelope spectrum: band-pass around the structural resonance, take the envelope (magnitude of
 * the analytic signal), and its amplitude spectrum. Bearing defect impacts show at their rate.
 */
export function envelopeSpectrum(samples: ArrayLike<number>, sampleRate: number, lowHz: number, highHz: number): Spectrum {
  const n = samples.length;
  const size = nextPowerOfTwo(n);
  const fft = new FFT(size);
  const input = fft.createComplexArray();
  for (let i = 0; i < n; i++) input[2 * i] = samples[i];
  const spec = fft.createComplexArray();
  fft.transform(spec, input);
  // Keep positive frequencies inside the band (doubled): the inverse is the analytic signal of the band.
  for (let k = 0; k < size; k++) {
    const f = (k * sampleRate) / size;
    const keep = k > 0 && k < size / 2 && f >= lowHz && f <= highHz;
    spec[2 * k] = keep ? 2 * spec[2 * k] : 0;
    spec[2 * k + 1] = keep ? 2 * spec[2 * k + 1] : 0;
  }
  const analytic = fft.createComplexArray();
  fft.inverseTransform(analytic, spec);
  const envelope = new Float64Array(n);
  for (let i = 0; i < n; i++) envelope[i] = Math.hypot(analytic[2 * i], analytic[2 * i + 1]);
  return magnitudeSpectrum(envelope, sampleRate);
}

/** RMS after removing the mean. */
export function rms(x: ArrayLike<number>): number {
  let mean = 0;
  for (let i = 0; i < x.length; i++) mean += x[i];
  mean /= x.length || 1;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - mean) ** 2;
  return Math.sqrt(s / (x.length || 1));
}

/** Mean spectral amplitude between two frequencies (a band level). */
export function bandLevel(spectrum: Spectrum, lowHz: number, highHz: number): number {
  let s = 0;
  let n = 0;
  for (let k = Math.ceil(lowHz / spectrum.binHz); k * spectrum.binHz <= highHz && k < spectrum.magnitudes.length; k++) {
    s += spectrum.magnitudes[k];
    n++;
  }
  return n ? s / n : 0;
}

/**
 * A multinomial logistic regression on standardized features, trained by full-batch gradient
 * descent: the simplest honest classifier, to check that labelled windows are separable.
 */
export function trainSoftmax(X: readonly Float32Array[], Y: readonly number[], classes: number, epochs = 150, rate = 0.5): (x: Float32Array) => number {
  const d = X[0].length;
  const mean = new Float64Array(d);
  const sd = new Float64Array(d);
  for (const x of X) for (let j = 0; j < d; j++) mean[j] += x[j] / X.length;
  for (const x of X) for (let j = 0; j < d; j++) sd[j] += (x[j] - mean[j]) ** 2 / X.length;
  for (let j = 0; j < d; j++) sd[j] = Math.sqrt(sd[j]) + 1e-9;
  const standard = (x: Float32Array): Float64Array => Float64Array.from(x, (v, j) => (v - mean[j]) / sd[j]);
  const Xs = X.map(standard);
  const W = Array.from({ length: classes }, () => new Float64Array(d + 1));
  const probabilities = (x: Float64Array): Float64Array => {
    const z = W.map((w) => {
      let s = w[d];
      for (let j = 0; j < d; j++) s += w[j] * x[j];
      return s;
    });
    const top = Math.max(...z);
    const e = Float64Array.from(z, (v) => Math.exp(v - top));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  };
  for (let epoch = 0; epoch < epochs; epoch++) {
    const grad = W.map(() => new Float64Array(d + 1));
    Xs.forEach((x, i) => {
      const p = probabilities(x);
      for (let c = 0; c < classes; c++) {
        const g = p[c] - (Y[i] === c ? 1 : 0);
        for (let j = 0; j < d; j++) grad[c][j] += g * x[j];
        grad[c][d] += g;
      }
    });
    for (let c = 0; c < classes; c++) for (let j = 0; j <= d; j++) W[c][j] -= (rate * grad[c][j]) / Xs.length + (j < d ? rate * 1e-3 * W[c][j] : 0);
  }
  return (x) => {
    const p = probabilities(standard(x));
    return p.indexOf(Math.max(...p));
  };
}
