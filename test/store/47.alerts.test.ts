import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { isEdgeInferError } from '../../runtime/errors';
import { type AlertRecord, type ResultStore, isStoreError } from '../../runtime/store';
import { alert, connectionOf, openStore, result, sleep } from './helpers';

const T0 = 1_700_000_000_000;
const VIB = 'vibration-anomaly';
const FAULT = 'fault-classifier';

/** Commits alerts (with a result per pair, as the pipeline logs them) and returns their ids in order. */
async function logAlerts(store: ResultStore, alerts: AlertRecord[]): Promise<number[]> {
  await store.commit({ results: alerts.map((a) => result(a.timeMs, { device: a.device, model: a.model })), alerts });
  await store.flush();
  const ids = connectionOf(store).prepare('SELECT id FROM alerts ORDER BY id DESC LIMIT ?').pluck().all(alerts.length) as number[];
  return ids.reverse();
}

/** The error a call throws. */
function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
}

describe('alerts({ active: true })', () => {
  it('should give per (device, model) its latest alert unless it is a clear, newest first', async () => {
    const store = openStore({ batchMs: 1 });
    const [, reminder, , , fault] = await logAlerts(store, [
      alert(T0 + 1000, { kind: 'anomaly' }),
      alert(T0 + 2000, { kind: 'reminder' }),
      alert(T0 + 1500, { device: 'press-2', kind: 'anomaly' }),
      alert(T0 + 2500, { device: 'press-2', kind: 'clear' }),
      alert(T0 + 3000, { model: FAULT, kind: 'fault', label: 'bearing' }),
    ]);
    const active = store.alerts({ active: true });
    expect(active.map((a) => [a.id, a.device, a.model, a.kind])).toEqual([[fault, 'press-1', FAULT, 'fault'], [reminder, 'press-1', VIB, 'reminder']]);
    expect(store.alerts({ active: true, limit: 1 }).map((a) => a.id)).toEqual([fault]);
    expect(store.alerts({ active: true, device: 'press-2' })).toEqual([]);
    expect(store.alerts({ active: false }).length).toBe(5);
  });

  it('should take the later-committed alert of two at the same time, and refuse an active that is not a boolean', async () => {
    const store = openStore({ batchMs: 1 });
    const [, second] = await logAlerts(store, [alert(T0, { kind: 'clear' }), alert(T0, { kind: 'anomaly' })]);
    expect(store.alerts({ active: true }).map((a) => a.id)).toEqual([second]);
    expect(() => store.alerts({ active: 'yes' as unknown as boolean })).toThrow('active: expected true or false, got yes');
  });

  it('should reach each pair\'s latest alert through the (device, time_ms) index, not a scan', () => {
    const store = openStore();
    const plan = connectionOf(store).prepare(`EXPLAIN QUERY PLAN SELECT a.* FROM result_streams s
        JOIN alerts a ON a.id = (SELECT id FROM alerts x WHERE x.device = s.device AND x.model = s.model ORDER BY x.time_ms DESC, x.id DESC LIMIT 1)
        WHERE a.kind <> 'clear' AND a.cleared_ms IS NULL ORDER BY a.time_ms DESC, a.id DESC LIMIT 100`).all() as Array<{ detail: string }>;
    const details = plan.map((p) => p.detail).join('\n');
    expect(details).toMatch(/SEARCH x USING INDEX alerts_device_time \(device=\?\)/);
    expect(details).not.toMatch(/SCAN (a|x)\b(?! USING)/);
  });
});

describe('acknowledgeAlert() and clearAlert()', () => {
  it('should acknowledge the alert and the earlier unacknowledged ones of its episode, keeping the first who and when', async () => {
    const store = openStore({ batchMs: 1 });
    const [oldRaise, oldClear, raise, reminder1, reminder2, other] = await logAlerts(store, [
      alert(T0 + 1000, { kind: 'anomaly' }),
      alert(T0 + 2000, { kind: 'clear' }),
      alert(T0 + 3000, { kind: 'anomaly' }),
      alert(T0 + 4000, { kind: 'reminder' }),
      alert(T0 + 5000, { kind: 'reminder' }),
      alert(T0 + 3500, { model: FAULT, kind: 'fault' }),
    ]);
    const a = store.acknowledgeAlert(reminder1, 'anna', T0 + 10_000);
    expect(a).toMatchObject({ id: reminder1, kind: 'reminder', ackedBy: 'anna', ackedMs: T0 + 10_000, clearedBy: null, clearedMs: null });
    const marks = () => new Map(store.alerts().map((x) => [x.id, x.ackedBy]));
    // Its episode up to it: the raise and this reminder; not the later reminder, the earlier episode or another model.
    expect(marks()).toEqual(new Map([[reminder2, null], [reminder1, 'anna'], [other, null], [raise, 'anna'], [oldClear, null], [oldRaise, null]]));
    // Acknowledged alerts stay active.
    expect(store.alerts({ active: true }).map((x) => [x.id, x.ackedBy])).toEqual([[reminder2, null], [other, null]]);
    // A second acknowledgement keeps the first; the later reminder is now acknowledged by the second.
    expect(store.acknowledgeAlert(reminder1, 'bert', T0 + 20_000)).toMatchObject({ ackedBy: 'anna', ackedMs: T0 + 10_000 });
    expect(store.acknowledgeAlert(reminder2, 'bert', T0 + 20_000)).toMatchObject({ ackedBy: 'bert', ackedMs: T0 + 20_000 });
    expect(store.alerts().find((x) => x.id === raise)).toMatchObject({ ackedBy: 'anna', ackedMs: T0 + 10_000 });
  });

  it('should clear the alert and its episode from the active list until the model raises or reminds again', async () => {
    const store = openStore({ batchMs: 1 });
    const [raise, reminder, other] = await logAlerts(store, [alert(T0 + 1000, { kind: 'anomaly' }), alert(T0 + 2000, { kind: 'reminder' }), alert(T0 + 1500, { model: FAULT, kind: 'fault' })]);
    const before = Date.now();
    const c = store.clearAlert(reminder, 'carl');
    expect(c).toMatchObject({ id: reminder, clearedBy: 'carl', ackedBy: null });
    expect(c.clearedMs).toBeGreaterThanOrEqual(before);
    expect(store.alerts().find((x) => x.id === raise)).toMatchObject({ clearedBy: 'carl', clearedMs: c.clearedMs });
    expect(store.alerts({ active: true }).map((x) => x.id)).toEqual([other]);
    // Clearing again keeps the first who and when.
    expect(store.clearAlert(reminder, 'dora')).toMatchObject({ clearedBy: 'carl', clearedMs: c.clearedMs });
    const [again] = await logAlerts(store, [alert(T0 + 3000, { kind: 'reminder' })]);
    expect(store.alerts({ active: true }).map((x) => x.id)).toEqual([again, other]);
  });

  it('should refuse an unknown id with E_NOT_FOUND and bad arguments with E_ARGUMENT naming them', async () => {
    const store = openStore({ batchMs: 1 });
    const [id] = await logAlerts(store, [alert(T0)]);
    for (const mark of [store.acknowledgeAlert.bind(store), store.clearAlert.bind(store)]) {
      const missing = thrown(() => mark(id + 1000, 'anna'));
      expect(isEdgeInferError(missing, 'E_NOT_FOUND')).toBe(true);
      expect(missing.message).toBe(`alert ${id + 1000}: no such alert in the log`);
      expect(() => mark(0, 'anna')).toThrow('id: expected an alert id (a whole number ≥ 1), got 0');
      expect(() => mark(1.5, 'anna')).toThrow('id: expected an alert id (a whole number ≥ 1), got 1.5');
      expect(() => mark(id, '')).toThrow("user: expected a non-empty string naming who, got ''");
      expect(() => mark(id, '   ')).toThrow("user: expected a non-empty string naming who, got '   '");
      expect(() => mark(id, undefined as unknown as string)).toThrow('user: expected a non-empty string naming who, got undefined');
      expect(() => mark(id, 'x'.repeat(129))).toThrow('user: expected at most 128 characters, got 129');
      expect(() => mark(id, 'anna', Number.NaN)).toThrow('atMs: expected a time in ms since the epoch, got NaN');
      expect(isEdgeInferError(thrown(() => mark(id, '')), 'E_ARGUMENT')).toBe(true);
    }
    expect(store.acknowledgeAlert(id, 'x'.repeat(128)).ackedBy).toHaveLength(128);
    await store.close();
    expect(isStoreError(thrown(() => store.acknowledgeAlert(id, 'anna')), 'E_STORE_CLOSED')).toBe(true);
  });

  it('should keep its marks while commits flow, and leave the alerts committed after them unmarked', async () => {
    const store = openStore({ batchRows: 50, batchMs: 2 });
    const pending: Array<Promise<void>> = [];
    const acked: number[] = [];
    let t = T0;
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 30; i++) {
        t += 100;
        pending.push(store.commit({ results: [result(t)], alerts: i === 0 ? [alert(t, { kind: round % 2 ? 'reminder' : 'anomaly' })] : undefined }));
      }
      await sleep(1);
      // The newest committed alert, acknowledged between batches (some still queued).
      const newest = store.alerts({ limit: 1 })[0];
      if (newest && !acked.includes(newest.id)) {
        expect(store.acknowledgeAlert(newest.id, `op-${round}`).ackedBy).toMatch(/^op-/);
        acked.push(newest.id);
      }
    }
    await store.flush();
    await Promise.all(pending);
    expect(acked.length).toBeGreaterThan(5);
    const all = store.alerts({ limit: 1000 });
    expect(all).toHaveLength(40);
    const newestAcked = Math.max(...acked);
    for (const a of all) {
      if (a.id <= newestAcked) expect(a.ackedBy).toMatch(/^op-/);
      else expect(a.ackedBy).toBeNull();
    }
    expect(store.counts().results).toBe(1200);
  });

  it('should throw E_STORE_WRITE while another connection holds the write lock, and lose nothing of the waiting batch', async () => {
    const problems: Error[] = [];
    const store = openStore({ batchMs: 1, onError: (err) => problems.push(err) });
    const [id] = await logAlerts(store, [alert(T0)]);
    connectionOf(store).pragma('busy_timeout = 50');
    const other = new Database(store.path, { timeout: 0 });
    try {
      other.prepare('BEGIN IMMEDIATE').run();
      const queued = store.commit({ results: [result(T0 + 1000)], alerts: [alert(T0 + 1000, { kind: 'reminder' })] });
      const err = thrown(() => store.acknowledgeAlert(id, 'anna'));
      expect(isStoreError(err, 'E_STORE_WRITE')).toBe(true);
      expect(err.message).toMatch(new RegExp(`^alert ${id}: the acknowledgement by anna was not written: database is locked`));
      await sleep(120); // the writer has failed at least once and waits to retry
      expect(store.stats.retries).toBeGreaterThan(0);
      other.prepare('ROLLBACK').run();
      expect(store.acknowledgeAlert(id, 'anna')).toMatchObject({ ackedBy: 'anna' });
      await queued;
      expect(store.alerts().map((a) => [a.kind, a.ackedBy])).toEqual([['reminder', null], ['threshold', 'anna']]);
      expect(problems.map((p) => p.message)).toEqual([expect.stringMatching(/could not commit 1 unit\(s\): database is locked/), expect.stringMatching(/commits again/)]);
    } finally {
      other.close();
    }
  });
});
