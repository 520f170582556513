import { describe, expect, it } from 'vitest';
import { type OutboxMessage, ResultStore } from '../../runtime/store';
import { countRows, dbPath, openStore } from './helpers';

const message = (n: number, over: Partial<OutboxMessage> = {}): OutboxMessage => ({ topic: `edge/press-1/score`, payload: `{"n":${n}}`, qos: 1, ...over });
const payloads = (entries: Array<{ payload: Uint8Array | string }>): Array<Uint8Array | string> => entries.map((e) => e.payload);

describe('outbox', () => {
  it('should hand out messages in insertion order, across units and batches', async () => {
    const store = openStore({ batchMs: 1 });
    await store.commit({ outbox: [message(1), message(2)] });
    await Promise.all([store.commit({ outbox: [message(3)] }), store.commit({ outbox: [message(4), message(5)] })]);
    const entries = store.outboxPeek(10);
    expect(payloads(entries)).toEqual([1, 2, 3, 4, 5].map((n) => `{"n":${n}}`));
    expect(entries.map((e) => e.id)).toEqual([...entries.map((e) => e.id)].sort((a, b) => a - b));
    expect(store.outboxPeek(2).map((e) => e.id)).toEqual(entries.slice(0, 2).map((e) => e.id));
  });

  it('should keep a message until it is acknowledged, then remove it durably', async () => {
    const file = dbPath();
    const store = ResultStore.open({ path: file, batchMs: 60_000 });
    const committed = store.commit({ outbox: [message(1), message(2), message(3)] });
    await store.flush();
    await committed;
    const [first, second] = store.outboxPeek(2);
    expect(store.outboxPeek(2)).toEqual([first, second]); // peeking takes nothing
    store.outboxAck(first.id);
    expect(store.outboxPeek(10).map((e) => e.id)).not.toContain(first.id);
    expect(store.outboxDepth()).toBe(2);
    expect(store.counts().outbox).toBe(2);
    expect(countRows(file, 'outbox')).toBe(3); // deleted with the next batch
    await store.flush();
    expect(countRows(file, 'outbox')).toBe(2);
    await store.close();

    const again = openStore({ path: file });
    expect(again.outboxDepth()).toBe(2);
    expect(payloads(again.outboxPeek(10))).toEqual(['{"n":2}', '{"n":3}']);
  });

  it('should delete acknowledged messages on the batch timer even when no unit comes', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 5 });
    await store.commit({ outbox: [message(1)] });
    store.outboxAck(store.outboxPeek(1)[0].id);
    await new Promise((r) => setTimeout(r, 50));
    expect(countRows(file, 'outbox')).toBe(0);
  });

  it('should page past messages in flight with afterId', async () => {
    const store = openStore({ batchMs: 1 });
    await store.commit({ outbox: [1, 2, 3, 4, 5].map((n) => message(n)) });
    const inFlight = store.outboxPeek(2);
    const next = store.outboxPeek(2, { afterId: inFlight[1].id });
    expect(payloads(next)).toEqual(['{"n":3}', '{"n":4}']);
    expect(() => store.outboxPeek(2, { afterId: -1 })).toThrow('afterId: expected an outbox id (a whole number ≥ 0), got -1');
  });

  it('should ignore an acknowledgement for a message it does not hold, and refuse a bad id', async () => {
    const store = openStore({ batchMs: 1 });
    await store.commit({ outbox: [message(1)] });
    store.outboxAck(999);
    store.outboxAck(store.outboxPeek(1)[0].id);
    store.outboxAck(store.outboxPeek(1)[0]?.id ?? 1); // twice
    await store.flush();
    expect(store.outboxDepth()).toBe(0);
    expect(() => store.outboxAck(0)).toThrow('id: expected an outbox id from outboxPeek, got 0');
    expect(() => store.outboxAck(Number.NaN)).toThrow(/E_ARGUMENT|outbox id/);
  });

  it('should drop the oldest messages past outboxLimit, and count them', async () => {
    const store = openStore({ batchMs: 1, outboxLimit: 5 });
    await store.commit({ outbox: [1, 2, 3].map((n) => message(n)) });
    await store.commit({ outbox: [4, 5, 6, 7, 8].map((n) => message(n)) });
    expect(store.outboxDepth()).toBe(5);
    expect(payloads(store.outboxPeek(10))).toEqual([4, 5, 6, 7, 8].map((n) => `{"n":${n}}`));
    expect(store.stats.droppedOutbox).toBe(3);
    expect(store.counts().outbox).toBe(5);
  });

  it('should count acknowledgements in the same batch before dropping for the limit', async () => {
    const store = openStore({ batchMs: 60_000, outboxLimit: 3 });
    const first = store.commit({ outbox: [1, 2, 3].map((n) => message(n)) });
    await store.flush();
    await first;
    for (const e of store.outboxPeek(2)) store.outboxAck(e.id);
    const second = store.commit({ outbox: [4, 5].map((n) => message(n)) });
    await store.flush();
    await second;
    expect(store.stats.droppedOutbox).toBe(0);
    expect(payloads(store.outboxPeek(10))).toEqual(['{"n":3}', '{"n":4}', '{"n":5}']);
  });

  it('should never hand out an id twice, even after the outbox empties and the file is reopened', async () => {
    const file = dbPath();
    const store = ResultStore.open({ path: file, batchMs: 1 });
    await store.commit({ outbox: [message(1)] });
    const [a] = store.outboxPeek(1);
    store.outboxAck(a.id);
    await store.flush();
    await store.commit({ outbox: [message(2)] });
    const [b] = store.outboxPeek(1);
    store.outboxAck(b.id);
    await store.close();
    const again = openStore({ path: file, batchMs: 1 });
    await again.commit({ outbox: [message(3)] });
    const [c] = again.outboxPeek(1);
    expect([a.id, b.id, c.id]).toEqual([a.id, a.id + 1, a.id + 2]);
  });

  it('should keep text payloads as text and bytes as bytes, with qos and retain', async () => {
    const store = openStore({ batchMs: 1 });
    await store.commit({ outbox: [message(1, { qos: 0 }), { topic: 'edge/raw', payload: new Uint8Array([1, 2, 3]), qos: 2, retain: true }] });
    const [text, bytes] = store.outboxPeek(2);
    expect(text).toMatchObject({ payload: '{"n":1}', qos: 0, retain: false });
    expect(typeof text.payload).toBe('string');
    expect(bytes.payload).toBeInstanceOf(Uint8Array);
    expect(bytes).toMatchObject({ topic: 'edge/raw', qos: 2, retain: true });
  });

  it('should refuse a limit that is not a whole number ≥ 1', () => {
    const store = openStore();
    expect(() => store.outboxPeek(0)).toThrow('limit: expected a whole number ≥ 1, got 0');
  });
});
