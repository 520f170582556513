// Message identity at intake (runtime/stream/identity.ts) on a real SQLite log: the packet id and
// DUP flag inside one session epoch decide what can be a redelivery, the content hash tells a
// reused packet id's new message apart, and a restart (a new process on the same file) still knows
// what each packet id carried.
import { describe, expect, it } from 'vitest';
import { ResultStore } from '../../runtime/store';
import { MessageIdentity, contentHash, contentOf } from '../../runtime/stream/identity';
import { dbPath, openStore } from '../store/helpers';

const flat = Buffer.from('{"temp":21.5}');
const pkt = (messageId: number | undefined, dup = false, payload: Buffer = flat, qos: 0 | 1 | 2 = 1) => ({ topic: 'plant/oven-1/temp', payload, qos, messageId, dup });

describe('MessageIdentity', () => {
  it('should give every QoS 0 message a key of its own, never a redelivery, even with identical bytes', () => {
    const identity = new MessageIdentity(openStore().deliveries('gw'));
    identity.session(false);
    const a = identity.identify(pkt(undefined, false, flat, 0), 1);
    const b = identity.identify(pkt(undefined, true, flat, 0), 2);
    expect(a.redelivered || b.redelivered).toBe(false);
    expect(a.key).not.toBe(b.key);
    expect(contentOf(a.key)).toBe(contentHash('plant/oven-1/temp', flat));
  });

  it('should take a QoS 1 message without DUP as new, even when its packet id and bytes repeat (a flat-lined sensor)', async () => {
    const identity = new MessageIdentity(openStore().deliveries('gw'));
    identity.session(false);
    const first = identity.identify(pkt(7), 1);
    const again = identity.identify(pkt(7), 2);
    await Promise.all([first.recorded, again.recorded]);
    expect([first.redelivered, again.redelivered]).toEqual([false, false]);
    expect(again.key).not.toBe(first.key);
  });

  it('should give a DUP with the same packet id and bytes the key of the message it repeats, marked redelivered', () => {
    const identity = new MessageIdentity(openStore().deliveries('gw'));
    identity.session(false);
    const first = identity.identify(pkt(7), 1);
    const dup = identity.identify(pkt(7, true), 2);
    expect(dup).toMatchObject({ key: first.key, redelivered: true });
  });

  it('should take a DUP whose bytes differ from its packet id\'s last message as a new message', () => {
    const identity = new MessageIdentity(openStore().deliveries('gw'));
    identity.session(false);
    const first = identity.identify(pkt(7), 1);
    const other = identity.identify(pkt(7, true, Buffer.from('{"temp":21.6}')), 2);
    expect(other.redelivered).toBe(false);
    expect(other.key).not.toBe(first.key);
    // ...and it is now what packet id 7 carries.
    expect(identity.identify(pkt(7, true, Buffer.from('{"temp":21.6}')), 3)).toMatchObject({ key: other.key, redelivered: true });
  });

  it('should take a DUP as new once the broker has read the acknowledgement of its packet id\'s last message', () => {
    const identity = new MessageIdentity(openStore().deliveries('gw'));
    identity.session(false);
    const packet = pkt(7);
    const first = identity.identify(packet, 1);
    identity.acknowledged([packet]);
    const dup = identity.identify(pkt(7, true), 2);
    expect(dup.redelivered).toBe(false);
    expect(dup.key).not.toBe(first.key);
  });

  it('should not forget a packet id\'s newer message when an older acknowledgement under that id is read', () => {
    const identity = new MessageIdentity(openStore().deliveries('gw'));
    identity.session(false);
    const older = pkt(7);
    identity.identify(older, 1);
    const newer = identity.identify(pkt(7, false, Buffer.from('x')), 2);
    identity.acknowledged([older]);
    expect(identity.identify(pkt(7, true, Buffer.from('x')), 3)).toMatchObject({ key: newer.key, redelivered: true });
  });

  it('should start a new epoch when the broker has no session, so nothing of the old one is taken for a redelivery', () => {
    const identity = new MessageIdentity(openStore().deliveries('gw'));
    identity.session(false);
    const epoch = identity.sessionEpoch;
    const first = identity.identify(pkt(7), 1);
    identity.session(true);
    expect(identity.sessionEpoch).toBe(epoch);
    identity.session(false);
    expect(identity.sessionEpoch).toBe(epoch + 1);
    const dup = identity.identify(pkt(7, true), 2);
    expect(dup.redelivered).toBe(false);
    expect(dup.key).not.toBe(first.key);
    expect(identity.carriedCount).toBe(1);
  });

  it('should know after a restart (a new process on the same file) what each packet id carried, once its record was committed', async () => {
    const file = dbPath();
    const store = ResultStore.open({ path: file });
    const identity = new MessageIdentity(store.deliveries('gw'));
    identity.session(false);
    const a = identity.identify(pkt(1), 1);
    const b = identity.identify(pkt(2), 2);
    await Promise.all([a.recorded, b.recorded]);
    const acked = pkt(3);
    const c = identity.identify(acked, 3);
    await c.recorded;
    identity.acknowledged([acked]);
    await store.journalSoon({ pipeline: 'p', key: 'flush', topic: 't', payload: new Uint8Array(0), receivedMs: 0 });
    await store.close();

    const reopened = openStore({ path: file });
    const after = new MessageIdentity(reopened.deliveries('gw'));
    after.session(true);
    expect(after.identify(pkt(1, true), 4)).toMatchObject({ key: a.key, redelivered: true });
    expect(after.identify(pkt(2, true), 5)).toMatchObject({ key: b.key, redelivered: true });
    // Its acknowledgement was read before the restart: packet id 3 was free.
    expect(after.identify(pkt(3, true), 6).redelivered).toBe(false);
    // Another client id on the same file has its own epoch and packet ids.
    const other = new MessageIdentity(reopened.deliveries('gw-2'));
    other.session(true);
    expect(other.identify(pkt(1, true), 7).redelivered).toBe(false);
    // The broker lost the session: the new epoch is on disk, and nothing of the old one is kept.
    after.session(false);
    const epoch = after.sessionEpoch;
    expect(reopened.deliveries('gw').epoch()).toBe(epoch);
    expect(reopened.deliveries('gw').all()).toEqual([]);
  });

  it('should write the records of one turn in one journal group commit, with the journal rows', async () => {
    const store = openStore();
    const identity = new MessageIdentity(store.deliveries('gw'));
    identity.session(false);
    const before = store.journalStats.commits;
    const done: Promise<unknown>[] = [];
    for (let i = 1; i <= 500; i++) {
      const id = identity.identify(pkt(i, false, Buffer.from(String(i))), i);
      done.push(id.recorded!, store.journalSoon({ pipeline: 'p', key: id.key, topic: 't', payload: Buffer.from(String(i)), receivedMs: i }));
    }
    await Promise.all(done);
    expect(store.journalStats.commits - before).toBe(1);
    expect(store.journalStats.messages).toBe(500);
  });
});
