// LogReader: the log's read queries on a worker thread with a read-only connection. Real SQLite
// files in temp dirs; the gateway's side is a ResultStore in this thread.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { EdgeInferError } from '../../runtime/errors';
import { LOG_QUERIES, LogReader, type LogReaderOptions } from '../../runtime/serve/log-reader';
import { ResultStore, isStoreError } from '../../runtime/store';
import { alert, dbPath, deadLetter, openStore, pipelineUnit, result, sleep, windowRecord } from '../store/helpers';

const readers: LogReader[] = [];
afterEach(async () => {
  for (const r of readers.splice(0)) await r.close();
});

async function openReader(options: LogReaderOptions): Promise<LogReader> {
  const reader = await LogReader.open(options);
  readers.push(reader);
  return reader;
}

/** The rejection of a promise (fails when it resolves). */
async function rejection(p: Promise<unknown>): Promise<EdgeInferError> {
  try {
    await p;
  } catch (err) {
    return err as EdgeInferError;
  }
  throw new Error('expected a rejection');
}

const T0 = 1_700_000_000_000;

/** A log with results of two devices and two models, alerts, dead letters and windows, all committed. */
async function smallLog(): Promise<ResultStore> {
  const store = openStore({ batchMs: 1 });
  for (let i = 0; i < 50; i++) {
    await store.commit({
      results: [
        result(T0 + i * 1000, { device: 'press-1', score: (i % 7) / 7, anomaly: i % 7 === 6, label: i % 2 ? 'ok' : null, rms: i % 3 ? 0.5 + i / 100 : null, latencyMs: 1 + (i % 4) }),
        result(T0 + i * 1000 + 1, { device: 'press-2', model: 'temperature', score: (i % 5) / 5 }),
        // The fp32 twin of press-1's window, for agreement().
        result(T0 + i * 1000, { device: 'press-1', variant: 'fp32', score: (i % 7) / 7, anomaly: i % 7 === 6 && i !== 20, label: i % 2 ? 'ok' : null, latencyMs: 3 }),
      ],
      alerts: i % 10 === 0 ? [alert(T0 + i * 1000, { device: i % 20 ? 'press-1' : 'press-2' })] : [],
      deadLetters: i % 12 === 0 ? [deadLetter(T0 + i * 1000)] : [],
      windows: i % 8 === 0 ? [windowRecord(T0 + i * 1000, { device: i % 16 ? 'press-1' : 'press-2' })] : [],
    });
  }
  await store.commit(pipelineUnit(1000));
  return store;
}

/**
 * A log of `n` results (8 devices, one model, one a second) written in one statement: a million
 * through commit() takes far longer and tests nothing here.
 */
function bigLog(n: number): string {
  const file = dbPath();
  ResultStore.open({ path: file }).close();
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(`
    WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n + 1 < ${n})
    INSERT INTO results (time_ms, device, model, variant, score, label, anomaly, outputs, latency_ms, window_start_ms, window_end_ms, message_keys, processed_ms)
    SELECT ${T0} + n * 1000, 'press-' || (n % 8), 'vibration-anomaly', 'int8', (n % 100) / 100.0, NULL, n % 100 > 95, '{}', 1.0, ${T0} + n * 1000 - 1000, ${T0} + n * 1000, '[]', ${T0} + n * 1000 FROM i;
    INSERT INTO result_streams SELECT DISTINCT device, model FROM results;`);
  db.close();
  return file;
}

describe('LogReader: answers', () => {
  it('should answer each allowed query as the store itself does', async () => {
    const store = await smallLog();
    const reader = await openReader({ path: store.path });
    const cases: Array<[string, unknown[]]> = [
      ['latestPerDevice', []],
      ['latestPerDevice', [{ model: 'temperature' }]],
      ['series', [{ device: 'press-1', model: 'vibration-anomaly', fromMs: T0, toMs: T0 + 60_000, maxPoints: 1000 }]],
      ['series', [{ device: 'press-1', model: 'vibration-anomaly', fromMs: T0, toMs: T0 + 60_000, maxPoints: 7 }]],
      ['chart', [{ device: 'press-1', model: 'vibration-anomaly', fromMs: T0, toMs: T0 + 60_000, maxPoints: 1000 }]],
      ['chart', [{ device: 'press-1', model: 'vibration-anomaly', fromMs: T0, toMs: T0 + 60_000, maxPoints: 7 }]],
      ['aggregates', [{ fromMs: T0, toMs: T0 + 60_000, bucketMs: 10_000 }]],
      ['aggregates', [{ fromMs: T0, toMs: T0 + 60_000, bucketMs: 10_000, device: 'press-2', model: 'temperature' }]],
      ['alerts', []],
      ['alerts', [{ device: 'press-1', fromMs: T0 + 5000, limit: 2 }]],
      ['alerts', [{ active: true }]],
      ['chart', [{ device: 'press-1', model: 'vibration-anomaly', fromMs: T0, toMs: T0 + 60_000, maxPoints: 1000, field: 'rms' }]],
      ['chart', [{ device: 'press-1', model: 'vibration-anomaly', fromMs: T0, toMs: T0 + 60_000, maxPoints: 7, field: 'rms' }]],
      ['modelStats', [{ sinceMs: 0 }]],
      ['agreement', [{ sinceMs: T0 }]],
      ['agreement', [{ sinceMs: T0, reference: 'int8' }]],
      ['deadLetters', []],
      ['deadLetters', [{ sinceMs: T0 + 20_000, limit: 1 }]],
      ['windows', ['vibration-anomaly']],
      ['windows', ['vibration-anomaly', { device: 'press-2', limit: 2 }]],
      ['counts', []],
    ];
    const asked = new Set<string>();
    for (const [name, args] of cases) {
      const own = (store as unknown as Record<string, (...a: unknown[]) => unknown>)[name].apply(store, args);
      const read = await reader.query(name as 'counts', ...(args as []));
      expect(read, `${name}(${JSON.stringify(args)})`).toEqual(own);
      asked.add(name);
    }
    // lastTeachIn is the reader's own (the store keeps no such read): below.
    expect([...asked, 'lastTeachIn'].sort()).toEqual([...LOG_QUERIES].sort());
    // The new queries answer something to compare, not empty lists.
    expect(await reader.query('alerts', { active: true })).toHaveLength(1);
    expect(await reader.query('agreement', { sinceMs: T0 })).toEqual([{ model: 'vibration-anomaly', variant: 'int8', reference: 'fp32', windows: 50, agree: 49 }]);
    expect((await reader.query('modelStats', { sinceMs: 0 })).map((r) => r.variant)).toEqual(['int8', 'fp32', 'int8']);
    // BLOBs arrive as Buffers, features as Float32Arrays, as from the store.
    const [letter] = await reader.query('deadLetters');
    expect(Buffer.isBuffer(letter.payload)).toBe(true);
    const [w] = await reader.query('windows', 'vibration-anomaly');
    expect(w.features).toBeInstanceOf(Float32Array);
  });

  it("should pass the store's own argument errors through with their codes", async () => {
    const store = await smallLog();
    const reader = await openReader({ path: store.path });
    const bad: Array<[string, unknown[]]> = [
      ['series', [{ device: 'press-1', model: 'vibration-anomaly', fromMs: T0 + 10, toMs: T0, maxPoints: 10 }]],
      ['series', [{ device: '', model: 'vibration-anomaly', fromMs: T0, toMs: T0 + 1, maxPoints: 10 }]],
      ['chart', [{ device: 'press-1', model: 'vibration-anomaly', fromMs: T0, toMs: T0 + 1, maxPoints: 100_001 }]],
      ['series', [{ device: 'press-1', model: 'vibration-anomaly', fromMs: 9e15, toMs: 9e15 + 1, maxPoints: 10 }]],
      ['aggregates', [{ fromMs: T0, toMs: T0 + 1, bucketMs: 0 }]],
      ['alerts', [{ limit: -1 }]],
      ['deadLetters', [{ sinceMs: 'yesterday' }]],
      ['windows', ['']],
      ['latestPerDevice', [{ model: 42 }]],
      ['chart', [{ device: 'press-1', model: 'vibration-anomaly', fromMs: T0, toMs: T0 + 1, maxPoints: 10, field: 'temperature' }]],
      ['alerts', [{ active: 1 }]],
      ['modelStats', [{}]],
      ['agreement', [{ sinceMs: T0, reference: '' }]],
    ];
    for (const [name, args] of bad) {
      let own: EdgeInferError | undefined;
      try {
        (store as unknown as Record<string, (...a: unknown[]) => unknown>)[name].apply(store, args);
      } catch (err) {
        own = err as EdgeInferError;
      }
      expect(own?.code, name).toBe('E_ARGUMENT');
      const err = await rejection(reader.query(name as 'counts', ...(args as [])));
      expect(err).toBeInstanceOf(EdgeInferError);
      expect({ code: err.code, message: err.message }, name).toEqual({ code: own!.code, message: own!.message });
    }
    expect(await reader.query('counts')).toEqual(store.counts()); // and it keeps answering
  });

  it('should answer the newest teach-in of a device\'s model that ended, as the store wrote it, and name a bad argument', async () => {
    const store = await smallLog();
    const reader = await openReader({ path: store.path });
    const baselines = store.baselines();
    expect(await reader.query('lastTeachIn', 'press-1', 'vibration-anomaly')).toBeNull();
    const rule = { device: 'press-1', model: 'vibration-anomaly', startedBy: 'otto', targetWindows: null, targetMinutes: 0.5, quantile: 0.999, margin: 1, cardThreshold: 0.8 };
    const failed = baselines.start({ ...rule, startedMs: T0 });
    baselines.ended(failed.id, 'failed', 12, T0 + 40_000, '12 windows learned in 0.5 min, fewer than the 100 a baseline needs');
    // One still learning is not one that ended; another device's is not this one's.
    baselines.start({ ...rule, startedMs: T0 + 50_000 });
    const other = baselines.start({ ...rule, device: 'press-2', startedMs: T0 + 60_000 });
    baselines.ended(other.id, 'cancelled', 3, T0 + 61_000, null);
    expect(await reader.query('lastTeachIn', 'press-1', 'vibration-anomaly')).toEqual({
      state: 'failed', reason: '12 windows learned in 0.5 min, fewer than the 100 a baseline needs', windows: 12, targetWindows: null, targetMinutes: 0.5, startedBy: 'otto', startedMs: T0, endedMs: T0 + 40_000, threshold: null,
    });
    expect(await reader.query('lastTeachIn', 'press-2', 'vibration-anomaly')).toMatchObject({ state: 'cancelled', windows: 3 });
    for (const [device, model, message] of [
      ['', 'vibration-anomaly', 'lastTeachIn: device: expected a name, got ""'],
      ['press-1', 42, 'lastTeachIn: model: expected a name, got 42'],
    ] as const) {
      const err = await rejection(reader.query('lastTeachIn', device, model as string));
      expect({ code: err.code, message: err.message }).toEqual({ code: 'E_ARGUMENT', message });
    }
  });

  it('should refuse an unknown query by name, listing the ones it answers', async () => {
    const store = await smallLog();
    const reader = await openReader({ path: store.path });
    for (const name of ['dropTable', 'outboxPeek', 'commit', 'constructor']) {
      const err = await rejection(reader.query(name as 'counts'));
      expect(err.code).toBe('E_ARGUMENT');
      expect(err.message).toBe(`query: expected one of latestPerDevice, series, chart, aggregates, alerts, modelStats, agreement, deadLetters, windows, counts, lastTeachIn, got '${name}'`);
    }
  });

  it('should refuse a missing file and a file not migrated, at open', async () => {
    const missing = path.join(path.dirname(dbPath()), 'none.db');
    const err = await rejection(LogReader.open({ path: missing }));
    expect(isStoreError(err, 'E_STORE_OPEN')).toBe(true);
    expect(err.message).toContain('none.db: cannot open for reading');
    expect(existsSync(missing)).toBe(false);
    const blank = dbPath();
    new Database(blank).close();
    const schema = await rejection(LogReader.open({ path: blank }));
    expect(schema.code).toBe('E_STORE_SCHEMA');
    expect(schema.message).toContain('let the gateway open (and migrate) it first');
    expect((await rejection(LogReader.open({ path: blank, timeoutMs: 0 }))).message).toBe('timeoutMs: expected a whole number ≥ 1, got 0');
  });
});

describe('LogReader: beside the writer', () => {
  it('should see each commit of a ResultStore writing in this thread (WAL)', async () => {
    const store = openStore();
    await store.commit(pipelineUnit(0, T0));
    const reader = await openReader({ path: store.path });
    let committed = 1;
    let stop = false;
    // The gateway's side: commits back to back for the whole test.
    const writing = (async () => {
      for (let i = 1; !stop; i++) {
        await store.commit(pipelineUnit(i, T0 + i));
        committed = i + 1;
      }
    })();
    for (let k = 0; k < 50; k++) {
      const before = committed;
      const [latest] = await reader.query('latestPerDevice');
      const { results } = await reader.query('counts');
      expect(latest.timeMs).toBeGreaterThanOrEqual(T0 + before - 1);
      expect(results).toBeGreaterThanOrEqual(before);
      await sleep(2);
    }
    stop = true;
    await writing;
    expect(committed).toBeGreaterThan(5);
    expect((await reader.query('counts')).results).toBe(committed);
  });

  it('should leave ingestion unharmed while heavy queries run; the same queries in this thread block it', async () => {
    const file = bigLog(1_000_000);
    const store = ResultStore.open({ path: file });
    const reader = await openReader({ path: file, timeoutMs: 60_000 });
    const heavy = { fromMs: T0, toMs: T0 + 1_000_000_000, bucketMs: 3_600_000 };
    const started = performance.now();
    const rows = store.aggregates(heavy);
    const oneQueryMs = performance.now() - started;
    expect(rows.reduce((n, r) => n + r.count, 0)).toBe(1_000_000);

    /** Commits back to back for `ms` while `query` runs in a loop; the event loop's delay and the commits made. */
    async function ingestWhile(query: () => Promise<unknown>, ms: number): Promise<{ p99Ms: number; maxMs: number; commits: number; queries: number }> {
      let stop = false;
      let queries = 0;
      const querying = (async () => {
        while (!stop) {
          await query();
          queries++;
        }
      })();
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      let commits = 0;
      const until = performance.now() + ms;
      for (let i = 0; performance.now() < until; i++) {
        await store.commit(pipelineUnit(10_000_000 + commits, T0 + 2_000_000_000 + commits));
        commits++;
      }
      delay.disable();
      stop = true;
      await querying;
      return { p99Ms: delay.percentile(99) / 1e6, maxMs: delay.max / 1e6, commits, queries };
    }

    const off = await ingestWhile(() => reader.query('aggregates', heavy), 3000);
    const on = await ingestWhile(async () => {
      store.aggregates(heavy);
      await new Promise((r) => setImmediate(r));
    }, 3000);
    await store.close();
    const report = `one query ${oneQueryMs.toFixed(0)} ms; worker: ${JSON.stringify(off)}; this thread: ${JSON.stringify(on)}`;
    expect(off.queries, report).toBeGreaterThanOrEqual(2);
    expect(off.p99Ms, report).toBeLessThan(20);
    expect(off.commits, report).toBeGreaterThan(2 * on.commits);
    // The comparison shows the bound can fail: in this thread each query stalls the loop.
    expect(on.p99Ms, report).toBeGreaterThan(Math.min(50, oneQueryMs / 2));
  });
});

describe('LogReader: bounds', () => {
  it('should answer a query past its bound with an error naming both, and keep answering on a fresh thread', async () => {
    const file = bigLog(300_000);
    const reader = await openReader({ path: file, timeoutMs: 100 });
    const heavy = { fromMs: T0, toMs: T0 + 1_000_000_000, bucketMs: 1000 };
    const err = await rejection(reader.query('aggregates', heavy));
    expect(err.code).toBe('E_QUERY_TIMEOUT');
    expect(err.message).toBe("aggregates: no answer within 100 ms (the reader's bound); the query was stopped");
    expect((await reader.query('latestPerDevice')).length).toBe(8);
    expect((await reader.query('series', { device: 'press-3', model: 'vibration-anomaly', fromMs: T0, toMs: T0 + 100_000, maxPoints: 1000 })).length).toBe(13);
  });

  it('should not pile up threads when query after query runs past its bound', async () => {
    const file = bigLog(300_000);
    const reader = await openReader({ path: file, timeoutMs: 100 });
    const heavy = { fromMs: T0, toMs: T0 + 1_000_000_000, bucketMs: 1000 };
    const most: number[] = [];
    for (let i = 0; i < 4; i++) {
      expect((await rejection(reader.query('aggregates', heavy))).code).toBe('E_QUERY_TIMEOUT');
      most.push(reader.threads);
    }
    // Threads let go still finish their statements: past one of them, a fresh thread waits for one to end.
    expect(Math.max(...most)).toBeLessThanOrEqual(2);
    expect((await reader.query('latestPerDevice')).length).toBe(8);
  });

  it('should refuse a query with "busy" past the queue bound, and answer the others', async () => {
    const store = await smallLog();
    const reader = await openReader({ path: store.path, maxQueued: 3 });
    const asked = Array.from({ length: 4 }, () => reader.query('counts')); // one runs, three wait
    const err = await rejection(reader.query('latestPerDevice'));
    expect(err.code).toBe('E_BUSY');
    expect(err.message).toBe('latestPerDevice: busy, 3 queries already wait for the log reader (at most 3); ask again later');
    for (const answer of await Promise.all(asked)) expect(answer).toEqual(store.counts());
    expect((await reader.query('latestPerDevice')).length).toBe(2);
  });

  it('should refuse queries after close(), and reject those still waiting', async () => {
    const store = await smallLog();
    const reader = await LogReader.open({ path: store.path });
    const waiting = [reader.query('counts'), reader.query('alerts')].map(rejection);
    await reader.close();
    for (const err of await Promise.all(waiting)) expect(err.code).toBe('E_STORE_CLOSED');
    expect((await rejection(reader.query('counts'))).message).toBe(`counts: the log reader of ${store.path} is closed`);
    await reader.close(); // idempotent
  });
});

describe('LogReader: loading', () => {
  const root = path.resolve(__dirname, '..', '..');
  /** Runs a child that opens a reader, asks, closes and returns normally: it must exit on its own. */
  function child(requireArgs: string[], entry: string, file: string): { status: number | null; stdout: string; stderr: string } {
    const script = `
      const { LogReader } = require(${JSON.stringify(entry)});
      (async () => {
        const reader = await LogReader.open({ path: ${JSON.stringify(file)} });
        const counts = await reader.query('counts');
        const [latest] = await reader.query('latestPerDevice');
        console.log(JSON.stringify({ results: counts.results, device: latest.device }));
        await reader.close();
      })().catch((err) => { console.error(err.code, err.message); process.exitCode = 2; });`;
    const r = spawnSync(process.execPath, [...requireArgs, '-e', script], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('should load its worker from the TypeScript sources, and let the process exit after close()', async () => {
    const store = await smallLog();
    const r = child(['--require', require.resolve('tsx/cjs')], path.join(root, 'runtime/serve/log-reader.ts'), store.path);
    expect(r, r.stderr).toMatchObject({ status: 0 });
    expect(JSON.parse(r.stdout)).toEqual({ results: 151, device: 'press-1' });
  });

  it.runIf(existsSync(path.join(root, 'dist/runtime/serve/log-reader-worker.js')))('should load its worker from the compiled dist/ (npm run build), and let the process exit after close()', async () => {
    const store = await smallLog();
    const r = child([], path.join(root, 'dist/runtime/serve/log-reader.js'), store.path);
    expect(r, r.stderr).toMatchObject({ status: 0 });
    expect(JSON.parse(r.stdout)).toEqual({ results: 151, device: 'press-1' });
  });
});
