import { describe, expect, it } from 'vitest';
import { type HeldPublish, ResultStore } from '../../runtime/store';
import { dbPath, openStore, peek } from './helpers';

const held = (messageId: number, over: Partial<HeldPublish> = {}): HeldPublish => ({
  messageId, topic: `plant/pump-${messageId}/vibration`, payload: new TextEncoder().encode(`block ${messageId}`), qos: 2, retain: false, dup: false, ...over,
});

describe('inbound QoS 2 messages held between PUBREC and their journal commit', () => {
  it('should be on disk, for another connection to read, as soon as put() returns', () => {
    const file = dbPath();
    const incoming = openStore({ path: file }).incoming('gw-1');
    incoming.put(held(7));
    expect(peek(file, (db) => db.prepare('SELECT client_id, message_id, topic FROM mqtt_incoming').all())).toEqual([{ client_id: 'gw-1', message_id: 7, topic: 'plant/pump-7/vibration' }]);
  });

  it('should give a message back by id, with its payload and flags, after the file is reopened', async () => {
    const file = dbPath();
    const first = ResultStore.open({ path: file });
    first.incoming('gw-1').put(held(1, { retain: true, properties: { contentType: 'application/octet-stream' } }));
    first.incoming('gw-1').put(held(2));
    await first.close();
    const incoming = openStore({ path: file }).incoming('gw-1');
    const m = incoming.get(1)!;
    expect(m).toMatchObject({ messageId: 1, topic: 'plant/pump-1/vibration', qos: 2, retain: true, dup: false, properties: { contentType: 'application/octet-stream' } });
    expect(new TextDecoder().decode(m.payload)).toBe('block 1');
    expect(incoming.all().map((h) => h.messageId)).toEqual([1, 2]);
    expect(incoming.get(3)).toBeUndefined();
  });

  it('should replace a message put again under its id (a PUBLISH resent before its PUBREC arrived)', () => {
    const incoming = openStore().incoming('gw-1');
    incoming.put(held(5));
    incoming.put(held(5, { dup: true, payload: new TextEncoder().encode('again') }));
    expect(incoming.all()).toHaveLength(1);
    expect(new TextDecoder().decode(incoming.get(5)!.payload)).toBe('again');
  });

  it('should keep each client id apart, and delete one message or all of a client', () => {
    const store = openStore();
    const a = store.incoming('gw-a');
    const b = store.incoming('gw-b');
    a.put(held(1));
    a.put(held(2));
    b.put(held(1));
    a.del(1);
    expect(a.all().map((h) => h.messageId)).toEqual([2]);
    a.clear();
    expect(a.all()).toEqual([]);
    expect(b.all().map((h) => h.messageId)).toEqual([1]);
  });
});
