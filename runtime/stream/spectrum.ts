// Magnitude spectra of sensor windows, the basis of the spectral features and of how a
// vibration analyst reads a machine (1x, 2x, bearing defect frequencies).
import FFT from 'fft.js';

interface Plan {
  fft: FFT;
  size: number;
  /** Hann window for `n` samples, and its coherent gain (the sum of its values). */
  hann: Float64Array;
  hannGain: number;
  /** Scratch buffers, reused: the FFT input and output of this size. */
  input: Float64Array;
  output: number[];
  /** The last spectrum's magnitudes, overwritten by the next call of this size (feature path). */
  magnitudes: Float32Array;
}

// Windows arrive thousands of times a second with the same length: the FFT tables, the Hann
// window and the buffers are made once per length.
const plans = new Map<number, Plan>();
function planFor(n: number): Plan {
  let p = plans.get(n);
  if (!p) {
    const size = nextPowerOfTwo(n);
    const fft = new FFT(size);
    const hann = Float64Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / Math.max(1, n - 1)));
    p = { fft, size, hann, hannGain: hann.reduce((a, b) => a + b, 0), input: new Float64Array(size), output: fft.createComplexArray(), magnitudes: new Float32Array(size / 2 + 1) };
    plans.set(n, p);
  }
  return p;
}

/** The smallest power of two ≥ n (and ≥ 2, as the FFT needs). */
export function nextPowerOfTwo(n: number): number {
  let p = 2;
  while (p < n) p *= 2;
  return p;
}

export interface Spectrum {
  /** One-sided amplitude per bin, 0 Hz to Nyquist: a sine of amplitude A shows as ≈ A at its bin. */
  magnitudes: Float32Array;
  /** Width of one bin in Hz. */
  binHz: number;
}

/**
 * One-sided amplitude spectrum: the mean is removed (an accelerometer's 1 g offset would swamp
 * the low bins), a Hann window applied with its coherent gain corrected, and the window
 * zero-padded to a power of two.
 */
export function magnitudeSpectrum(samples: ArrayLike<number>, sampleRate: number, window: 'hann' | 'none' = 'hann'): Spectrum {
  const s = scratchSpectrum(samples, sampleRate, window);
  return { magnitudes: s.magnitudes.slice(), binHz: s.binHz };
}

/**
 * As magnitudeSpectrum, but the magnitudes are the plan's own buffer, overwritten by the next
 * call for a window of the same length: the feature transforms read it at once and keep nothing,
 * and three spectra per window thousands of times a second should not each allocate.
 */
export function scratchSpectrum(samples: ArrayLike<number>, sampleRate: number, window: 'hann' | 'none' = 'hann'): Spectrum {
  const n = samples.length;
  const plan = planFor(n);
  const { size, input, output, hann, magnitudes } = plan;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += samples[i];
  mean /= n || 1;
  if (window === 'hann') for (let i = 0; i < n; i++) input[i] = (samples[i] - mean) * hann[i];
  else for (let i = 0; i < n; i++) input[i] = samples[i] - mean;
  const gain = window === 'hann' ? plan.hannGain : n;
  plan.fft.realTransform(output, input);
  const half = size / 2;
  const scale = gain > 0 ? 2 / gain : 0;
  for (let k = 0; k <= half; k++) {
    const re = output[2 * k];
    const im = output[2 * k + 1];
    // DC and Nyquist have no mirror image: half the one-sided scale.
    magnitudes[k] = Math.sqrt(re * re + im * im) * (k === 0 || k === half ? scale / 2 : scale);
  }
  return { magnitudes, binHz: sampleRate / size };
}

/** The frequency of the strongest bin between lowHz and highHz. */
export function peakFrequency(spectrum: Spectrum, lowHz = 0, highHz = Infinity): number {
  let best = -1;
  let bestK = 0;
  for (let k = 0; k < spectrum.magnitudes.length; k++) {
    const f = k * spectrum.binHz;
    if (f < lowHz || f > highHz) continue;
    if (spectrum.magnitudes[k] > best) {
      best = spectrum.magnitudes[k];
      bestK = k;
    }
  }
  return bestK * spectrum.binHz;
}

/** The largest amplitude within ±toleranceHz of a frequency. */
export function amplitudeAt(spectrum: Spectrum, hz: number, toleranceHz = spectrum.binHz): number {
  const lo = Math.max(0, Math.floor((hz - toleranceHz) / spectrum.binHz));
  const hi = Math.min(spectrum.magnitudes.length - 1, Math.ceil((hz + toleranceHz) / spectrum.binHz));
  let m = 0;
  for (let k = lo; k <= hi; k++) m = Math.max(m, spectrum.magnitudes[k]);
  return m;
}
