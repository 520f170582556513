// Per-device windows fed by a real decoder: what the windows refuse, and when they let a message go.
import { describe, expect, it } from 'vitest';
import { type ModelCardInput, parseCard } from '../../runtime/model';
import { createDecoder } from '../../runtime/stream/decoders';
import { DeviceWindows } from '../../runtime/stream/device-windows';
import { thrown } from '../helpers/errors';

const CARD: ModelCardInput = {
  schema: 1,
  id: 'motor-current',
  version: '1.0.0',
  title: 'Motor current',
  description: 'RMS of a motor current sampled at 100 Hz, four samples a window.',
  task: 'regression',
  input: { tensor: 'x', channels: [{ name: 'current', unit: 'A' }], sampleRate: 100, window: 4, hop: 4, features: { transform: 'rms' } },
  output: { tensor: 'y', score: 'rms current', unit: 'A' },
  precision: 'fp32',
};

const decoder = createDecoder({ kind: 'json', channels: ['current'], sampleRateField: 'rate' });
const decode = (rate: number, values: number[]) => decoder.decode(new TextEncoder().encode(JSON.stringify({ rate, current: values })), { topic: 'motors/m-1/current', device: 'm-1' })[0];

describe('device windows and the sample rate a payload states', () => {
  it('should window samples stated at the card\'s rate', () => {
    const windows = new DeviceWindows(parseCard(CARD));
    expect(windows.push('m-1', decode(100, [1, 1, 1, 1]), 'k1', 1000).windows).toHaveLength(1);
  });

  it('should refuse samples stated at another rate, naming both rates, and keep nothing of them', () => {
    const windows = new DeviceWindows(parseCard(CARD));
    const err = thrown(() => windows.push('m-1', decode(50, [1, 1, 1]), 'k1', 1000));
    expect(err).toMatchObject({ code: 'E_INPUT_VALUE' });
    expect(err.message).toMatch(/m-1/);
    expect(err.message).toMatch(/50 Hz/);
    expect(err.message).toMatch(/motor-current reads 100 Hz/);
    // Nothing of the refused message is in the window: four good samples make exactly one window.
    const { windows: made, released } = windows.push('m-1', decode(100, [2, 2, 2, 2]), 'k2', 1000);
    expect(made.map((w) => w.messageKeys)).toEqual([['k2']]);
    expect(released).toEqual(['k2']);
  });
});

describe('device windows over time: the grid after a restart, idle devices, the device limit, dates', () => {
  // A gap of more than 1.5 sample periods restarts a window: the samples let go at a restart must not look like one.
  const TUMBLING: ModelCardInput = { ...CARD, input: { ...CARD.input, window: 8, hop: 8, maxGapS: 0.015 } };
  // 100 Hz: a sample every 10 ms; blocks of 3 samples do not divide the window of 8.
  const block = (from: number, n = 3) => ({ device: 'm-1', channels: { current: Float32Array.from({ length: n }, (_, i) => from + i) }, timestampMs: 1_000_000 + from * 10 });

  it('should resume a device on the grid of its last logged window, letting go of the samples before the next start', () => {
    const before = new DeviceWindows(parseCard(TUMBLING));
    const starts: number[] = [];
    for (let b = 0; b < 10; b++) starts.push(...before.push('m-1', block(b * 3), `k${b}`, 0).windows.map((w) => w.startMs));
    expect(starts).toEqual([1_000_000, 1_000_080, 1_000_160]);

    // A restart after the window at 1,000,080 was logged: its blocks from sample 15 on are replayed
    // (block 5 holds samples 15–17, of which 16 starts the next window).
    const after = new DeviceWindows(parseCard(TUMBLING));
    after.resumeFrom(new Map([['m-1', 1_000_080]]));
    const replayed: Array<{ startMs: number; first: number; keys: string[] }> = [];
    for (let b = 5; b < 10; b++) {
      for (const w of after.push('m-1', block(b * 3), `k${b}`, 0).windows) replayed.push({ startMs: w.startMs, first: w.features[0], keys: w.messageKeys });
    }
    // The same window as without the restart: it starts on the grid, at sample 16, not 15.
    expect(replayed.map((w) => w.startMs)).toEqual([1_000_160]);
    expect(replayed[0].keys).toEqual(['k5', 'k6', 'k7']);
    expect(after.gaps).toBe(0);
  });

  it('should take the samples after the ones let go at a restart as a continuous stream, not a gap', () => {
    const windows = new DeviceWindows(parseCard(TUMBLING));
    windows.resumeFrom(new Map([['m-1', 1_000_000]]));
    // Block 2 holds samples 6–8: two are let go, sample 8 starts the next window; 9–11 follow it.
    const starts: number[] = [];
    for (let b = 2; b < 6; b++) starts.push(...windows.push('m-1', block(b * 3), `k${b}`, 0).windows.map((w) => w.startMs));
    expect(windows.gaps).toBe(0);
    expect(starts).toEqual([1_000_080]);
  });

  it('should start afresh, keeping every sample, when a device comes back with samples older than its last logged window (a clock gone back)', () => {
    const windows = new DeviceWindows(parseCard(TUMBLING));
    windows.resumeFrom(new Map([['m-1', 1_000_800]]));
    const made = [0, 3, 6].flatMap((from) => windows.push('m-1', block(from), `k${from}`, 0).windows);
    expect(made.map((w) => w.startMs)).toEqual([1_000_000]);
  });

  it('should let a replayed message go at once when all its samples are before the next window', () => {
    const windows = new DeviceWindows(parseCard(TUMBLING));
    windows.resumeFrom(new Map([['m-1', 1_000_080]]));
    // Samples 12–14 fed only the logged window at sample 8.
    expect(windows.push('m-1', block(12), 'k4', 0)).toEqual({ windows: [], released: [], buffered: false });
    expect(windows.size).toBe(0);
  });

  it('should evict devices silent past the bound, returning the messages their partial windows held', () => {
    const windows = new DeviceWindows(parseCard(TUMBLING));
    windows.push('m-1', block(0), 'a', 0, 1_000);
    windows.push('m-2', { ...block(0), device: 'm-2' }, 'b', 0, 5_000);
    expect(windows.evictIdle(2_000)).toEqual({ devices: ['m-1'], released: ['a'] });
    expect(windows.size).toBe(1);
    expect(windows.evictIdle(2_000)).toEqual({ devices: [], released: [] });
  });

  it('should refuse a new device past the limit with E_DEVICE_LIMIT naming it, and take it once one is evicted', () => {
    const windows = new DeviceWindows(parseCard(TUMBLING), { maxDevices: 2 });
    windows.push('m-1', block(0), 'a', 0, 1_000);
    windows.push('m-2', block(0), 'b', 0, 5_000);
    const err = thrown(() => windows.push('m-3', block(0), 'c', 0, 6_000));
    expect(err).toMatchObject({ code: 'E_DEVICE_LIMIT' });
    expect(err.message).toMatch(/device 'm-3'.*2 devices/);
    // Known devices still push.
    expect(windows.push('m-2', block(3), 'd', 0, 6_000).buffered).toBe(true);
    windows.evictIdle(2_000);
    expect(windows.push('m-3', block(0), 'c', 0, 6_000).buffered).toBe(true);
    expect(() => new DeviceWindows(parseCard(TUMBLING), { maxDevices: 0 })).toThrow(/maxDevices must be a whole number ≥ 1, got 0/);
  });

  it.each([1e16, 1.7e18, -1e16, 8.64e15 - 5])('should refuse samples dated %s ms (past what a date holds), naming the device and the time', (t) => {
    const windows = new DeviceWindows(parseCard(TUMBLING));
    const err = thrown(() => windows.push('m-1', { ...block(0), timestampMs: t }, 'k', 0));
    expect(err).toMatchObject({ code: 'E_INPUT_VALUE' });
    expect(err.message).toMatch(/device 'm-1': samples dated .* past what a date can hold/);
    expect(windows.size).toBe(0);
  });

  it('should refuse samples dated further ahead of the clock at arrival than maxAheadS, naming the device and the skew, and take older ones', () => {
    const windows = new DeviceWindows(parseCard(TUMBLING), { maxAheadS: 3600 });
    const arrival = Date.UTC(2026, 11, 6, 12);
    const err = thrown(() => windows.push('m-1', { ...block(0), timestampMs: arrival + 3 * 3600_000 }, 'k', arrival));
    expect(err).toMatchObject({ code: 'E_INPUT_VALUE' });
    expect(err.message).toMatch(/device 'm-1': samples dated 2026-12-06T15:00:00.*3\.0 h ahead of this gateway's clock \(2026-12-06T12:00:00\.000Z\); the bound is 60\.0 min \(devices\.maxAheadS\)/);
    expect(windows.size).toBe(0);
    // Within the bound, and a week in the past (a backlog), samples are taken.
    expect(windows.push('m-1', { ...block(0), timestampMs: arrival + 1800_000 }, 'k1', arrival).buffered).toBe(true);
    expect(windows.push('m-2', { ...block(0), timestampMs: arrival - 7 * 86_400_000 }, 'k2', arrival).buffered).toBe(true);
    // Readings without a time are dated by their arrival: never ahead.
    expect(windows.push('m-3', block(0), 'k3', arrival).buffered).toBe(true);
    expect(() => new DeviceWindows(parseCard(TUMBLING), { maxAheadS: 0 })).toThrow(/maxAheadS.*got 0/);
  });

  it('should keep a device seen once small: its buffers grow with its samples, up to two windows', () => {
    const big: ModelCardInput = { ...CARD, input: { ...CARD.input, window: 4096, hop: 4096 } };
    const windows = new DeviceWindows(parseCard(big));
    windows.push('m-1', block(0), 'k', 0);
    expect(windows.bytes).toBeLessThanOrEqual(256 * 4);
    for (let b = 1; b < 3000; b++) windows.push('m-1', block(b * 3), `k${b}`, 0);
    expect(windows.bytes).toBeLessThanOrEqual(2 * 4096 * 4);
  });
});

describe('device windows and the RMS of the main channel', () => {
  // Two channels, overlapping windows, features normalized: the RMS must come from the first
  // channel's raw samples, not from the features.
  const TWO: ModelCardInput = {
    ...CARD,
    input: { ...CARD.input, channels: [{ name: 'current', unit: 'A' }, { name: 'voltage', unit: 'V' }], hop: 2, features: { transform: 'raw' }, normalization: { kind: 'standard', mean: [10, 100], std: [2, 5] } },
  };
  const twoDecoder = createDecoder({ kind: 'json', channels: ['current', 'voltage'] });
  const decodeTwo = (current: number[], voltage: number[]) => twoDecoder.decode(new TextEncoder().encode(JSON.stringify({ current, voltage })), { topic: 'motors/m-1/current', device: 'm-1' })[0];
  const rmsOf = (xs: number[]): number => Math.sqrt(xs.reduce((s, x) => s + x * x, 0) / xs.length);

  it('should carry on each window the RMS of its first channel\'s raw samples, across messages', () => {
    const windows = new DeviceWindows(parseCard(TWO));
    const current = [3, -4, 1, 2, 6, -2, 0.5, 8];
    const made = [
      ...windows.push('m-1', decodeTwo(current.slice(0, 3), [230, 231, 229]), 'k1', 1000).windows,
      ...windows.push('m-1', decodeTwo(current.slice(3), [230, 230, 230, 230, 230]), 'k2', 1050).windows,
    ];
    expect(made).toHaveLength(3);
    made.forEach((w, i) => expect(w.rms).toBeCloseTo(rmsOf(current.slice(i * 2, i * 2 + 4)), 6));
    // The features are the normalized samples: not what the RMS was taken from.
    expect(made[0].features[0]).toBeCloseTo((3 - 10) / 2, 6);
  });
});
