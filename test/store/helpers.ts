// Shared pieces of the store suites: temp folders, stores that are closed after each test, and
// records with sensible defaults.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach } from 'vitest';
import { type AlertRecord, type CommitUnit, type DeadLetterRecord, type ResultRecord, ResultStore, type StoreOptions, type WindowRecord } from '../../runtime/store';

const dirs: string[] = [];
const stores: ResultStore[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A temp folder removed after the test. */
export function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-store-'));
  dirs.push(dir);
  return dir;
}

/** A database path in a fresh temp folder. */
export function dbPath(name = 'log.db'): string {
  return path.join(tempDir(), name);
}

/** Opens a store closed after the test. */
export function openStore(options: Partial<StoreOptions> & { path?: string } = {}): ResultStore {
  const store = ResultStore.open({ path: dbPath(), ...options });
  stores.push(store);
  return store;
}

/** A second, raw connection to the file: what another process would see. */
export function peek<T>(file: string, read: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

export const countRows = (file: string, table: string): number => peek(file, (db) => db.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get() as number);

export const fileSize = (file: string): number => {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
};

/** The store's own connection, for checks no public call makes (pragmas). */
export const connectionOf = (store: ResultStore): Database.Database => (store as unknown as { db: Database.Database }).db;

export function result(timeMs: number, over: Partial<ResultRecord> = {}): ResultRecord {
  return {
    timeMs, device: 'press-1', model: 'vibration-anomaly', variant: 'int8', score: 0.1, label: null, anomaly: false,
    outputs: { score: [0.1] }, latencyMs: 2.5, windowStartMs: timeMs - 1000, windowEndMs: timeMs, messageKeys: [`k-${timeMs}`], processedMs: timeMs + 5, ...over,
  };
}

export function alert(timeMs: number, over: Partial<AlertRecord> = {}): AlertRecord {
  return { timeMs, device: 'press-1', model: 'vibration-anomaly', variant: 'int8', kind: 'threshold', label: null, score: 0.9, threshold: 0.8, message: 'score over threshold', processedMs: timeMs + 5, ...over };
}

export function deadLetter(timeMs: number, over: Partial<DeadLetterRecord> = {}): DeadLetterRecord {
  return { timeMs, topic: 'plant/press-1/vib', device: 'press-1', reason: 'not JSON', code: 'E_DECODE', payload: new Uint8Array([1, 2, 3]), ...over };
}

export function windowRecord(timeMs: number, over: Partial<WindowRecord> = {}): WindowRecord {
  return { timeMs, device: 'press-1', model: 'vibration-anomaly', features: new Float32Array([1, 2, 3, 4, 5, 6]), dims: [1, 2, 3], ...over };
}

/** A unit as the pipeline makes it: one inbound message, the result it fed, its republication. */
export function pipelineUnit(id: number, timeMs = 1_700_000_000_000 + id): CommitUnit {
  const key = `msg-${id}`;
  return {
    inbound: [{ topic: 'plant/press-1/vib', key, receivedMs: timeMs }],
    results: [result(timeMs, { messageKeys: [key] })],
    outbox: [{ topic: 'edge/press-1/score', payload: JSON.stringify({ id }), qos: 1 }],
  };
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Whether a promise has settled, without waiting for it. */
export async function settled(p: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending');
  const winner = await Promise.race([p.then(() => true, () => true), new Promise<symbol>((r) => setImmediate(() => r(marker)))]);
  return winner !== marker;
}
