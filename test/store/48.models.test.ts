import { describe, expect, it } from 'vitest';
import { type ResultRecord, type ResultStore } from '../../runtime/store';
import { openStore, result } from './helpers';

const T0 = 1_700_000_000_000;
const VIB = 'vibration-anomaly';
const FAULT = 'fault-classifier';

async function commitAll(store: ResultStore, records: ResultRecord[], batch = 1000): Promise<void> {
  const pending: Array<Promise<void>> = [];
  for (let i = 0; i < records.length; i += batch) pending.push(store.commit({ results: records.slice(i, i + batch) }));
  await store.flush();
  await Promise.all(pending);
}

describe('modelStats()', () => {
  it('should count the windows logged since sinceMs by processing time, per model and variant', async () => {
    const store = openStore({ batchMs: 1 });
    const since = T0 + 60_000;
    const records: ResultRecord[] = [];
    for (let i = 0; i < 100; i++) {
      // Made one a second; data time lags by an hour for press-2 (a backlog), which must not matter.
      const made = T0 + i * 1000;
      records.push(result(made - 500, { variant: 'int8', processedMs: made, latencyMs: 1 + (i % 10) }));
      records.push(result(made - 3_600_000, { device: 'press-2', model: FAULT, variant: 'fp32', processedMs: made, latencyMs: 10 }));
    }
    await commitAll(store, records, 20);
    expect(store.modelStats({ sinceMs: since })).toEqual([
      { model: FAULT, variant: 'fp32', windows: 40, latencyP50Ms: 10, latencyP99Ms: 10 },
      { model: VIB, variant: 'int8', windows: 40, latencyP50Ms: 5, latencyP99Ms: 10 },
    ]);
    // Nothing logged since: no windows, but the latencies of the newest results are still known.
    expect(store.modelStats({ sinceMs: T0 + 1_000_000 })).toEqual([
      { model: FAULT, variant: 'fp32', windows: 0, latencyP50Ms: 10, latencyP99Ms: 10 },
      { model: VIB, variant: 'int8', windows: 0, latencyP50Ms: 5, latencyP99Ms: 10 },
    ]);
  });

  it('should take the latencies of the newest 5,000 results of a model and variant, over all its devices', async () => {
    const store = openStore({ batchRows: 2000, batchMs: 1 });
    const records: ResultRecord[] = [];
    // 1,000 old slow results, then 5,000 newer ones with latencies 1..5000 over two devices; a second variant beside them.
    for (let i = 0; i < 1000; i++) records.push(result(T0 + i, { device: `press-${i % 2}`, latencyMs: 100_000 }));
    for (let i = 0; i < 5000; i++) records.push(result(T0 + 10_000 + i, { device: `press-${i % 2}`, latencyMs: 1 + ((i * 7919) % 5000) }));
    for (let i = 0; i < 300; i++) records.push(result(T0 + 10_000 + i * 3, { device: 'press-0', variant: 'fp32', latencyMs: 20 }));
    await commitAll(store, records);
    const stats = store.modelStats({ sinceMs: 0 });
    expect(stats).toEqual([
      { model: VIB, variant: 'fp32', windows: 300, latencyP50Ms: 20, latencyP99Ms: 20 },
      { model: VIB, variant: 'int8', windows: 6000, latencyP50Ms: 2500, latencyP99Ms: 4950 },
    ]);
  });

  it('should not stop counting at one straggler made long before sinceMs', async () => {
    const store = openStore({ batchMs: 1 });
    await store.commit({ results: [result(T0, { processedMs: T0 }), result(T0 + 1, { processedMs: T0 + 1 })] });
    await store.commit({ results: [result(T0 + 2, { processedMs: T0 - 3_600_000 })] });
    expect(store.modelStats({ sinceMs: T0 }).map((r) => r.windows)).toEqual([2]);
  });

  it('should answer an empty log with no rows and refuse a bad sinceMs, naming it', () => {
    const store = openStore();
    expect(store.modelStats({ sinceMs: T0 })).toEqual([]);
    expect(() => store.modelStats({} as { sinceMs: number })).toThrow('sinceMs: expected a time in ms since the epoch, got undefined');
    expect(() => store.modelStats(undefined as unknown as { sinceMs: number })).toThrow('sinceMs: expected a time in ms since the epoch, got undefined');
    expect(() => store.modelStats({ sinceMs: 1e17 })).toThrow(/^sinceMs: expected a time a Date can hold/);
  });
});

/** The fp32 and a low-bit variant of one window, as two pipelines (or two Node-RED nodes) log them. */
function pair(t: number, keys: string[], fp32: Partial<ResultRecord>, lowbit: Partial<ResultRecord>, lowbitVariant = 'fp8-e4m3', shiftMs = 0): ResultRecord[] {
  return [
    result(t, { variant: 'fp32', messageKeys: keys, windowStartMs: t - 1000, ...fp32 }),
    result(t + shiftMs, { variant: lowbitVariant, messageKeys: keys, windowStartMs: t + shiftMs - 1000, ...lowbit }),
  ];
}

describe('agreement()', () => {
  it('should pair the variants\' results of the same windows and count those with the same anomaly flag', async () => {
    const store = openStore({ batchMs: 1 });
    const records: ResultRecord[] = [];
    for (let i = 0; i < 20; i++) records.push(...pair(T0 + i * 1000, [`m-${i}`], { anomaly: i % 5 === 0 }, { anomaly: i % 5 === 0 && i !== 10 }));
    // int8 of the same model on another device, with no fp32 beside it: nothing to pair.
    for (let i = 0; i < 5; i++) records.push(result(T0 + i, { device: 'press-9', variant: 'int8' }));
    await commitAll(store, records);
    expect(store.agreement({ sinceMs: T0 })).toEqual([{ model: VIB, variant: 'fp8-e4m3', reference: 'fp32', windows: 20, agree: 19 }]);
    expect(store.agreement({ sinceMs: T0 + 15_000 })).toEqual([{ model: VIB, variant: 'fp8-e4m3', reference: 'fp32', windows: 5, agree: 5 }]);
    expect(store.agreement({ sinceMs: T0, reference: 'fp8-e4m3' })).toEqual([{ model: VIB, variant: 'fp32', reference: 'fp8-e4m3', windows: 20, agree: 19 }]);
    expect(store.agreement({ sinceMs: T0, reference: 'fp16' })).toEqual([]);
  });

  it('should compare labels for a classifier', async () => {
    const store = openStore({ batchMs: 1 });
    const records: ResultRecord[] = [];
    const labels = ['normal', 'imbalance', 'bearing'];
    for (let i = 0; i < 30; i++) {
      // The same anomaly flag throughout: only the labels decide.
      records.push(...pair(T0 + i * 1000, [`m-${i}`], { model: FAULT, label: labels[i % 3], anomaly: false }, { model: FAULT, label: labels[i % 7 === 0 ? (i + 1) % 3 : i % 3], anomaly: false }, 'int8'));
    }
    await commitAll(store, records);
    expect(store.agreement({ sinceMs: 0 })).toEqual([{ model: FAULT, variant: 'int8', reference: 'fp32', windows: 30, agree: 25 }]);
  });

  it('should pair Node-RED\'s windows by message keys and their order, though each node dates them itself', async () => {
    const store = openStore({ batchMs: 1 });
    const records: ResultRecord[] = [];
    // Each message (a _msgid) completes 3 windows; the low-bit node dates its samples 7 ms later.
    // The low-bit result of the middle window of every message disagrees.
    for (let m = 0; m < 10; m++) {
      for (let w = 0; w < 3; w++) {
        records.push(...pair(T0 + m * 10_000 + w * 1000, [`msgid-${m}`], { anomaly: false }, { anomaly: w === 1 }, 'int8', 7));
      }
    }
    // A window spanning two messages, like the overlap of sliding windows.
    records.push(...pair(T0 + 100_000, ['msgid-9', 'msgid-10'], { anomaly: true }, { anomaly: true }, 'int8', 7));
    await commitAll(store, records);
    expect(store.agreement({ sinceMs: 0 })).toEqual([{ model: VIB, variant: 'int8', reference: 'fp32', windows: 31, agree: 21 }]);
  });

  it('should pair what it can of a message\'s windows cut at either end of what it reads', async () => {
    const store = openStore({ batchMs: 1 });
    const records: ResultRecord[] = [];
    // msgid-0: sinceMs falls between the nodes' dating of its first window, so fp32 has 2 of its 3 windows since then, int8 all 3.
    // msgid-1: the newest; int8 has logged 2 of its 3 windows so far.
    for (let w = 0; w < 3; w++) {
      records.push(result(T0 + w * 1000, { variant: 'fp32', messageKeys: ['msgid-0'], windowStartMs: T0 + w * 1000 - 1000, anomaly: w === 2 }));
      records.push(result(T0 + w * 1000 + 7, { variant: 'int8', messageKeys: ['msgid-0'], windowStartMs: T0 + w * 1000 - 993, anomaly: w === 2 }));
    }
    for (let w = 0; w < 3; w++) records.push(result(T0 + 10_000 + w * 1000, { variant: 'fp32', messageKeys: ['msgid-1'], windowStartMs: T0 + 9000 + w * 1000, anomaly: w === 0 }));
    for (let w = 0; w < 2; w++) records.push(result(T0 + 10_007 + w * 1000, { variant: 'int8', messageKeys: ['msgid-1'], windowStartMs: T0 + 9007 + w * 1000, anomaly: w === 0 }));
    await commitAll(store, records);
    // msgid-0 pairs its two newest windows, msgid-1 its two oldest: all four agree.
    expect(store.agreement({ sinceMs: T0 + 3 })).toEqual([{ model: VIB, variant: 'int8', reference: 'fp32', windows: 4, agree: 4 }]);
  });

  it('should read at most the newest 2,000 results per variant of each device and model', async () => {
    const store = openStore({ batchRows: 2000, batchMs: 1 });
    const records: ResultRecord[] = [];
    for (let i = 0; i < 3000; i++) records.push(...pair(T0 + i * 1000, [`m-${i}`], {}, {}, 'int8'));
    await commitAll(store, records);
    expect(store.agreement({ sinceMs: 0 })).toEqual([{ model: VIB, variant: 'int8', reference: 'fp32', windows: 2000, agree: 2000 }]);
  });

  it('should answer an empty log with no rows and refuse bad arguments, naming them', () => {
    const store = openStore();
    expect(store.agreement({ sinceMs: 0 })).toEqual([]);
    expect(() => store.agreement({} as { sinceMs: number })).toThrow('sinceMs: expected a time in ms since the epoch, got undefined');
    expect(() => store.agreement({ sinceMs: 0, reference: '' })).toThrow("reference: expected a non-empty string, got ''");
  });
});
