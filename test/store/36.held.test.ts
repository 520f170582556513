// Journal 'when-needed' (the 'sd' profile): a message's acknowledgement waits for the batch that
// logs what it fed, and no journal row is written for it; a message still unfinished after a
// whole batch interval is journaled by the next batch; the packet-id records go with the batch;
// a batch that fails keeps them all held; the log closing lets go of what is still held.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ResultStore, inboundKey, inboundRange } from '../../runtime/store';
import { MessageIdentity } from '../../runtime/stream/identity';
import { BUSY_TIMEOUT_MS } from '../../runtime/store/store';
import { countRows, dbPath, openStore, peek, result, settled, sleep } from './helpers';

const BATCH_MS = 150;
const entry = (key: string, pipeline = 'pumps') => ({ pipeline, key, topic: 'plant/pump-1/vibration', payload: new TextEncoder().encode(`payload ${key}`), receivedMs: 1000 });
const consumed = (...keys: string[]) => keys.map((key) => ({ pipeline: 'pumps', key }));

describe("ResultStore with journal 'when-needed'", () => {
  it('should acknowledge a message retired by the batch that logs its window, without ever journaling it', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: BATCH_MS, journal: 'when-needed' });
    expect(store.journalMode).toBe('when-needed');
    const held = store.journalSoon(entry('m1'));
    await sleep(20);
    // Held until a batch commits: nothing is acknowledged yet.
    expect(await settled(held)).toBe(false);
    const unit = store.commit({ results: [result(1)], consumed: consumed('m1') });
    expect(await held).toBe(true);
    await unit;
    expect(countRows(file, 'journal')).toBe(0);
    expect(countRows(file, 'results')).toBe(1);
    expect(store.journalDepth()).toBe(0);
  });

  it('should journal a message still unfinished after a whole batch interval, and delete the row once it is consumed', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: BATCH_MS, journal: 'when-needed' });
    const t0 = Date.now();
    const held = store.journalSoon(entry('partial'));
    // The first batch finds it younger than an interval and keeps holding it; the next journals it.
    expect(await held).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(BATCH_MS);
    expect(peek(file, (db) => db.prepare('SELECT key FROM journal').pluck().all())).toEqual(['partial']);
    expect(store.journalDepth()).toBe(1);
    await store.commit({ results: [result(2)], consumed: consumed('partial') });
    expect(countRows(file, 'journal')).toBe(0);
    expect(store.journalDepth()).toBe(0);
  });

  it('should commit no more than once per batch interval however many messages come', async () => {
    const store = openStore({ batchMs: BATCH_MS, journal: 'when-needed' });
    const before = store.stats.commits;
    const t0 = Date.now();
    const all: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      all.push(store.journalSoon(entry(`k${i}`)));
      all.push(store.commit({ results: [result(i)], consumed: consumed(`k${i}`) }));
      await sleep(10);
    }
    await Promise.all(all);
    const elapsed = Date.now() - t0;
    const commits = store.stats.commits - before;
    expect(commits).toBeGreaterThan(0);
    expect(commits).toBeLessThanOrEqual(Math.ceil(elapsed / BATCH_MS) + 1);
  });

  it("should write a packet id's record with the batch, and resolve its note only once that committed", async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: BATCH_MS, journal: 'when-needed' });
    const deliveries = store.deliveries('gw-1');
    const noted = deliveries.note({ messageId: 7, key: 'h.1.7.tagA', hash: 'h' }, 1000);
    await sleep(20);
    expect(await settled(noted)).toBe(false);
    expect(countRows(file, 'mqtt_deliveries')).toBe(0);
    await noted;
    expect(peek(file, (db) => db.prepare('SELECT message_id AS id, key FROM mqtt_deliveries').all())).toEqual([{ id: 7, key: 'h.1.7.tagA' }]);
  });

  it("should drop a message's inbound keys, every pipeline's, once the broker has read its acknowledgement", async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: BATCH_MS, journal: 'when-needed' });
    const key = 'h.1.7.tagA';
    const other = 'g.1.8.tagB';
    const inbound = [inboundKey('pumps', key), inboundKey('fans', key), inboundKey('pumps', other)].map((k) => ({ key: k, topic: 'x', receivedMs: 1 }));
    await store.commit({ inbound });
    expect(store.seen(inboundKey('fans', key))).toBe(true);
    store.deliveries('gw-1').forget(7, key);
    await store.flush();
    expect(store.seen(inboundKey('pumps', key))).toBe(false);
    expect(store.seen(inboundKey('fans', key))).toBe(false);
    expect(store.seen(inboundKey('pumps', other))).toBe(true);
    expect(store.counts().inbound).toBe(1);
  });

  it('should keep every message held while the batch cannot commit (write lock held elsewhere), and settle them once it can', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 20, journal: 'when-needed', onError: () => undefined });
    await store.commit({ results: [result(0)] });
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    const held = store.journalSoon(entry('during-lock'));
    const unit = store.commit({ results: [result(1)], consumed: consumed('during-lock') });
    await sleep(BUSY_TIMEOUT_MS + 300);
    expect(await settled(held)).toBe(false);
    expect(store.stats.retries).toBeGreaterThan(0);
    other.exec('COMMIT');
    other.close();
    expect(await held).toBe(true);
    await unit;
    expect(countRows(file, 'journal')).toBe(0);
    expect(countRows(file, 'results')).toBe(2);
  }, BUSY_TIMEOUT_MS * 3);

  it('should let go of held messages with E_STORE_CLOSED when the log closes (the broker keeps them unacknowledged)', async () => {
    const store = ResultStore.open({ path: dbPath(), batchMs: 60_000, journal: 'when-needed' });
    const held = store.journalSoon(entry('left'));
    held.catch(() => undefined);
    store.hurry();
    await sleep(20);
    // A young message is not journaled by a hurried batch either: it is left with the broker.
    await store.close();
    await expect(held).rejects.toMatchObject({ code: 'E_STORE_CLOSED' });
  });

  it('should commit at once after hurry() instead of waiting the batch interval', async () => {
    const store = openStore({ batchMs: 60_000, journal: 'when-needed' });
    const t0 = Date.now();
    const unit = store.commit({ results: [result(3)] });
    store.hurry();
    await unit;
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it("should refuse an unknown journal mode, naming the option", () => {
    expect(() => ResultStore.open({ path: dbPath(), journal: 'sometimes' as never })).toThrow("store option journal: expected one of always, when-needed, got 'sometimes'");
  });
});

describe('inbound row keys', () => {
  it("should start with the message's tag, so that the rows of a process's messages sort in the order it took them", () => {
    const store = openStore({ journal: 'when-needed' });
    const identity = new MessageIdentity(store.deliveries('gw-order'));
    identity.session(false);
    // 2,000 messages: the counter in the tags passes from one base-36 digit to three.
    const keys = Array.from({ length: 2000 }, (_, i) => identity.identify({ topic: 'plant/p/v', payload: `m${i}`, qos: (i % 2) as 0 | 1, messageId: (i % 65535) + 1 }, 0).key);
    const rows = keys.map((k) => inboundKey('pumps', k));
    expect([...rows].sort()).toEqual(rows);
    expect(inboundKey('pumps', 'h.1.7.tagA~1700~2')).toBe('tagA pumps:h.1.7.tagA~1700~2');
  });

  it("should give a range holding every pipeline's row of a message and no other message's", () => {
    const [from, to] = inboundRange('h.1.7.tagA');
    const inside = (k: string) => k >= from && k < to;
    expect(inside(inboundKey('pumps', 'h.1.7.tagA'))).toBe(true);
    expect(inside(inboundKey('fans', 'h.1.7.tagA'))).toBe(true);
    expect(inside(inboundKey('pumps', 'h.1.7.tagAB'))).toBe(false);
    expect(inside(inboundKey('pumps', 'h.1.7.tagB'))).toBe(false);
  });
});
