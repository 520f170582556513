// Windows per device for one model: samples from each device's messages go into that device's
// sliding window; a complete window becomes the model's features, with its time span and the
// messages it came from. A gap in a device's stream (a lost message, or a timestamp jump longer
// than the card allows) restarts its window instead of gluing unrelated samples together.
// Devices are bounded: a device silent for long is evicted (its partial window let go), and a
// new device past the limit is refused, so a publisher that makes up device ids cannot grow
// memory without end. After a restart, a device's windows resume on the grid they had.
import { EdgeInferError } from '../errors';
import { type ModelCard, featureShape } from '../model/card';
import type { DecodedSamples } from './decoders';
import { computeFeatures, rms } from './features';
import { isoTime } from './results';
import { SlidingWindow } from './window';

/** A time span in the unit that reads best. */
function skew(ms: number): string {
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} days`;
}

export interface ReadyWindow {
  device: string;
  /**
   * Model input features, in featureShape(card.input). Empty until a worker thread has computed
   * them when the windows are made for the worker pool (`samples` is set instead).
   */
  features: Float32Array;
  /** The window's raw samples per channel (shared memory), for a worker thread to make the features from. */
  samples?: Float32Array[];
  dims: number[];
  /** Time of the window's first sample and of the sample after its last, ms since the epoch. */
  startMs: number;
  endMs: number;
  /** Keys of the messages whose samples the window holds. */
  messageKeys: string[];
  /**
   * RMS of the main channel's raw samples (the card's first channel, before the feature
   * transform), logged with the window's result for the dashboard's drill-down.
   */
  rms?: number;
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
  /** When the device last sent samples (wall clock), for idle eviction. */
  lastSeenMs: number;
}

/** Times a window may carry: what a JavaScript Date holds, ±8.64e15 ms around 1970. */
export const MAX_TIME_MS = 8.64e15;

/** Default bound on how far ahead of the gateway's clock a device's samples may be dated: one day. */
export const DEFAULT_MAX_AHEAD_S = 86_400;

/** Default most devices one pipeline follows. */
export const DEFAULT_MAX_DEVICES = 10_000;

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
  /** Most devices followed at once; a new device past it is refused (E_DEVICE_LIMIT). Default 10,000. */
  maxDevices?: number;
  /**
   * How far ahead of the gateway's clock (at the message's arrival) samples may be dated, in
   * seconds; later ones are refused (E_INPUT_VALUE naming the device and the skew). Default one day.
   */
  maxAheadS?: number;
  /**
   * Leaves the feature transform to the worker pool: windows carry their samples (in shared
   * memory) and empty features, which the pool fills in. Default false (features computed here).
   */
  deferFeatures?: boolean;
}

const NO_FEATURES = new Float32Array(0);

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
  readonly maxDevices: number;
  /** Where each device's next window starts after a restart (ms), until its first samples come. */
  private resumeAt = new Map<string, number>();
  private readonly periodMs: number;
  readonly maxAheadMs: number;
  /** The card's input with this pipeline's window: made once, not per window. */
  readonly featureInput: ModelCard['input'];
  private readonly deferFeatures: boolean;

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
    this.maxDevices = options.maxDevices ?? DEFAULT_MAX_DEVICES;
    if (!Number.isInteger(this.maxDevices) || this.maxDevices < 1) throw new EdgeInferError('E_ARGUMENT', `${card.id}: maxDevices must be a whole number ≥ 1, got ${this.maxDevices}`);
    this.periodMs = 1000 / card.input.sampleRate;
    const ahead = options.maxAheadS ?? DEFAULT_MAX_AHEAD_S;
    if (!(ahead > 0) || !Number.isFinite(ahead)) throw new EdgeInferError('E_ARGUMENT', `${card.id}: maxAheadS must be a finite number of seconds > 0, got ${ahead}`);
    this.maxAheadMs = ahead * 1000;
    this.featureInput = { ...card.input, window: this.window };
    this.deferFeatures = options.deferFeatures ?? false;
  }

  /** Devices followed now. */
  get size(): number {
    return this.devices.size;
  }

  /** Bytes the devices' sample buffers take. */
  get bytes(): number {
    let n = 0;
    for (const s of this.devices.values()) n += s.slider.bytes;
    return n;
  }

  /**
   * After a restart: the start of each device's last logged window. A device's first samples
   * then resume the grid those windows were on (the next window starts one hop after the last),
   * so a replay makes the same windows a run without the restart would have, and analyses no
   * sample twice. Samples before the next start are let go: they fed logged windows only. The
   * points hold for live messages too (a redelivery the journal never had), until dropped.
   */
  resumeFrom(lastStarts: ReadonlyMap<string, number>): void {
    this.resumeAt = new Map([...lastStarts].map(([device, ms]) => [device, ms + this.hop * this.periodMs]));
  }

  /** Forgets the resume points not used yet (devices that did not come back after the restart). */
  dropResumePoints(): void {
    this.resumeAt.clear();
  }

  /**
   * Lets go of devices that sent nothing since `idleSinceMs` (wall clock): their partial windows
   * will not complete. Returns them and the keys of the messages no window holds any more.
   */
  evictIdle(idleSinceMs: number): { devices: string[]; released: string[] } {
    const devices: string[] = [];
    const released: string[] = [];
    for (const [device, s] of this.devices) {
      if (s.lastSeenMs >= idleSinceMs) continue;
      devices.push(device);
      for (const m of s.spans) released.push(m.key);
      this.devices.delete(device);
    }
    return { devices, released };
  }

  private state(device: string, firstMs: number, nowMs: number): DeviceState {
    let s = this.devices.get(device);
    if (!s) {
      if (this.devices.size >= this.maxDevices) {
        throw new EdgeInferError('E_DEVICE_LIMIT', `device '${device}': ${this.card.id} already follows ${this.maxDevices} devices (the pipeline's devices.max); a new device is taken once an idle one is evicted`);
      }
      s = { slider: new SlidingWindow(this.channels.length, this.window, this.hop, this.deferFeatures), spans: [], anchorIndex: 0, anchorMs: firstMs, lastSeenMs: nowMs };
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
  push(device: string, samples: DecodedSamples, messageKey: string, receivedMs: number, nowMs = Date.now()): { windows: ReadyWindow[]; released: string[]; buffered: boolean } {
    const missing = this.channels.filter((c) => !samples.channels[c]);
    if (missing.length) {
      throw new EdgeInferError('E_INPUT_SHAPE', `device '${device}': channel${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')} missing; ${this.card.id} reads ${this.channels.join(', ')}`);
    }
    // Samples at another rate would be windowed as if at the card's: wrong features, no error.
    const rate = this.card.input.sampleRate;
    if (samples.sampleRate !== undefined && Math.abs(samples.sampleRate - rate) > rate * 1e-6) {
      throw new EdgeInferError('E_INPUT_VALUE', `device '${device}': the payload is sampled at ${samples.sampleRate} Hz; ${this.card.id} reads ${rate} Hz`);
    }
    let block: Float32Array[] = this.channels.map((c) => samples.channels[c]);
    let n = block[0].length;
    if (n === 0) return { windows: [], released: [], buffered: false };
    const periodMs = this.periodMs;
    let firstMs = samples.timestampMs ?? receivedMs - (n - 1) * periodMs;
    // Times a Date cannot hold would fail every result built from them (and its commit): the
    // message is refused here, naming the time, whatever decoder let it through.
    const lastMs = firstMs + n * periodMs;
    if (!(Math.abs(firstMs) <= MAX_TIME_MS && Math.abs(lastMs) <= MAX_TIME_MS)) {
      throw new EdgeInferError('E_INPUT_VALUE', `device '${device}': samples dated ${firstMs} ms to ${lastMs} ms since 1970, past what a date can hold (±${MAX_TIME_MS} ms)`);
    }
    // A device clock far ahead of the gateway's would date results (and alerts, retention, charts)
    // in a future that never comes: refused, naming the skew. Data from the past is taken.
    if (samples.timestampMs !== undefined && lastMs - receivedMs > this.maxAheadMs) {
      throw new EdgeInferError('E_INPUT_VALUE', `device '${device}': samples dated ${isoTime(lastMs)}, ${skew(lastMs - receivedMs)} ahead of this gateway's clock (${isoTime(receivedMs)}); the bound is ${skew(this.maxAheadMs)} (devices.maxAheadS)`);
    }
    // Only timestamps draw a grid: readings dated by their arrival cannot be placed on one.
    let resume = this.devices.has(device) ? undefined : this.resumeAt.get(device);
    if (resume !== undefined && samples.timestampMs === undefined) {
      this.resumeAt.delete(device);
      resume = undefined;
    }
    // Samples that end before the last logged window started are older data (a device whose clock
    // went back): a fresh start for them, as for any device.
    if (resume !== undefined && lastMs <= resume - this.hop * periodMs) this.resumeAt.delete(device);
    else if (resume !== undefined) {
      // The first samples of a device after a restart: those before its next window fed logged windows only.
      const skip = Math.round((resume - firstMs) / periodMs);
      if (skip >= n) return { windows: [], released: [], buffered: false };
      this.resumeAt.delete(device);
      if (skip > 0) {
        block = block.map((c) => c.subarray(skip));
        n -= skip;
        firstMs += skip * periodMs;
      }
    }
    const s = this.state(device, firstMs, nowMs);
    s.lastSeenMs = nowMs;
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
    s.nextMs = samples.timestampMs !== undefined ? firstMs + n * periodMs : undefined;
    s.spans.push({ key: messageKey, first, last: first + n - 1 });
    const windows = s.slider.push(block);
    const out = windows.map((w) => ({
      device,
      // Taken from the window's own copy of the samples, before the transform reads them.
      rms: rms(w.channels[0]),
      features: this.deferFeatures ? NO_FEATURES : computeFeatures(this.featureInput, w.channels),
      ...(this.deferFeatures ? { samples: w.channels } : {}),
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
