import { describe, expect, it } from 'vitest';
import { LOW_WATER, type ResultStore, WAL_SIZE_LIMIT } from '../../runtime/store';
import { alert, connectionOf, dbPath, deadLetter, fileSize, openStore, result, sleep, windowRecord } from './helpers';

const DAY = 86_400_000;
const MiB = 1024 * 1024;

/** A window of 4096 floats: 16 KiB of features. */
const bigWindow = (timeMs: number) => windowRecord(timeMs, { features: new Float32Array(4096).fill(timeMs % 1000), dims: [4096] });

describe('retention by age', () => {
  it('should delete rows older than maxAgeDays from every table but the outbox, and count them', async () => {
    const now = Date.now();
    const old = now - 10 * DAY;
    const recent = now - DAY;
    const store = openStore({ batchMs: 1, retention: { maxAgeDays: 7, everyMs: 0 } });
    await store.commit({
      inbound: [{ topic: 't', key: 'old', receivedMs: old }, { topic: 't', key: 'new', receivedMs: recent }],
      results: [result(old), result(old + 1), result(recent), result(old, { device: 'press-9' })],
      alerts: [alert(old), alert(recent)],
      deadLetters: [deadLetter(old), deadLetter(recent)],
      windows: [windowRecord(old), windowRecord(recent)],
      outbox: [{ topic: 'edge/out', payload: 'kept', qos: 1 }],
    });
    expect(store.applyRetention()).toEqual({ deleted: 3 + 1 + 1 + 1 + 1 });
    expect(store.counts()).toEqual({ results: 1, alerts: 1, deadLetters: 1, windows: 1, inbound: 1, outbox: 1 });
    expect(store.seen('old')).toBe(false);
    expect(store.seen('new')).toBe(true);
    // press-9 had only old results: it is gone from the dashboard's device list too.
    expect(store.latestPerDevice().map((r) => r.device)).toEqual(['press-1']);
    expect(store.applyRetention()).toEqual({ deleted: 0 });
  });

  it('should keep results and alerts measured long ago (data time) until they have also been in the log that long', async () => {
    const now = Date.now();
    const measured = now - 10 * DAY;
    const store = openStore({ batchMs: 1, retention: { maxAgeDays: 7, everyMs: 0 } });
    // A backlog of ten days ago, logged just now; and one logged ten days ago.
    await store.commit({ results: [result(measured, { processedMs: now }), result(measured, { device: 'press-2' })], alerts: [alert(measured, { processedMs: now }), alert(measured)] });
    expect(store.applyRetention()).toEqual({ deleted: 2 });
    expect(store.latestPerDevice().map((r) => [r.device, r.timeMs])).toEqual([['press-1', measured]]);
    expect(store.alerts().map((a) => a.processedMs)).toEqual([now]);
  });

  it('should age inbound keys by inboundMaxAgeS (the broker session), apart from the other rows', async () => {
    const now = Date.now();
    const store = openStore({ batchMs: 1, retention: { maxAgeDays: 30, inboundMaxAgeS: 3600, everyMs: 0 } });
    await store.commit({
      inbound: [{ topic: 't', key: 'two-hours', receivedMs: now - 2 * 3_600_000 }, { topic: 't', key: 'a-minute', receivedMs: now - 60_000 }],
      results: [result(now - 2 * DAY), result(now - 40 * DAY)],
    });
    expect(store.applyRetention()).toEqual({ deleted: 2 });
    expect(store.seen('two-hours')).toBe(false);
    expect(store.seen('a-minute')).toBe(true);
    // Results follow maxAgeDays: the one of two days ago stays.
    expect(store.counts()).toMatchObject({ inbound: 1, results: 1 });
  });

  it('should age inbound keys by inboundMaxAgeS alone when no other retention is set, on its timer', async () => {
    const store = openStore({ batchMs: 1, retention: { inboundMaxAgeS: 1, everyMs: 20 } });
    await store.commit({ inbound: [{ topic: 't', key: 'old', receivedMs: Date.now() - 5000 }], results: [result(0)] });
    const deadline = Date.now() + 3000;
    while (store.counts().inbound > 0 && Date.now() < deadline) await sleep(10);
    expect(store.counts()).toMatchObject({ inbound: 0, results: 1 });
  });

  it('should refuse an inboundMaxAgeS that is not a positive number', () => {
    expect(() => openStore({ retention: { inboundMaxAgeS: 0 } })).toThrow(/retention\.inboundMaxAgeS: expected a number > 0, got 0/);
  });

  it('should run on its timer without being asked', async () => {
    const store = openStore({ batchMs: 1, retention: { maxAgeDays: 1, everyMs: 20 } });
    await store.commit({ results: [result(Date.now() - 2 * DAY), result(Date.now())] });
    const deadline = Date.now() + 3000;
    while (store.counts().results > 1 && Date.now() < deadline) await sleep(10);
    expect(store.counts().results).toBe(1);
    // The timer must not keep the process alive.
    expect((store as unknown as { retentionTimer: NodeJS.Timeout }).retentionTimer.hasRef()).toBe(false);
  });

  it('should hand a failing background run to onError and keep going', async () => {
    const errors: Error[] = [];
    const store = openStore({ batchMs: 1, retention: { maxAgeDays: 1, everyMs: 10 }, onError: (err) => errors.push(err) });
    connectionOf(store).exec('DROP TABLE alerts'); // sabotage: retention's delete on alerts now fails
    await sleep(60);
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(errors[0].message).toMatch(/alerts/);
  });

  it('should leave everything when no retention is set, and still truncate the WAL', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 1 });
    await store.commit({ results: [result(0), result(1)] });
    expect(fileSize(`${file}-wal`)).toBeGreaterThan(0);
    expect(store.applyRetention()).toEqual({ deleted: 0 });
    expect(store.counts().results).toBe(2);
    expect(fileSize(`${file}-wal`)).toBe(0);
  });
});

describe('retention by size', () => {
  const maxBytes = MiB;

  async function fill(store: ResultStore, from: number, windows: number): Promise<void> {
    const units = [];
    for (let t = from; t < from + windows; t++) units.push(store.commit({ windows: [bigWindow(t)], results: [result(t)], alerts: [alert(t)] }));
    await Promise.all(units);
  }

  it('should delete the oldest rows first until the file is under maxBytes, and truncate the WAL', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 1, retention: { maxBytes, everyMs: 0 } });
    await fill(store, 1000, 250); // about 4 MiB of windows
    expect(fileSize(file) + fileSize(`${file}-wal`)).toBeGreaterThan(3 * MiB);

    const { deleted } = store.applyRetention();
    expect(deleted).toBeGreaterThan(0);
    expect(store.usedBytes()).toBeLessThanOrEqual(LOW_WATER * maxBytes);
    expect(fileSize(file)).toBeLessThanOrEqual(maxBytes);
    expect(fileSize(`${file}-wal`)).toBe(0);

    // What is left is the newest stretch, across tables.
    const kept = store.windows('vibration-anomaly', { limit: 10_000 }).map((w) => w.timeMs);
    expect(kept[0]).toBe(1249);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 1249 - i));
    const oldestKept = kept[kept.length - 1];
    expect(store.alerts({ limit: 10_000 }).every((a) => a.timeMs >= oldestKept - 1)).toBe(true);
    expect(store.series({ device: 'press-1', model: 'vibration-anomaly', fromMs: 0, toMs: 1e9, maxPoints: 1e6 })[0].timeMs).toBeGreaterThanOrEqual(oldestKept - 1);
    expect(store.counts().windows).toBe(kept.length);
  });

  it('should keep committing and keep the file and WAL bounded when the database sits at its bound', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 1, retention: { maxBytes, everyMs: 0 } });
    let t = 0;
    for (let round = 0; round < 12; round++) {
      await fill(store, t, 40); // about 640 KiB a round
      t += 40;
      store.applyRetention();
      expect(fileSize(file)).toBeLessThanOrEqual(maxBytes);
      expect(fileSize(`${file}-wal`)).toBe(0);
      expect(store.windows('vibration-anomaly', { limit: 1 })[0].timeMs).toBe(t - 1);
    }
    expect(store.stats.failedUnits).toBe(0);
  });

  it('should stop when only the outbox is left', async () => {
    const store = openStore({ batchMs: 1, retention: { maxBytes: 256 * 1024, everyMs: 0 } });
    await store.commit({ outbox: Array.from({ length: 40 }, () => ({ topic: 'edge/big', payload: new Uint8Array(16 * 1024), qos: 1 as const })), results: [result(1)] });
    expect(store.applyRetention()).toEqual({ deleted: 1 });
    expect(store.outboxDepth()).toBe(40);
  });
});

describe('the WAL', () => {
  it('should stay bounded while commits run, without any retention', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 1, batchRows: 200 });
    let largest = 0;
    for (let round = 0; round < 12; round++) {
      const units = [];
      for (let i = 0; i < 200; i++) units.push(store.commit({ windows: [bigWindow(round * 200 + i)] }));
      await Promise.all(units); // 200 × 16 KiB = 3.2 MiB a round, 38 MiB in all
      largest = Math.max(largest, fileSize(`${file}-wal`));
    }
    expect(fileSize(file)).toBeGreaterThan(30 * MiB);
    expect(largest).toBeLessThanOrEqual(WAL_SIZE_LIMIT);
  });
});
