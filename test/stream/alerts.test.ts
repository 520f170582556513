import { describe, expect, it } from 'vitest';
import { AlertTracker } from '../../runtime/stream/alerts';
import { thrown } from '../helpers/errors';

function expectEdgeInferError(fn: () => unknown, code: string, message: RegExp): void {
  const err = thrown(fn);
  expect(err.code).toBe(code);
  expect(err.message).toMatch(message);
}

/** Feeds verdicts one second apart from `startS`; returns the changes with their window index. */
function feed(t: AlertTracker, device: string, verdicts: string, startS = 0): Array<[number, string, number]> {
  const out: Array<[number, string, number]> = [];
  [...verdicts].forEach((v, i) => {
    const c = t.observe(device, v === 'A', (startS + i) * 1000);
    if (c) out.push([i, c.kind, c.windows]);
  });
  return out;
}

describe('AlertTracker', () => {
  it('should raise once after `consecutive` anomalous windows in a row, not on each window', () => {
    const t = new AlertTracker({ consecutive: 3, cooldownS: 300 });
    expect(feed(t, 'pump-b', 'AANAAAAAAAAA')).toEqual([[5, 'raised', 3]]);
    expect(t.raised('pump-b')).toBe(true);
  });

  it('should remind while still anomalous only once the cooldown has passed', () => {
    const t = new AlertTracker({ consecutive: 2, cooldownS: 5 });
    expect(feed(t, 'd', 'A'.repeat(14))).toEqual([[1, 'raised', 2], [6, 'repeated', 7], [11, 'repeated', 12]]);
  });

  it('should clear after clearAfter normal windows in a row (default: consecutive), a single normal one does not', () => {
    const t = new AlertTracker({ consecutive: 3, cooldownS: 300 });
    expect(feed(t, 'd', 'AAANNANNN')).toEqual([[2, 'raised', 3], [8, 'cleared', 3]]);
    expect(t.raised('d')).toBe(false);
    const quick = new AlertTracker({ consecutive: 3, cooldownS: 300, clearAfter: 1 });
    expect(feed(quick, 'd', 'AAAN')).toEqual([[2, 'raised', 3], [3, 'cleared', 1]]);
  });

  it('should hold a new alert after a clear until the cooldown of the last one has passed', () => {
    const t = new AlertTracker({ consecutive: 1, cooldownS: 10, clearAfter: 1 });
    // Raised at 0 s, cleared at 1 s, anomalous again from 2 s: the next alert waits until 10 s.
    expect(feed(t, 'd', 'ANAAAAAAAAAA')).toEqual([[0, 'raised', 1], [1, 'cleared', 1], [10, 'raised', 9]]);
  });

  it('should start a device afresh when its clock steps back further than the gap bound: the windows before are not in a row with it', () => {
    const t = new AlertTracker({ consecutive: 2, cooldownS: 3600, maxGapS: 60 });
    expect(feed(t, 'd', 'AA', 1000)).toEqual([[1, 'raised', 2]]);
    // An hour back: the raised state and its cooldown stay behind; two anomalous windows raise anew.
    expect(feed(t, 'd', 'AA', 1000 - 3600)).toEqual([[1, 'raised', 2]]);
    expect(t.gaps).toBe(1);
  });

  it('should not run a cooldown backwards on a window a little older than the last (overlapping windows of readings dated at arrival)', () => {
    const t = new AlertTracker({ consecutive: 1, cooldownS: 10 });
    expect(t.observe('d', true, 100_000)?.kind).toBe('raised');
    expect(t.observe('d', true, 99_000)).toBeUndefined();
    expect(t.observe('d', true, 100_500)).toBeUndefined();
    // The cooldown counts from the alert's time, 100 s: at 110 s it has passed, not before.
    expect(t.observe('d', true, 109_900)).toBeUndefined();
    expect(t.observe('d', true, 110_000)).toEqual({ kind: 'repeated', device: 'd', timeMs: 110_000, windows: 5 });
  });

  it('should carry no alert state across a gap in the data longer than maxGapS', () => {
    const t = new AlertTracker({ consecutive: 3, cooldownS: 300, maxGapS: 60 });
    // Two anomalous windows, a 2-minute gap, then one more: not three in a row.
    expect(feed(t, 'd', 'AA', 0)).toEqual([]);
    expect(feed(t, 'd', 'A', 122)).toEqual([]);
    expect(feed(t, 'd', 'AA', 123)).toEqual([[1, 'raised', 3]]);
    // Raised, then silent for 10 minutes: back anomalous, it is raised again (not a reminder held by the old cooldown).
    expect(feed(t, 'd', 'AAA', 725)).toEqual([[2, 'raised', 3]]);
    // Within the bound, the windows are in a row and the cooldown holds.
    expect(feed(t, 'd', 'AAAA', 780)).toEqual([]);
  });

  it('should hand over the devices whose state changed, with their state (null when none is held), once', () => {
    const t = new AlertTracker({ consecutive: 2, cooldownS: 0, clearAfter: 1 });
    t.observe('a', true, 1000);
    t.observe('b', false, 1000);
    expect(t.takeChanged()).toEqual([['a', { raised: false, anomalous: 1, normal: 0, lastAlertMs: null, lastMs: 1000 }]]);
    expect(t.takeChanged()).toEqual([]);
    t.observe('a', false, 2000);
    t.forget('never-seen');
    expect(t.takeChanged()).toEqual([['a', null]]);
  });

  it('should resume from the states the log kept, and refuse (naming them) states it did not write', () => {
    const t = new AlertTracker({ consecutive: 3, cooldownS: 60 });
    feed(t, 'a', 'AAA', 0);
    feed(t, 'b', 'AA', 0);
    const kept = new Map<string, unknown>(t.takeChanged());
    kept.set('c', { raised: 'yes' });
    kept.set('d', null);
    const resumed = new AlertTracker({ consecutive: 3, cooldownS: 60 });
    expect(resumed.restore(kept)).toEqual(['c', 'd']);
    // a is raised and within its cooldown: no second alert; b has two in a row: the third raises it.
    expect(feed(resumed, 'a', 'A', 3)).toEqual([]);
    expect(feed(resumed, 'b', 'A', 2)).toEqual([[0, 'raised', 3]]);
    expect(resumed.raised('a')).toBe(true);
  });

  it('should keep each device to itself', () => {
    const t = new AlertTracker({ consecutive: 2, cooldownS: 60 });
    t.observe('a', true, 0);
    expect(t.observe('b', true, 0)).toBeUndefined();
    expect(t.observe('a', true, 1000)?.kind).toBe('raised');
    expect(t.raised('b')).toBe(false);
  });

  it('should keep no state for devices that stay normal, and drop a streak that ends before an alert', () => {
    const t = new AlertTracker({ consecutive: 3, cooldownS: 300 });
    for (let i = 0; i < 10_000; i++) expect(t.observe(`dev-${i}`, false, i)).toBeUndefined();
    expect(t.size).toBe(0);
    t.observe('x', true, 0);
    expect(t.size).toBe(1);
    t.observe('x', false, 1000);
    expect(t.size).toBe(0);
  });

  it('should keep a cleared device only while its cooldown runs, and forget a device on request', () => {
    const t = new AlertTracker({ consecutive: 1, cooldownS: 10, clearAfter: 1 });
    feed(t, 'd', 'AN');
    expect(t.size).toBe(1);
    t.observe('d', false, 11_000);
    expect(t.size).toBe(0);
    feed(t, 'e', 'AAA');
    t.forget('e');
    expect(t.raised('e')).toBe(false);
    expect(t.size).toBe(0);
    // Forgotten means a fresh start: a new run must reach `consecutive` again.
    expect(t.observe('e', true, 3000)?.kind).toBe('raised');
  });

  it('should refuse a bad policy with an error naming the field and the value', () => {
    expectEdgeInferError(() => new AlertTracker({ consecutive: 0, cooldownS: 1 }), 'E_ARGUMENT', /consecutive.*≥ 1.*got 0/);
    expectEdgeInferError(() => new AlertTracker({ consecutive: 1.5, cooldownS: 1 }), 'E_ARGUMENT', /consecutive.*got 1\.5/);
    expectEdgeInferError(() => new AlertTracker({ consecutive: 2, cooldownS: -1 }), 'E_ARGUMENT', /cooldownS.*got -1/);
    expectEdgeInferError(() => new AlertTracker({ consecutive: 2, cooldownS: Infinity }), 'E_ARGUMENT', /cooldownS.*got Infinity/);
    expectEdgeInferError(() => new AlertTracker({ consecutive: 2, cooldownS: 1, clearAfter: 0 }), 'E_ARGUMENT', /clearAfter.*got 0/);
    expectEdgeInferError(() => new AlertTracker({ consecutive: 2, cooldownS: 1, maxGapS: 0 }), 'E_ARGUMENT', /maxGapS.*got 0/);
    expectEdgeInferError(() => new AlertTracker({ consecutive: 2, cooldownS: 1, maxGapS: Number.NaN }), 'E_ARGUMENT', /maxGapS.*got NaN/);
    expectEdgeInferError(() => new AlertTracker(null as never), 'E_ARGUMENT', /policy.*null/);
  });

  it('should refuse a window time that is not a finite number, naming the device', () => {
    const t = new AlertTracker({ consecutive: 1, cooldownS: 0 });
    expectEdgeInferError(() => t.observe('pump-a', true, Number.NaN), 'E_ARGUMENT', /pump-a.*timeMs.*NaN/);
  });
});
