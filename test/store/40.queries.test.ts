import { beforeEach, describe, expect, it } from 'vitest';
import type { ResultStore } from '../../runtime/store';
import { alert, deadLetter, openStore, peek, result, windowRecord } from './helpers';

const T0 = 1_699_999_200_000; // a whole number of hours since the epoch
const scoreAt = (i: number): number => (i === 42 ? 0.99 : 0.1 + (i % 10) / 100);

describe('dashboard queries', () => {
  let store: ResultStore;

  beforeEach(async () => {
    store = openStore({ batchMs: 1 });
    // press-1 / vibration-anomaly: one result a second for 100 s, a spike at 42 s.
    const p1 = Array.from({ length: 100 }, (_, i) => result(T0 + i * 1000, { score: scoreAt(i), anomaly: i === 42 || i === 77, label: i === 42 ? 'spike' : null }));
    // press-2: two models, a few results.
    const p2 = [result(T0 + 500, { device: 'press-2', score: 0.5 }), result(T0 + 1500, { device: 'press-2', score: 0.7 })];
    const p2c = [result(T0 + 700, { device: 'press-2', model: 'fault-classifier', score: 0.2, label: 'normal' })];
    await store.commit({ results: [...p1, ...p2, ...p2c] });
  });

  describe('latestPerDevice()', () => {
    it('should give the newest result of each (device, model) pair', () => {
      const latest = store.latestPerDevice();
      expect(latest.map((r) => [r.device, r.model, r.timeMs])).toEqual([
        ['press-1', 'vibration-anomaly', T0 + 99_000],
        ['press-2', 'fault-classifier', T0 + 700],
        ['press-2', 'vibration-anomaly', T0 + 1500],
      ]);
    });

    it('should filter by model', () => {
      expect(store.latestPerDevice({ model: 'fault-classifier' }).map((r) => r.device)).toEqual(['press-2']);
      expect(store.latestPerDevice({ model: 'no-such-model' })).toEqual([]);
    });

    it('should pick the later of two results with the same time', async () => {
      await store.commit({ results: [result(T0 + 200_000, { score: 0.3 }), result(T0 + 200_000, { score: 0.4 })] });
      expect(store.latestPerDevice({ model: 'vibration-anomaly' })[0].score).toBe(0.4);
    });
  });

  describe('series()', () => {
    const base = { device: 'press-1', model: 'vibration-anomaly' };

    it('should return every point, oldest first, when they fit in maxPoints', () => {
      const points = store.series({ ...base, fromMs: T0 + 10_000, toMs: T0 + 19_000, maxPoints: 50 });
      expect(points.map((p) => p.timeMs)).toEqual(Array.from({ length: 10 }, (_, i) => T0 + (10 + i) * 1000)); // both ends included
      expect(points[0]).toEqual({ timeMs: T0 + 10_000, score: 0.1, label: null });
    });

    it('should downsample to at most maxPoints, each bucket shown by its highest score', () => {
      for (const maxPoints of [1, 7, 10, 33, 99]) {
        const points = store.series({ ...base, fromMs: T0, toMs: T0 + 99_000, maxPoints });
        expect(points.length).toBeLessThanOrEqual(maxPoints);
        expect(points.length).toBeGreaterThanOrEqual(Math.min(maxPoints, 100) - 1);
        expect(points.some((p) => p.score === 0.99 && p.label === 'spike' && p.timeMs === T0 + 42_000)).toBe(true);
        expect(points.map((p) => p.timeMs)).toEqual([...points.map((p) => p.timeMs)].sort((a, b) => a - b));
      }
    });

    it('should leave out other devices and models', () => {
      expect(store.series({ device: 'press-2', model: 'vibration-anomaly', fromMs: T0, toMs: T0 + 1e6, maxPoints: 100 }).map((p) => p.score)).toEqual([0.5, 0.7]);
      expect(store.series({ device: 'press-3', model: 'vibration-anomaly', fromMs: T0, toMs: T0 + 1e6, maxPoints: 100 })).toEqual([]);
    });

    it('should refuse a range that ends before it starts, and a maxPoints below 1', () => {
      expect(() => store.series({ ...base, fromMs: T0, toMs: T0 - 1, maxPoints: 10 })).toThrow(`toMs: expected ≥ fromMs (${T0}), got ${T0 - 1}`);
      expect(() => store.series({ ...base, fromMs: T0, toMs: T0, maxPoints: 0 })).toThrow('maxPoints: expected a whole number ≥ 1, got 0');
      expect(() => store.series({ ...base, device: '', fromMs: T0, toMs: T0, maxPoints: 1 })).toThrow('device: expected a non-empty string');
    });
  });

  describe('aggregates()', () => {
    it('should count, average and max scores per epoch-aligned bucket, device and model', () => {
      const rows = store.aggregates({ fromMs: T0, toMs: T0 + 99_000, bucketMs: 60_000, device: 'press-1' });
      expect(rows.map((r) => [r.bucketStartMs, r.count, r.anomalies, r.maxScore])).toEqual([
        [T0, 60, 1, 0.99],
        [T0 + 60_000, 40, 1, 0.19],
      ]);
      const mean = (from: number, to: number): number => Array.from({ length: to - from }, (_, i) => scoreAt(from + i)).reduce((a, b) => a + b) / (to - from);
      expect(rows[0].meanScore).toBeCloseTo(mean(0, 60), 10);
      expect(rows[1].meanScore).toBeCloseTo(mean(60, 100), 10);
    });

    it('should cover every device and model when not filtered, ordered by bucket, device, model', () => {
      const rows = store.aggregates({ fromMs: T0, toMs: T0 + 1999, bucketMs: 1000 });
      expect(rows.map((r) => [r.bucketStartMs - T0, r.device, r.model, r.count])).toEqual([
        [0, 'press-1', 'vibration-anomaly', 1],
        [0, 'press-2', 'fault-classifier', 1],
        [0, 'press-2', 'vibration-anomaly', 1],
        [1000, 'press-1', 'vibration-anomaly', 1],
        [1000, 'press-2', 'vibration-anomaly', 1],
      ]);
    });

    it('should filter by model', () => {
      const rows = store.aggregates({ fromMs: T0, toMs: T0 + 1e6, bucketMs: 3_600_000, model: 'fault-classifier' });
      expect(rows).toEqual([{ bucketStartMs: Math.floor(T0 / 3_600_000) * 3_600_000, device: 'press-2', model: 'fault-classifier', count: 1, meanScore: 0.2, maxScore: 0.2, anomalies: 0 }]);
    });

    it('should refuse a bucket that is not a whole number of ms ≥ 1', () => {
      expect(() => store.aggregates({ fromMs: T0, toMs: T0 + 1, bucketMs: 0.5 })).toThrow('bucketMs: expected a whole number ≥ 1, got 0.5');
    });
  });

  describe('alerts()', () => {
    beforeEach(async () => {
      await store.commit({ alerts: [alert(T0 + 1000), alert(T0 + 2000, { device: 'press-2' }), alert(T0 + 3000), alert(T0 + 4000, { kind: 'drift' })] });
    });

    it('should list alerts newest first', () => {
      expect(store.alerts().map((a) => a.timeMs - T0)).toEqual([4000, 3000, 2000, 1000]);
    });

    it('should filter by time range and device, and stop at the limit', () => {
      expect(store.alerts({ fromMs: T0 + 2000, toMs: T0 + 3000 }).map((a) => a.timeMs - T0)).toEqual([3000, 2000]);
      expect(store.alerts({ device: 'press-1' }).map((a) => a.timeMs - T0)).toEqual([4000, 3000, 1000]);
      expect(store.alerts({ device: 'press-1', limit: 1 })[0]).toMatchObject({ kind: 'drift', timeMs: T0 + 4000 });
    });
  });

  describe('deadLetters()', () => {
    it('should list dead letters newest first, since a time, up to a limit', async () => {
      await store.commit({ deadLetters: [deadLetter(T0 + 1), deadLetter(T0 + 2, { reason: 'bad block size' }), deadLetter(T0 + 3)] });
      expect(store.deadLetters().map((l) => l.timeMs - T0)).toEqual([3, 2, 1]);
      expect(store.deadLetters({ sinceMs: T0 + 2 }).map((l) => l.timeMs - T0)).toEqual([3, 2]);
      expect(store.deadLetters({ limit: 1, sinceMs: T0 + 2 }).map((l) => l.timeMs - T0)).toEqual([3]);
    });
  });

  describe('windows()', () => {
    it('should give a model\'s windows newest first, with their features, filtered by device and time', async () => {
      await store.commit({
        windows: [
          windowRecord(T0 + 1, { features: new Float32Array([1, 1]), dims: [2] }),
          windowRecord(T0 + 2, { device: 'press-2', features: new Float32Array([2, 2]), dims: [2] }),
          windowRecord(T0 + 3, { features: new Float32Array([3, 3]), dims: [1, 2] }),
          windowRecord(T0 + 4, { model: 'fault-classifier' }),
        ],
      });
      const all = store.windows('vibration-anomaly');
      expect(all.map((w) => [w.timeMs - T0, w.device, [...w.features], w.dims])).toEqual([
        [3, 'press-1', [3, 3], [1, 2]],
        [2, 'press-2', [2, 2], [2]],
        [1, 'press-1', [1, 1], [2]],
      ]);
      expect(all[0].features).toBeInstanceOf(Float32Array);
      expect(store.windows('vibration-anomaly', { device: 'press-1' }).map((w) => w.timeMs - T0)).toEqual([3, 1]);
      expect(store.windows('vibration-anomaly', { sinceMs: T0 + 2 }).map((w) => w.timeMs - T0)).toEqual([3, 2]);
      expect(store.windows('vibration-anomaly', { limit: 1 }).map((w) => w.timeMs - T0)).toEqual([3]);
      expect(() => store.windows('')).toThrow('model: expected a non-empty string');
    });
  });

  describe('counts()', () => {
    it('should match the tables, before and after writes, acknowledgements and retention', async () => {
      const tables = (): Record<string, number> =>
        peek(store.path, (db) => {
          const count = (t: string): number => db.prepare(`SELECT COUNT(*) FROM ${t}`).pluck().get() as number;
          return { results: count('results'), alerts: count('alerts'), deadLetters: count('dead_letters'), outbox: count('outbox'), inbound: count('inbound'), windows: count('windows') };
        });
      expect(store.counts()).toEqual(tables());
      await store.commit({ inbound: [{ topic: 't', key: 'a', receivedMs: T0 }], alerts: [alert(T0)], deadLetters: [deadLetter(T0)], outbox: [{ topic: 't', payload: 'p', qos: 1 }], windows: [windowRecord(T0)] });
      expect(store.counts()).toEqual({ results: 103, alerts: 1, deadLetters: 1, outbox: 1, inbound: 1, windows: 1 });
      expect(store.counts()).toEqual(tables());
      store.outboxAck(store.outboxPeek(1)[0].id);
      await store.flush();
      expect(store.counts()).toEqual(tables());
    });
  });
});
