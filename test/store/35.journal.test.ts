import { describe, expect, it } from 'vitest';
import { ResultStore } from '../../runtime/store';
import { connectionOf, dbPath, openStore, peek } from './helpers';

const entry = (key: string, pipeline = 'pumps') => ({ pipeline, key, topic: `plant/pump-1/vibration`, payload: new TextEncoder().encode(`payload ${key}`), receivedMs: 1000 });

describe('the inbound journal', () => {
  it('should journal new messages and say which keys were already pending', () => {
    const store = openStore();
    expect(store.journal([entry('a'), entry('b')])).toEqual([true, true]);
    expect(store.journal([entry('b'), entry('c')])).toEqual([false, true]);
    expect(store.journaled('pumps', 'b')).toBe(true);
    expect(store.journaled('fans', 'b')).toBe(false);
    expect(store.journalDepth()).toBe(3);
  });

  it('should keep a pipeline\'s pending messages in arrival order, with their payloads', () => {
    const store = openStore();
    store.journal([entry('x'), entry('y', 'fans'), entry('z')]);
    const rows = store.pendingJournal('pumps');
    expect(rows.map((r) => r.key)).toEqual(['x', 'z']);
    expect(new TextDecoder().decode(rows[1].payload)).toBe('payload z');
    expect(store.pendingJournal('pumps', rows[0].id).map((r) => r.key)).toEqual(['z']);
  });

  it('should drop consumed messages and move cursors forward only, in the commit that logs their windows', async () => {
    const store = openStore();
    store.journal([entry('m1'), entry('m2')]);
    await store.commit({ consumed: [{ pipeline: 'pumps', key: 'm1' }], cursors: [{ pipeline: 'pumps', device: 'pump-1', lastWindowStartMs: 5000 }] });
    await store.commit({ cursors: [{ pipeline: 'pumps', device: 'pump-1', lastWindowStartMs: 4000 }] });
    expect(store.pendingJournal('pumps').map((r) => r.key)).toEqual(['m2']);
    expect(store.cursors('pumps')).toEqual(new Map([['pump-1', 5000]]));
  });

  it('should keep the alert state of each device with the commit that changed it, the last written winning, and drop it when null', async () => {
    const file = dbPath();
    const first = openStore({ path: file, batchMs: 1 });
    await first.commit({ alertStates: [{ pipeline: 'pumps', device: 'pump-1', state: { raised: true, n: 1 } }, { pipeline: 'pumps', device: 'pump-2', state: { raised: false } }] });
    await first.commit({ alertStates: [{ pipeline: 'pumps', device: 'pump-1', state: { raised: true, n: 2 } }, { pipeline: 'pumps', device: 'pump-2', state: null }, { pipeline: 'fans', device: 'pump-1', state: { other: 1 } }] });
    first.close();
    const again = openStore({ path: file });
    expect(again.alertStates('pumps')).toEqual(new Map([['pump-1', { raised: true, n: 2 }]]));
    expect(again.alertStates('fans')).toEqual(new Map([['pump-1', { other: 1 }]]));
  });

  it('should leave out an alert state row that is not JSON (a row no gateway wrote)', async () => {
    const store = openStore({ batchMs: 1 });
    await store.commit({ alertStates: [{ pipeline: 'p', device: 'good', state: { a: 1 } }] });
    connectionOf(store).prepare("INSERT INTO alert_states (pipeline, device, state) VALUES ('p', 'bad', '{not json')").run();
    expect(store.alertStates('p')).toEqual(new Map([['good', { a: 1 }]]));
  });

  it('should find the journal and cursors again after reopening the file', async () => {
    const file = dbPath();
    const first = ResultStore.open({ path: file });
    first.journal([entry('k1'), entry('k2')]);
    await first.commit({ consumed: [{ pipeline: 'pumps', key: 'k1' }], cursors: [{ pipeline: 'pumps', device: 'pump-1', lastWindowStartMs: 7 }] });
    await first.close();
    const again = openStore({ path: file });
    expect(again.pendingJournal('pumps').map((r) => r.key)).toEqual(['k2']);
    expect(again.cursors('pumps').get('pump-1')).toBe(7);
  });

  it('should keep journalDepth equal to the rows, through journal, consume, a repeated key and a reopen', async () => {
    const file = dbPath();
    const first = ResultStore.open({ path: file, batchMs: 1 });
    first.journal([entry('a'), entry('b'), entry('c', 'fans')]);
    first.journal([entry('a')]); // already journaled: no new row
    await first.commit({ consumed: [{ pipeline: 'pumps', key: 'a' }, { pipeline: 'pumps', key: 'unknown' }] });
    const rows = () => peek(file, (db) => db.prepare('SELECT COUNT(*) FROM journal').pluck().get() as number);
    expect(first.journalDepth()).toBe(2);
    expect(rows()).toBe(2);
    await first.close();
    const again = openStore({ path: file });
    expect(again.journalDepth()).toBe(2);
  });

  it('should refuse a cursor that is not a finite time, rejecting only that unit', async () => {
    const store = openStore();
    const good = store.commit({ cursors: [{ pipeline: 'p', device: 'd', lastWindowStartMs: 1 }] });
    const bad = store.commit({ cursors: [{ pipeline: 'p', device: 'e', lastWindowStartMs: Number.NaN }] });
    await expect(good).resolves.toBeUndefined();
    await expect(bad).rejects.toThrow(/cursors\[0\]: lastWindowStartMs: expected a finite number, got NaN/);
  });

  it('should refuse journal calls after close', async () => {
    const store = ResultStore.open({ path: dbPath() });
    await store.close();
    expect(() => store.journal([entry('late')])).toThrow(/closed/);
  });

  it('should consume 70 rows of two pipelines in one unit (statements of many keys), counting only rows that were there', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 1 });
    store.journal(Array.from({ length: 50 }, (_, i) => entry(`p${i}`)));
    store.journal(Array.from({ length: 10 }, (_, i) => entry(`f${i}`, 'fans')));
    const consumed = [
      ...Array.from({ length: 40 }, (_, i) => ({ pipeline: 'pumps', key: `p${i}` })),
      { pipeline: 'pumps', key: 'never-journaled' },
      ...Array.from({ length: 10 }, (_, i) => ({ pipeline: 'fans', key: `f${i}` })),
      ...Array.from({ length: 19 }, (_, i) => ({ pipeline: 'pumps', key: `p${i}` })), // again: already gone
    ];
    await store.commit({ consumed });
    expect(store.journalDepth()).toBe(10);
    expect(store.pendingJournal('pumps').map((r) => r.key)).toEqual(Array.from({ length: 10 }, (_, i) => `p${40 + i}`));
    expect(store.pendingJournal('fans')).toEqual([]);
  });
});
