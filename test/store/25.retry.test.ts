// A commit whose transaction fails as a whole (here: another process holds the write lock past
// the busy timeout, as a backup tool or a second gateway on the same file would) is not lost
// and not skipped: the batch is tried again before anything later, and its promises settle only
// once it is in the file, or at close, with E_STORE_WRITE, while the journal keeps its messages.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { BUSY_TIMEOUT_MS } from '../../runtime/store/store';
import { countRows, dbPath, openStore, result, settled, sleep } from './helpers';

/** A second connection that takes the write lock (BEGIN IMMEDIATE) and holds it until released. */
function holdWriteLock(file: string): { release(): void } {
  const other = new Database(file);
  other.exec('BEGIN IMMEDIATE');
  return {
    release() {
      other.exec('COMMIT');
      other.close();
    },
  };
}

describe('ResultStore#commit() while the write lock is held elsewhere', () => {
  it('should keep a batch whose transaction failed, try it again, and commit it (before later units) once the lock is free', async () => {
    const file = dbPath();
    const reported: string[] = [];
    const store = openStore({ path: file, batchMs: 5, onError: (err) => reported.push(err.message) });
    await store.commit({ results: [result(0)] });
    const lock = holdWriteLock(file);
    // The first try waits the busy timeout, then fails: the batch goes back to the queue.
    const first = store.commit({ results: [result(1)], cursors: [{ pipeline: 'p', device: 'd', lastWindowStartMs: 1 }] });
    await sleep(BUSY_TIMEOUT_MS + 300);
    const second = store.commit({ results: [result(2)], cursors: [{ pipeline: 'p', device: 'd', lastWindowStartMs: 2 }] });
    await sleep(50);
    expect(await settled(first)).toBe(false);
    expect(await settled(second)).toBe(false);
    expect(store.stats.retries).toBeGreaterThan(0);
    expect(store.stats.failingSinceMs).not.toBeNull();
    expect(store.queuedUnits).toBe(2);
    expect(reported[0]).toMatch(/the log could not commit 1 unit\(s\): database is locked; they are kept and tried again/);

    lock.release();
    await Promise.all([first, second]);
    expect(countRows(file, 'results')).toBe(3);
    expect(store.stats.failingSinceMs).toBeNull();
    // Reported once when it began and once when it ended, with how long and how many tries.
    expect(reported).toHaveLength(2);
    expect(reported.at(-1)).toMatch(/^the log commits again after \d+ s failing \(since \d\d:\d\d:\d\d UTC\), \d+ failed tr(y|ies)$/);
    await store.close();
  }, 30_000);

  it('should reject the units still held back at close with E_STORE_WRITE, leaving nothing half-written', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 5, onError: () => undefined });
    const lock = holdWriteLock(file);
    const held = store.commit({ results: [result(1)] });
    await sleep(BUSY_TIMEOUT_MS + 300);
    const closing = store.close();
    await expect(held).rejects.toMatchObject({ code: 'E_STORE_WRITE', message: expect.stringMatching(/not committed before the log closed; their messages stay journaled/) });
    await closing;
    lock.release();
    expect(countRows(file, 'results')).toBe(0);
  }, 30_000);

  it('should not wait on the lock again at close when told not to (a stop that has waited out its bound)', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 5, onError: () => undefined });
    const lock = holdWriteLock(file);
    const held = store.commit({ results: [result(1)] });
    await sleep(BUSY_TIMEOUT_MS + 300);
    // The last try and the checkpoint would each wait out the busy timeout.
    const t0 = Date.now();
    const closing = store.close({ waitForLock: false });
    const tookMs = Date.now() - t0;
    await expect(held).rejects.toMatchObject({ code: 'E_STORE_WRITE' });
    await closing;
    expect(tookMs).toBeLessThan(BUSY_TIMEOUT_MS / 2);
    lock.release();
    expect(countRows(file, 'results')).toBe(0);
  }, 30_000);
});
