import { existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { EdgeInferError } from '../../runtime/errors';
import { ResultStore, SCHEMA_VERSION, type StoreOptions, isStoreError } from '../../runtime/store';
import { MIGRATIONS, type Migration, migrate } from '../../runtime/store/schema';
import { connectionOf, countRows, dbPath, fileSize, openStore, pipelineUnit, tempDir } from './helpers';

const TABLES = ['alert_states', 'alerts', 'baselines', 'cursors', 'dead_letters', 'device_models', 'inbound', 'journal', 'model_updates', 'mqtt_deliveries', 'mqtt_incoming', 'mqtt_sessions', 'mqtt_subscriptions', 'outbox', 'result_hours', 'result_minutes', 'result_streams', 'results', 'taught_windows', 'windows'];

describe('ResultStore.open()', () => {
  it('should create the database file and its missing folders', () => {
    const file = path.join(tempDir(), 'a', 'b', 'log.db');
    openStore({ path: file });
    expect(existsSync(file)).toBe(true);
  });

  it('should create every table at the current schema version', () => {
    const store = openStore();
    const db = connectionOf(store);
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all();
    expect(tables).toEqual(TABLES);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
  });

  it('should put the database in WAL mode with the asked synchronous level and a busy timeout', () => {
    const levels = { off: 0, normal: 1, full: 2 } as const;
    for (const sync of ['off', 'normal', 'full'] as const) {
      const db = connectionOf(openStore({ sync }));
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('synchronous', { simple: true })).toBe(levels[sync]);
      expect(db.pragma('busy_timeout', { simple: true })).toBeGreaterThan(0);
      expect(db.pragma('wal_autocheckpoint', { simple: true })).toBeGreaterThan(0);
    }
    expect(connectionOf(openStore()).pragma('synchronous', { simple: true })).toBe(levels.normal);
  });

  it('should reopen a database with its rows', async () => {
    const file = dbPath();
    const first = ResultStore.open({ path: file });
    await first.commit(pipelineUnit(1));
    await first.close();
    const again = openStore({ path: file });
    expect(again.counts()).toMatchObject({ results: 1, inbound: 1, outbox: 1 });
    expect(again.seen('msg-1')).toBe(true);
  });

  describe('options', () => {
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['no path', { path: undefined }, /store option path: expected a database file path, got undefined/],
      ['an empty path', { path: ' ' }, /store option path/],
      ['an in-memory database', { path: ':memory:' }, /store option path: expected a file path/],
      ['an unknown sync mode', { sync: 'fast' }, /store option sync: expected one of full, normal, off, got 'fast'/],
      ['batchRows 0', { batchRows: 0 }, /store option batchRows: expected a whole number ≥ 1, got 0/],
      ['fractional batchRows', { batchRows: 1.5 }, /store option batchRows/],
      ['negative batchMs', { batchMs: -1 }, /store option batchMs: expected a whole number ≥ 0, got -1/],
      ['retention that is not an object', { retention: 7 }, /store option retention: expected/],
      ['maxAgeDays 0', { retention: { maxAgeDays: 0 } }, /store option retention.maxAgeDays: expected a number > 0, got 0/],
      ['a tiny maxBytes', { retention: { maxBytes: 1000 } }, /store option retention.maxBytes: expected a whole number ≥ 262,144, got 1000/],
      ['negative everyMs', { retention: { everyMs: -5 } }, /store option retention.everyMs/],
      ['an unknown retention option', { retention: { maxAge: 3 } }, /store option retention.maxAge: unknown option/],
      ['outboxLimit 0', { outboxLimit: 0 }, /store option outboxLimit: expected a whole number ≥ 1, got 0/],
      ['a misspelt option', { batchrows: 10 }, /store option batchrows: unknown option/],
      ['onError that is not a function', { onError: 'log' }, /store option onError: expected a function/],
    ];
    for (const [what, options, message] of cases) {
      it(`should refuse ${what} with E_ARGUMENT naming the field`, () => {
        const open = (): ResultStore => ResultStore.open({ path: dbPath(), ...options } as StoreOptions);
        expect(open).toThrow(EdgeInferError);
        expect(open).toThrow(message);
        try {
          open();
        } catch (err) {
          expect((err as EdgeInferError).code).toBe('E_ARGUMENT');
        }
      });
    }

    it('should refuse options that are not an object', () => {
      expect(() => ResultStore.open(undefined as unknown as StoreOptions)).toThrow(/store options: expected an object such as \{ path: 'data\/log.db' \}, got undefined/);
    });
  });

  describe('schema migrations', () => {
    const m1: Migration = { version: 1, name: 'readings', up: (db) => db.exec('CREATE TABLE readings (id INTEGER PRIMARY KEY, value REAL NOT NULL)') };
    const m2: Migration = { version: 2, name: 'units', up: (db) => db.exec("ALTER TABLE readings ADD COLUMN unit TEXT NOT NULL DEFAULT 'mm/s'") };
    const broken: Migration = { version: 2, name: 'broken', up: (db) => db.exec('ALTER TABLE readings ADD COLUMN x TEXT; CREATE TABLE nonsense (') };

    it('should number the shipped migrations 1, 2, 3, ... in order', () => {
      MIGRATIONS.forEach((m, i) => expect(m.version).toBe(i + 1));
      expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
    });

    it('should apply only the migrations an older database lacks, keeping its rows', () => {
      const file = dbPath();
      const db = new Database(file);
      try {
        expect(migrate(db, file, [m1])).toEqual({ from: 0, to: 1 });
        db.prepare('INSERT INTO readings (value) VALUES (4.2)').run();
        expect(migrate(db, file, [m1, m2])).toEqual({ from: 1, to: 2 });
        expect(db.prepare('SELECT value, unit FROM readings').get()).toEqual({ value: 4.2, unit: 'mm/s' });
        expect(migrate(db, file, [m1, m2])).toEqual({ from: 2, to: 2 });
      } finally {
        db.close();
      }
    });

    it('should leave the database at its version when a migration fails', () => {
      const file = dbPath();
      const db = new Database(file);
      try {
        migrate(db, file, [m1]);
        expect(() => migrate(db, file, [m1, broken])).toThrow(/migration 2 \(broken\) failed/);
        expect(db.pragma('user_version', { simple: true })).toBe(1);
        const columns = (db.prepare('PRAGMA table_info(readings)').all() as Array<{ name: string }>).map((c) => c.name);
        expect(columns).toEqual(['id', 'value']);
      } finally {
        db.close();
      }
    });

    it('should migrate a database left at version 0 (an empty file) when opened', () => {
      const file = dbPath();
      new Database(file).close();
      const store = openStore({ path: file });
      expect(connectionOf(store).pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    });

    it('should move results logged before data time to their window end, keeping when they were processed beside it (migration 7)', () => {
      const file = dbPath();
      const db = new Database(file);
      try {
        migrate(db, file, MIGRATIONS.slice(0, 6));
        db.prepare(`INSERT INTO results (time_ms, device, model, variant, score, label, anomaly, outputs, latency_ms, window_start_ms, window_end_ms, message_keys) VALUES (9000, 'pump-1', 'm', 'int8', 0.5, NULL, 0, '[]', 1, 1000, 2000, '[]')`).run();
        db.prepare(`INSERT INTO result_streams (device, model) VALUES ('pump-1', 'm')`).run();
        db.prepare(`INSERT INTO alerts (time_ms, device, model, variant, kind, label, score, threshold, message) VALUES (9000, 'pump-1', 'm', 'int8', 'anomaly', NULL, 0.9, 0.5, 'x')`).run();
      } finally {
        db.close();
      }
      const store = openStore({ path: file });
      expect(store.latestPerDevice()[0]).toMatchObject({ timeMs: 2000, processedMs: 9000, windowEndMs: 2000 });
      // The window an old alert came from is not known: it keeps its time in both.
      expect(store.alerts()[0]).toMatchObject({ timeMs: 9000, processedMs: 9000 });
    });

    it('should refuse a database newer than the code with E_STORE_SCHEMA, without touching it', () => {
      const file = dbPath();
      const db = new Database(file);
      db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
      db.close();
      const before = fileSize(file);
      expect(() => ResultStore.open({ path: file })).toThrow(new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than the ${SCHEMA_VERSION} this edge-infer knows`));
      try {
        ResultStore.open({ path: file });
      } catch (err) {
        expect(isStoreError(err, 'E_STORE_SCHEMA')).toBe(true);
      }
      const after = new Database(file, { readonly: true });
      expect(after.pragma('journal_mode', { simple: true })).toBe('delete');
      after.close();
      expect(fileSize(file)).toBe(before);
    });

    it('should refuse a file that is not a SQLite database with E_STORE_OPEN', () => {
      const file = dbPath();
      writeFileSync(file, 'this is a CSV export, not a database\n'.repeat(200));
      expect(() => ResultStore.open({ path: file })).toThrow(/not a SQLite database/);
      try {
        ResultStore.open({ path: file });
      } catch (err) {
        expect(isStoreError(err, 'E_STORE_OPEN')).toBe(true);
      }
    });
  });
});

describe('ResultStore#close()', () => {
  it('should commit what is queued before closing', async () => {
    const file = dbPath();
    const store = ResultStore.open({ path: file, batchMs: 60_000 });
    const committed = store.commit(pipelineUnit(1));
    await store.close();
    await expect(committed).resolves.toBeUndefined();
    expect(countRows(file, 'results')).toBe(1);
  });

  it('should checkpoint and truncate the WAL', async () => {
    const file = dbPath();
    const store = ResultStore.open({ path: file });
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.commit(pipelineUnit(i))));
    expect(fileSize(`${file}-wal`)).toBeGreaterThan(0);
    await store.close();
    expect(fileSize(`${file}-wal`)).toBe(0);
  });

  it('should be idempotent', async () => {
    const store = ResultStore.open({ path: dbPath() });
    const first = store.close();
    const second = store.close();
    expect(second).toBe(first);
    await expect(first).resolves.toBeUndefined();
    await expect(store.close()).resolves.toBeUndefined();
  });

  it('should reject commits and flushes after close with E_STORE_CLOSED, and throw on reads', async () => {
    const store = ResultStore.open({ path: dbPath() });
    await store.close();
    await expect(store.commit(pipelineUnit(1))).rejects.toThrow(/commit: the store at .*log\.db is closed/);
    await expect(store.commit(pipelineUnit(1))).rejects.toMatchObject({ code: 'E_STORE_CLOSED' });
    await expect(store.flush()).rejects.toMatchObject({ code: 'E_STORE_CLOSED' });
    expect(() => store.seen('msg-1')).toThrow(/seen: the store .* is closed/);
    expect(() => store.counts()).toThrow(/closed/);
    expect(() => store.outboxPeek(1)).toThrow(/closed/);
    expect(() => store.applyRetention()).toThrow(/closed/);
  });
});
