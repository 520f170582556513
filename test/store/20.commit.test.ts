import { describe, expect, it } from 'vitest';
import { DEAD_LETTER_MAX_BYTES, ResultStore, isStoreError } from '../../runtime/store';
import { alert, countRows, dbPath, deadLetter, openStore, peek, pipelineUnit, result, settled, sleep, windowRecord } from './helpers';

describe('ResultStore#commit()', () => {
  it('should resolve only once the unit is committed and visible to another connection', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 10 });
    const committed = store.commit(pipelineUnit(1));
    expect(countRows(file, 'results')).toBe(0);
    await committed;
    expect(countRows(file, 'results')).toBe(1);
    expect(countRows(file, 'inbound')).toBe(1);
    expect(countRows(file, 'outbox')).toBe(1);
  });

  it('should commit a batch when it reaches batchRows rows', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchRows: 10, batchMs: 60_000 });
    const first = Array.from({ length: 9 }, (_, i) => store.commit({ results: [result(i)] }));
    await sleep(20);
    expect(await settled(first[0])).toBe(false);
    expect(store.stats.commits).toBe(0);
    expect(countRows(file, 'results')).toBe(0);
    const tenth = store.commit({ results: [result(9)] });
    await Promise.all([...first, tenth]);
    expect(store.stats).toMatchObject({ commits: 1, rows: 10, lastCommitRows: 10 });
    expect(countRows(file, 'results')).toBe(10);
  });

  it('should count every row of a unit towards batchRows, inbound keys included', async () => {
    const store = openStore({ batchRows: 6, batchMs: 60_000 });
    await Promise.all([store.commit(pipelineUnit(1)), store.commit(pipelineUnit(2))]); // 3 rows each
    expect(store.stats).toMatchObject({ commits: 1, rows: 6 });
  });

  it('should commit a batch when its oldest unit has waited batchMs', async () => {
    const store = openStore({ batchRows: 1000, batchMs: 40 });
    const t0 = performance.now();
    const first = store.commit(pipelineUnit(1));
    await sleep(15);
    const second = store.commit(pipelineUnit(2));
    expect(await settled(first)).toBe(false);
    await first;
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(35);
    expect(waited).toBeLessThan(1000);
    expect(await settled(second)).toBe(true);
    expect(store.stats.commits).toBe(1);
  });

  it('should put many units into one transaction', async () => {
    const store = openStore({ batchRows: 1000, batchMs: 5 });
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.commit(pipelineUnit(i))));
    expect(store.stats).toMatchObject({ commits: 1, rows: 600, lastCommitRows: 600 });
    expect(store.stats.lastCommitMs).toBeGreaterThan(0);
  });

  it('should commit a unit larger than batchRows on its own, at once', async () => {
    const store = openStore({ batchRows: 5, batchMs: 60_000 });
    const big = store.commit({ results: Array.from({ length: 20 }, (_, i) => result(i)) });
    expect(store.stats.commits).toBe(1);
    await big;
  });

  it('should resolve an empty unit with its batch', async () => {
    const store = openStore({ batchMs: 1 });
    await expect(store.commit({})).resolves.toBeUndefined();
  });

  it('should reject a unit that is not an object, or whose parts are not arrays, with E_ARGUMENT', async () => {
    const store = openStore();
    await expect(store.commit(null as never)).rejects.toMatchObject({ code: 'E_ARGUMENT', message: 'unit: expected an object, got null' });
    await expect(store.commit({ results: result(1) as never })).rejects.toMatchObject({ code: 'E_ARGUMENT', message: 'unit.results: expected an array, got object' });
  });

  describe('a failing unit', () => {
    it('should be rejected alone while the other units of its batch commit', async () => {
      const file = dbPath();
      const store = openStore({ path: file, batchRows: 1000, batchMs: 60_000 });
      const bad = { ...pipelineUnit(3), alerts: [alert(3)], results: [result(3, { device: undefined as unknown as string })] };
      const outcomes = await (async () => {
        const ps = [1, 2].map((i) => store.commit(pipelineUnit(i)));
        ps.push(store.commit(bad));
        ps.push(...[4, 5].map((i) => store.commit(pipelineUnit(i))));
        await store.flush();
        return Promise.allSettled(ps);
      })();
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      const reason = (outcomes[2] as PromiseRejectedResult).reason as Error;
      expect(isStoreError(reason, 'E_STORE_UNIT')).toBe(true);
      expect(reason.message).toBe('unit not committed: results[0]: NOT NULL constraint failed: results.device');
      // Nothing of the bad unit, everything of the others.
      expect(countRows(file, 'results')).toBe(4);
      expect(countRows(file, 'alerts')).toBe(0);
      expect(store.seen('msg-3')).toBe(false);
      expect([1, 2, 4, 5].every((i) => store.seen(`msg-${i}`))).toBe(true);
      expect(store.counts()).toMatchObject({ results: 4, inbound: 4, outbox: 4, alerts: 0 });
      expect(store.stats).toMatchObject({ commits: 1, failedUnits: 1, rows: 12 });
    });

    it('should be rejected when it is the only unit of its batch', async () => {
      const store = openStore({ batchMs: 1 });
      await expect(store.commit({ alerts: [alert(1, { message: null as unknown as string })] })).rejects.toThrow('unit not committed: alerts[0]: NOT NULL constraint failed: alerts.message');
      expect(store.counts().alerts).toBe(0);
    });

    it('should name the record that is wrong', async () => {
      const store = openStore({ batchMs: 1 });
      await expect(store.commit({ windows: [windowRecord(1), windowRecord(2, { dims: [4, 4] })] })).rejects.toThrow('unit not committed: windows[1]: dims [4, 4] hold 16 values but features has 6');
      await expect(store.commit({ results: [result(1, { anomaly: 1 as unknown as boolean })] })).rejects.toThrow('results[0]: anomaly: expected a boolean, got number');
      await expect(store.commit({ deadLetters: [deadLetter(1, { payload: 'text' as unknown as Uint8Array })] })).rejects.toThrow('deadLetters[0]: payload: expected a Uint8Array, got string');
      await expect(store.commit({ outbox: [{ topic: 't', payload: 'x', qos: 3 as 1 }] })).rejects.toThrow('outbox[0]: CHECK constraint failed');
      expect(store.counts()).toMatchObject({ results: 0, windows: 0, deadLetters: 0, outbox: 0 });
    });
  });

  it('should write every kind of record and read it back unchanged', async () => {
    const store = openStore({ batchMs: 1 });
    const features = new Float32Array([0.5, -1.25, 3e-8, 42]);
    await store.commit({
      inbound: [{ topic: 'plant/press-7/vib', key: 'sha1:abc', receivedMs: 1000 }],
      results: [
        result(1000, { device: 'press-7', label: 'bearing-wear', anomaly: true, score: 0.93, outputs: { probabilities: [0.01, 0.93, 0.06] }, messageKeys: ['sha1:abc'] }),
        result(1001, { device: 'press-8', outputs: [0.25, 0.75] }),
      ],
      alerts: [alert(1000, { device: 'press-7', threshold: null, label: 'bearing-wear' })],
      deadLetters: [deadLetter(999, { device: null, payload: new Uint8Array([0, 255, 7]) })],
      outbox: [{ topic: 'edge/press-7', payload: new Uint8Array([9, 8]), qos: 2, retain: true }],
      windows: [windowRecord(1000, { device: 'press-7', features, dims: [2, 2] })],
    });
    const [r7, r8] = store.latestPerDevice();
    expect(r7).toMatchObject({ timeMs: 1000, device: 'press-7', model: 'vibration-anomaly', variant: 'int8', score: 0.93, label: 'bearing-wear', anomaly: true, outputs: { probabilities: [0.01, 0.93, 0.06] }, latencyMs: 2.5, windowStartMs: 0, windowEndMs: 1000, messageKeys: ['sha1:abc'] });
    expect(r8).toMatchObject({ device: 'press-8', label: null, anomaly: false, outputs: [0.25, 0.75] });
    expect(store.alerts()).toEqual([{ id: 1, ...alert(1000, { device: 'press-7', threshold: null, label: 'bearing-wear' }), ackedBy: null, ackedMs: null, clearedBy: null, clearedMs: null }]);
    const [letter] = store.deadLetters();
    expect(letter).toMatchObject({ timeMs: 999, device: null, reason: 'not JSON', code: 'E_DECODE', payloadBytes: 3, truncated: false });
    expect([...letter.payload]).toEqual([0, 255, 7]);
    const [message] = store.outboxPeek(1);
    expect(message).toMatchObject({ topic: 'edge/press-7', qos: 2, retain: true });
    expect([...(message.payload as Uint8Array)]).toEqual([9, 8]);
    const [w] = store.windows('vibration-anomaly');
    expect(w).toEqual({ timeMs: 1000, device: 'press-7', features, dims: [2, 2] });
  });

  it('should cut a dead-letter payload over 1 MiB and say so', async () => {
    const store = openStore({ batchMs: 1 });
    const payload = new Uint8Array(DEAD_LETTER_MAX_BYTES + 5000).fill(7);
    await store.commit({ deadLetters: [deadLetter(1, { payload })] });
    const [letter] = store.deadLetters();
    expect(letter.truncated).toBe(true);
    expect(letter.payloadBytes).toBe(DEAD_LETTER_MAX_BYTES + 5000);
    expect(letter.payload.byteLength).toBe(DEAD_LETTER_MAX_BYTES);
  });

  it('should store a view into a larger buffer as just its own bytes', async () => {
    const store = openStore({ batchMs: 1 });
    const backing = new Float32Array([9, 9, 1, 2, 9]);
    await store.commit({ windows: [windowRecord(1, { features: backing.subarray(2, 4), dims: [2] })], deadLetters: [deadLetter(1, { payload: new Uint8Array([5, 6, 7, 8]).subarray(1, 3) })] });
    expect([...store.windows('vibration-anomaly')[0].features]).toEqual([1, 2]);
    expect([...store.deadLetters()[0].payload]).toEqual([6, 7]);
  });
});

describe('ResultStore#flush()', () => {
  it('should commit what is queued now', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 60_000 });
    const committed = store.commit(pipelineUnit(1));
    await store.flush();
    expect(await settled(committed)).toBe(true);
    expect(countRows(file, 'results')).toBe(1);
  });

  it('should do nothing when nothing is queued', async () => {
    const store = openStore();
    await store.flush();
    expect(store.stats.commits).toBe(0);
  });
});

describe('ResultStore#seen()', () => {
  it('should know an inbound key only once the unit carrying it is committed', async () => {
    const store = openStore({ batchMs: 60_000 });
    expect(store.seen('msg-1')).toBe(false);
    const committed = store.commit(pipelineUnit(1));
    expect(store.seen('msg-1')).toBe(false);
    await store.flush();
    await committed;
    expect(store.seen('msg-1')).toBe(true);
    expect(store.seen('msg-2')).toBe(false);
  });

  it('should recognise a redelivery after a restart', async () => {
    const file = dbPath();
    const before = ResultStore.open({ path: file, batchMs: 1 });
    await before.commit(pipelineUnit(1));
    await before.close();
    const after = openStore({ path: file });
    expect(after.seen('msg-1')).toBe(true);
  });

  it('should record a key once when it comes again in a later unit, and still write that unit', async () => {
    const store = openStore({ batchMs: 1 });
    await store.commit(pipelineUnit(1));
    await expect(store.commit(pipelineUnit(1))).resolves.toBeUndefined();
    expect(store.counts()).toMatchObject({ inbound: 1, results: 2 });
    expect(peek(store.path, (db) => db.prepare('SELECT COUNT(*) FROM inbound').pluck().get())).toBe(1);
  });

  it('should refuse a key that is not a non-empty string', () => {
    const store = openStore();
    expect(() => store.seen('')).toThrow("key: expected a non-empty string, got ''");
  });

  it('should commit a unit of 40 results (statements of many rows) and name the refused row of such a statement', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 1 });
    await store.commit({ results: Array.from({ length: 40 }, (_, i) => result(i)) });
    expect(countRows(file, 'results')).toBe(40);
    // The 20th row sits in the second statement of 16: its failure names it, and nothing of the unit stays.
    const rows = Array.from({ length: 40 }, (_, i) => result(100 + i, i === 19 ? { device: undefined as unknown as string } : {}));
    await expect(store.commit({ results: rows })).rejects.toThrow('unit not committed: results[19]: NOT NULL constraint failed: results.device');
    expect(countRows(file, 'results')).toBe(40);
    expect(store.counts().results).toBe(40);
  });
});
