// The commit stage and the intake stage on a real log: retired messages go with the unit that
// settles them; a unit the log refuses on its own is replaced by its fallback (dead letters), so
// its messages still retire accounted for; a journal write that fails is never acknowledged.
import { describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../runtime/serve/metrics';
import { type ResultRecord, inboundKey } from '../../runtime/store';
import { Committer } from '../../runtime/stream/commit';
import { Intake } from '../../runtime/stream/intake';
import { MessageLedger } from '../../runtime/stream/ledger';
import { countRows, dbPath, deadLetter, openStore, result } from '../store/helpers';

const journaled = (store: ReturnType<typeof openStore>, keys: string[]) =>
  store.journal(keys.map((key) => ({ pipeline: 'p', key, topic: 't', payload: new Uint8Array([1]), receivedMs: 1 })));

describe('Committer', () => {
  it('should commit a unit with the messages retired so far, deleting their journal rows in the same transaction', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 1 });
    journaled(store, ['a', 'b']);
    const ledger = new MessageLedger('p');
    for (const k of ['a', 'b']) {
      ledger.open(k, true);
      ledger.close(k);
    }
    const committed: unknown[] = [];
    await new Committer('p', store, ledger, new GatewayMetrics({ processMetrics: false }), (u) => committed.push(u), () => undefined).write({ results: [result(1)] });
    expect(countRows(file, 'journal')).toBe(0);
    expect(countRows(file, 'results')).toBe(1);
    expect(store.seen(inboundKey('p', 'a'))).toBe(true);
    expect(committed).toHaveLength(1);
    expect(ledger.has('a')).toBe(false);
  });

  it('should report a listener that throws as its own error, the unit committed all the same', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 1 });
    const reported: string[] = [];
    const committer = new Committer('p', store, new MessageLedger('p'), new GatewayMetrics({ processMetrics: false }), () => { throw new Error('console broke'); }, (e) => reported.push((e as Error).message));
    await committer.write({ results: [result(1)] });
    expect(countRows(file, 'results')).toBe(1);
    expect(reported).toEqual(['console broke']);
  });

  it('should commit the fallback instead of a unit the log refuses on its own, with the same retired messages, and report it', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 1 });
    journaled(store, ['a']);
    const ledger = new MessageLedger('p');
    ledger.open('a', false);
    ledger.close('a');
    const reported: string[] = [];
    const bad = { ...result(1), anomaly: 'yes' } as unknown as ResultRecord;
    await new Committer('p', store, ledger, new GatewayMetrics({ processMetrics: false }), () => undefined, (e) => reported.push((e as Error).message)).write({ results: [bad] }, (err) => ({ deadLetters: [deadLetter(1, { code: err.code, reason: err.message })] }));
    expect(countRows(file, 'results')).toBe(0);
    expect(countRows(file, 'dead_letters')).toBe(1);
    expect(countRows(file, 'journal')).toBe(0);
    expect(reported[0]).toMatch(/p: results not logged, recorded as dead letters instead: unit not committed: results\[0\]: anomaly: expected a boolean/);
  });

  it('should leave the messages journaled and report when the log is closed, never rejecting', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 1 });
    journaled(store, ['a']);
    await store.close();
    const ledger = new MessageLedger('p');
    ledger.open('a', false);
    ledger.close('a');
    const reported: string[] = [];
    await new Committer('p', store, ledger, new GatewayMetrics({ processMetrics: false }), () => undefined, (e) => reported.push((e as Error).message)).write({});
    expect(reported[0]).toMatch(/p: not logged \(the messages stay journaled for the next start\)/);
    expect(countRows(file, 'journal')).toBe(1);
    expect(ledger.has('a')).toBe(false);
  });
});

describe('Intake', () => {
  const intakeOn = (store: ReturnType<typeof openStore>, processed: string[], wants = (_t: string) => true) =>
    new Intake({ pipeline: 'p', rememberKeys: true, wants, room: () => undefined, process: (m) => processed.push(m.key) }, store, new MessageLedger('p'), new GatewayMetrics({ processMetrics: false }));
  const msg = (key: string, redelivered = false) => ({ topic: 'machine/m/speed', payload: Buffer.from('{}'), receivedMs: 7, redelivered, key, qos: 1 as const });

  it('should journal a message before handing it on, in arrival order, and drop a redelivery the log already has', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 1 });
    const processed: string[] = [];
    const intake = intakeOn(store, processed);
    await Promise.all([intake.accept(msg('a')), intake.accept(msg('b'))]);
    expect(processed).toEqual(['a', 'b']);
    expect(countRows(file, 'journal')).toBe(2);
    await intake.accept(msg('a', true));
    expect(processed).toEqual(['a', 'b']);
  });

  it('should take the same key again, not marked as a redelivery, as a message of its own', async () => {
    const store = openStore({ batchMs: 1 });
    const processed: string[] = [];
    const ledger = new MessageLedger('p');
    const intake = new Intake({ pipeline: 'p', rememberKeys: true, wants: () => true, room: () => undefined, process: (m) => { processed.push(m.key); ledger.open(m.key, true); } }, store, ledger, new GatewayMetrics({ processMetrics: false }));
    await intake.accept(msg('a'));
    await intake.accept(msg('a'));
    expect(processed[0]).toBe('a');
    expect(processed[1]).toMatch(/^a~7~\d+$/);
  });

  it('should keep nothing of a message it does not want, and reject (so it is not acknowledged) when the journal cannot be written', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 1 });
    const processed: string[] = [];
    await intakeOn(store, processed, () => false).accept(msg('other'));
    expect(countRows(file, 'journal')).toBe(0);
    await store.close();
    await expect(intakeOn(store, processed).accept(msg('late'))).rejects.toMatchObject({ code: 'E_STORE_CLOSED' });
    expect(processed).toEqual([]);
  });
});
