// Feature transforms named in the model card: from a window of raw samples per channel to the
// model's input tensor, normalized as the card says.
import { EdgeInferError } from '../errors';
import { type ModelCard, featureShape } from '../model/card';
import { scratchSpectrum } from './spectrum';

type CardInput = ModelCard['input'];

/** Root mean square of samples (0 for none): one pass, no allocation. */
export function rms(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s / (x.length || 1));
}

interface BandPlan {
  /** Band of each FFT bin below maxHz (bins at or above it are left out). */
  bandOf: Int32Array;
  /** FFT bins per band. */
  counts: Uint32Array;
}

// The same (length, rate, bands) comes back for every window of a model: map bins to bands once.
const bandPlans = new Map<string, BandPlan>();
function bandPlan(binCount: number, binHz: number, bins: number, maxHz: number): BandPlan {
  const key = `${binCount}/${binHz}/${bins}/${maxHz}`;
  let p = bandPlans.get(key);
  if (!p) {
    const bandHz = maxHz / bins;
    const bandOf = new Int32Array(binCount).fill(-1);
    const counts = new Uint32Array(bins);
    for (let k = 0; k < binCount; k++) {
      const f = k * binHz;
      if (f >= maxHz) break;
      bandOf[k] = Math.min(bins - 1, Math.floor(f / bandHz));
      counts[bandOf[k]]++;
    }
    p = { bandOf, counts };
    bandPlans.set(key, p);
  }
  return p;
}

/** Averages a spectrum into `bins` equal-width bands from 0 Hz to maxHz. */
function bandAverages(samples: ArrayLike<number>, sampleRate: number, bins: number, maxHz: number, out: Float32Array, offset: number, log: boolean): void {
  const { magnitudes, binHz } = scratchSpectrum(samples, sampleRate);
  const { bandOf, counts } = bandPlan(magnitudes.length, binHz, bins, maxHz);
  out.fill(0, offset, offset + bins);
  for (let k = 0; k < magnitudes.length; k++) if (bandOf[k] >= 0) out[offset + bandOf[k]] += magnitudes[k];
  for (let b = 0; b < bins; b++) {
    const v = counts[b] ? out[offset + b] / counts[b] : 0;
    out[offset + b] = log ? Math.log1p(v) : v;
  }
}

/**
 * The model input for one window: `channels` holds one array of `input.window` samples per card
 * channel, in card order. Returns the features flattened in featureShape(input) order.
 */
export function computeFeatures(input: CardInput, channels: readonly ArrayLike<number>[]): Float32Array {
  if (channels.length !== input.channels.length) {
    throw new EdgeInferError('E_INPUT_SHAPE', `expected ${input.channels.length} channels (${input.channels.map((c) => c.name).join(', ')}), got ${channels.length}`);
  }
  channels.forEach((c, i) => {
    if (c.length !== input.window) {
      throw new EdgeInferError('E_INPUT_SHAPE', `channel '${input.channels[i].name}': expected a window of ${input.window} samples, got ${c.length}`);
    }
  });
  const shape = featureShape(input);
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  const f = input.features;
  channels.forEach((samples, c) => {
    switch (f.transform) {
      case 'raw':
        for (let i = 0; i < input.window; i++) out[c * input.window + i] = samples[i];
        break;
      case 'rms':
        out[c] = rms(samples);
        break;
      case 'fft-magnitude':
        bandAverages(samples, input.sampleRate, f.bins, f.maxHz ?? input.sampleRate / 2, out, c * f.bins, f.scale === 'log');
        break;
    }
  });
  normalize(input, out, shape);
  return out;
}

/** Applies the card's normalization in place: per channel, or per feature element. */
export function normalize(input: CardInput, features: Float32Array, shape: readonly number[] = featureShape(input)): void {
  const n = input.normalization;
  if (n.kind === 'none') return;
  const channels = shape[0];
  const perChannel = features.length / channels;
  if (n.mean.length === features.length) {
    for (let i = 0; i < features.length; i++) features[i] = (features[i] - n.mean[i]) / n.std[i];
  } else if (n.mean.length === channels) {
    for (let i = 0; i < features.length; i++) {
      const c = Math.floor(i / perChannel);
      features[i] = (features[i] - n.mean[c]) / n.std[c];
    }
  } else {
    throw new EdgeInferError('E_CARD_INVALID', `normalization has ${n.mean.length} values; expected ${channels} (one per channel) or ${features.length} (one per feature)`);
  }
}
