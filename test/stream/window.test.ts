import { describe, expect, it } from 'vitest';
import { SlidingWindow } from '../../runtime/stream';

const ramp = (from: number, n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => from + i);

describe('SlidingWindow', () => {
  it('should emit a window every hop samples once the first is full', () => {
    const w = new SlidingWindow(1, 4, 2);
    expect(w.push([ramp(0, 3)])).toEqual([]);
    const out = w.push([ramp(3, 5)]);
    expect(out.map((o) => [o.start, o.end])).toEqual([[0, 4], [2, 6], [4, 8]]);
    expect(Array.from(out[1].channels[0])).toEqual([2, 3, 4, 5]);
  });

  it('should give the same windows whatever the block sizes', () => {
    const whole = new SlidingWindow(2, 8, 3).push([ramp(0, 100), ramp(1000, 100)]);
    const pieces = new SlidingWindow(2, 8, 3);
    const got = [1, 7, 13, 2, 40, 37].flatMap((size, k, all) => {
      const at = all.slice(0, k).reduce((a, b) => a + b, 0);
      return pieces.push([ramp(at, size), ramp(1000 + at, size)]);
    });
    expect(got.map((g) => [g.start, Array.from(g.channels[1])])).toEqual(whole.map((g) => [g.start, Array.from(g.channels[1])]));
    expect(got.length).toBe(Math.floor((100 - 8) / 3) + 1);
  });

  it('should give the same windows from plain arrays (JSON samples) as from Float32Arrays, across buffer growth', () => {
    const typed = new SlidingWindow(2, 300, 100);
    const plain = new SlidingWindow(2, 300, 100);
    const a = [40, 260, 7, 500].flatMap((n, k) => typed.push([ramp(k * 1000, n), ramp(-k * 1000, n)]));
    const b = [40, 260, 7, 500].flatMap((n, k) => plain.push([Array.from(ramp(k * 1000, n)), Array.from(ramp(-k * 1000, n))]));
    expect(a.length).toBeGreaterThan(5);
    expect(b.map((w) => [w.start, Array.from(w.channels[0]), Array.from(w.channels[1])])).toEqual(a.map((w) => [w.start, Array.from(w.channels[0]), Array.from(w.channels[1])]));
  });

  it('should make tumbling windows when hop equals the window', () => {
    const out = new SlidingWindow(1, 5, 5).push([ramp(0, 17)]);
    expect(out.map((o) => o.start)).toEqual([0, 5, 10]);
  });

  it('should start afresh after reset, keeping the stream positions', () => {
    const w = new SlidingWindow(1, 4, 4);
    w.push([ramp(0, 6)]);
    w.reset();
    const out = w.push([ramp(100, 4)]);
    expect(out.map((o) => [o.start, Array.from(o.channels[0])])).toEqual([[6, [100, 101, 102, 103]]]);
  });

  it('should refuse a block with the wrong channel count or ragged channels', () => {
    const w = new SlidingWindow(2, 4, 2);
    expect(() => w.push([ramp(0, 4)])).toThrow(/expected 2 channels, got 1/);
    expect(() => w.push([ramp(0, 4), ramp(0, 3)])).toThrow(/channels differ in length \(4, 3\)/);
  });

  it('should refuse a hop larger than the window and sizes that are not whole numbers', () => {
    expect(() => new SlidingWindow(1, 4, 5)).toThrow(/hop \(5\) cannot exceed the window \(4\)/);
    expect(() => new SlidingWindow(1, 0, 1)).toThrow(/window must be a whole number ≥ 1, got 0/);
  });
});
