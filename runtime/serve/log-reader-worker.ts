// The log reader's thread: one read-only connection to the log, one query at a time, answers
// posted back. Started by LogReader (log-reader.ts); never imported by anything else.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { EdgeInferError } from '../errors';
import { StoreError, messageOf } from '../store/errors';
import { LOG_QUERIES, LogQueries, type LogQueryName } from './log-queries';
import type { WorkerAnswer, WorkerData, WorkerQuery, WireError } from './log-reader';

const port = parentPort;
if (!port) throw new Error('log-reader-worker: not started as a worker thread');
const { path: file, busyTimeoutMs } = workerData as WorkerData;

/** Errors cross the thread boundary as { code, message }: the code survives, the class is rebuilt. */
function wire(err: unknown): WireError {
  if (err instanceof EdgeInferError) return { code: err.code, message: err.message };
  return { code: 'E_INTERNAL', message: messageOf(err) };
}

/** Opens the log, or tells the reader why not (and the thread ends: nothing listens). */
function openLog(): LogQueries | null {
  try {
    let db: Database.Database;
    try {
      db = new Database(file, { readonly: true, fileMustExist: true, timeout: busyTimeoutMs });
    } catch (err) {
      throw new StoreError('E_STORE_OPEN', `${file}: cannot open for reading: ${messageOf(err)}`, { cause: err });
    }
    return new LogQueries(db);
  } catch (err) {
    port!.postMessage({ ready: false, error: wire(err) } satisfies WorkerAnswer);
    return null;
  }
}

const queries = openLog();
if (queries) {
  const allowed = new Set<string>(LOG_QUERIES);
  port.on('message', (q: WorkerQuery) => {
    let answer: WorkerAnswer;
    try {
      if (!allowed.has(q.name)) throw new EdgeInferError('E_ARGUMENT', `query: expected one of ${LOG_QUERIES.join(', ')}, got '${q.name}'`);
      const run = queries[q.name as LogQueryName] as (...args: unknown[]) => unknown;
      answer = { id: q.id, ok: true, value: run.apply(queries, q.args) };
    } catch (err) {
      answer = { id: q.id, ok: false, error: wire(err) };
    }
    try {
      port.postMessage(answer);
    } catch (err) {
      port.postMessage({ id: q.id, ok: false, error: { code: 'E_INTERNAL', message: `${q.name}: the answer cannot be sent back (${messageOf(err)})` } } satisfies WorkerAnswer);
    }
  });
  port.postMessage({ ready: true } satisfies WorkerAnswer);
}
