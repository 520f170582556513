// Windows per device for one model: samples from each device's messages go into that device's
// sliding window; a complete window becomes the model's features, with its time span and the
// messages it came from. A gap in a device's stream (a lost message, or a timestamp jump longer
// than the card allows) restarts its window instead of gluing unrelated samples together.
import { EdgeInferError } from '../errors';
import { type ModelCard, featureShape } from '../model/card';
import type { DecodedSamples } from './decoders';
import { computeFeatures } from './features';
import { SlidingWindow } from './window';

export interface ReadyWindow {
  device: string;
  /** Model input features, in featureShape(card.input). */
  features: Float32Array;
  dims: number[];
  /** Time of the window's first sample and of the sample after its last, ms since the epoch. */
  startMs: number;
  endMs: number;
  /** Keys of the messages whose samples the window holds. */
  messageKeys: string[];
}

interface MessageSpan {
  key: string;
  first: number;
  last: number;
}

interface DeviceState {
  slider: SlidingWindow;
  spans: MessageSpan[];
  /** Time of sample `anchorIndex`, to date every sample. */
  anchorIndex: number;
  anchorMs: number;
  /** Expected time of the next sample, when the payloads carry timestamps. */
  nextMs?: number;
  lastSeq?: number;
}

export interface WindowingOptions {
  /** Samples per window (default: the card's). */
  window?: number;
  /** Samples between window starts (default: the card's). */
  hop?: number;
  /** Longest gap before a window restarts, in seconds (default: the card's maxGapS, or 10 sample periods). */
  maxGapS?: number;
  /**
   * Whether message numbers (`seq`) count per device, so a skipped number is a lost message.
   * Not for Sparkplug, whose seq counts per edge node across all its devices. Default true.
   */
  seqPerDevice?: boolean;
}

export class DeviceWindows {
  private readonly devices = new Map<string, DeviceState>();
  readonly window: number;
  readonly hop: number;
  readonly maxGapMs: number;
  readonly dims: number[];
  private readonly channels: string[];
  /** Windows restarted because of a gap. */
  gaps = 0;
  private readonly seqPerDevice: boolean;

  constructor(readonly card: ModelCard, options: WindowingOptions = {}) {
    this.window = options.window ?? card.input.window;
    this.hop = options.hop ?? card.input.hop;
    if (this.window !== card.input.window && card.input.features.transform === 'raw') {
      throw new EdgeInferError('E_ARGUMENT', `${card.id}: the window of a model that reads raw samples is fixed by its input (${card.input.window}); only the hop can change`);
    }
    if (this.hop > this.window) throw new EdgeInferError('E_ARGUMENT', `${card.id}: hop (${this.hop}) cannot exceed the window (${this.window})`);
    this.maxGapMs = (options.maxGapS ?? card.input.maxGapS ?? 10 / card.input.sampleRate) * 1000;
    this.channels = card.input.channels.map((c) => c.name);
    this.dims = featureShape(card.input);
    this.seqPerDevice = options.seqPerDevice ?? true;
  }

  private state(device: string, firstMs: number): DeviceState {
    let s = this.devices.get(device);
    if (!s) {
      s = { slider: new SlidingWindow(this.channels.length, this.window, this.hop), spans: [], anchorIndex: 0, anchorMs: firstMs };
      this.devices.set(device, s);
    }
    return s;
  }

  /**
   * Adds a message's samples for a device; returns the windows they complete, and the keys of
   * messages no future window of this device will read (their samples are all behind the next
   * window's start, or were dropped by a gap). `receivedMs` dates the samples when the payload
   * carries no timestamp (the last sample at receipt). `buffered` is true when the samples went
   * into the device's window: each such push comes back once in `released`, now or later, so a
   * message pushed for several devices (or times) is held until every one of them let it go.
   */
  push(device: string, samples: DecodedSamples, messageKey: string, receivedMs: number): { windows: ReadyWindow[]; released: string[]; buffered: boolean } {
    const missing = this.channels.filter((c) => !samples.channels[c]);
    if (missing.length) {
      throw new EdgeInferError('E_INPUT_SHAPE', `device '${device}': channel${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')} missing; ${this.card.id} reads ${this.channels.join(', ')}`);
    }
    // Samples at another rate would be windowed as if at the card's: wrong features, no error.
    const rate = this.card.input.sampleRate;
    if (samples.sampleRate !== undefined && Math.abs(samples.sampleRate - rate) > rate * 1e-6) {
      throw new EdgeInferError('E_INPUT_VALUE', `device '${device}': the payload is sampled at ${samples.sampleRate} Hz; ${this.card.id} reads ${rate} Hz`);
    }
    const block = this.channels.map((c) => samples.channels[c]);
    const n = block[0].length;
    if (n === 0) return { windows: [], released: [], buffered: false };
    const periodMs = 1000 / this.card.input.sampleRate;
    const firstMs = samples.timestampMs ?? receivedMs - (n - 1) * periodMs;
    const s = this.state(device, firstMs);
    // A numbered message that skips numbers, or a timestamp that jumps, means samples are missing.
    const seqGap = this.seqPerDevice && samples.seq !== undefined && s.lastSeq !== undefined && samples.seq !== (s.lastSeq + 1) % 2 ** 32 && !(samples.seq === 0 && s.lastSeq === 255);
    const timeGap = samples.timestampMs !== undefined && s.nextMs !== undefined && Math.abs(samples.timestampMs - s.nextMs) > this.maxGapMs;
    const released: string[] = [];
    if ((seqGap || timeGap) && s.slider.position > 0) {
      s.slider.reset();
      released.push(...s.spans.map((m) => m.key));
      s.spans = [];
      this.gaps++;
    }
    if (samples.seq !== undefined) s.lastSeq = samples.seq;
    const first = s.slider.position;
    s.anchorIndex = first;
    s.anchorMs = firstMs;
    s.nextMs = samples.timestampMs !== undefined ? samples.timestampMs + n * periodMs : undefined;
    s.spans.push({ key: messageKey, first, last: first + n - 1 });
    const windows = s.slider.push(block);
    const out = windows.map((w) => ({
      device,
      features: computeFeatures({ ...this.card.input, window: this.window }, w.channels),
      dims: this.dims,
      startMs: s.anchorMs + (w.start - s.anchorIndex) * periodMs,
      endMs: s.anchorMs + (w.end - s.anchorIndex) * periodMs,
      messageKeys: s.spans.filter((m) => m.first < w.end && m.last >= w.start).map((m) => m.key),
    }));
    // Messages wholly before the next window's start feed no future window.
    if (windows.length) {
      const keepFrom = windows[windows.length - 1].start + this.hop;
      for (const m of s.spans) if (m.last < keepFrom) released.push(m.key);
      s.spans = s.spans.filter((m) => m.last >= keepFrom);
    }
    return { windows: out, released, buffered: true };
  }
}
