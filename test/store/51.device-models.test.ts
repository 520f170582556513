// The log of per-device model variants (device_models, migration 14) and the device variant of
// each result (results.model_sha256): a version 12 file keeps its rows, the newest row of a pair
// is its state, and a result made by a device's own variant says which.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { DEVICE_MODEL_STATES } from '../../runtime/store';
import { MIGRATIONS, SCHEMA_VERSION, migrate } from '../../runtime/store/schema';
import { connectionOf, dbPath, openStore, result } from './helpers';

const T0 = 1_700_000_000_000;
const SHA = 'ab'.repeat(32);

describe('migration 14', () => {
  it('should add device_models and results.model_sha256, keeping the rows of a version 12 file', async () => {
    const file = dbPath();
    const db = new Database(file);
    try {
      migrate(db, file, MIGRATIONS.filter((m) => m.version <= 12));
      db.prepare(`INSERT INTO results (time_ms, device, model, variant, score, label, anomaly, outputs, latency_ms, window_start_ms, window_end_ms, message_keys, processed_ms)
        VALUES (?, 'press-1', 'vibration-anomaly', 'int8', 0.7, NULL, 1, '[0.7]', 1.5, ?, ?, '["k1"]', ?)`).run(T0, T0 - 1000, T0, T0 + 3);
      db.prepare(`INSERT INTO result_streams VALUES ('press-1', 'vibration-anomaly')`).run();
    } finally {
      db.close();
    }
    const store = openStore({ path: file });
    try {
      expect(connectionOf(store).pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(MIGRATIONS.map((m) => m.version)).toContain(14);
      const [kept] = store.latestPerDevice();
      expect(kept).toMatchObject({ device: 'press-1', score: 0.7 });
      expect(kept).not.toHaveProperty('modelSha256');
      // A result of a device's own variant carries its sha256; the shared variant's none.
      await store.commit({ results: [result(T0 + 1000, { device: 'press-1', modelSha256: SHA }), result(T0 + 1000, { device: 'press-2' })] });
      const rows = store.latestPerDevice();
      expect(rows.map((r) => [r.device, r.modelSha256])).toEqual([['press-1', SHA], ['press-2', undefined]]);
    } finally {
      await store.close();
    }
  });
});

describe('DeviceModels', () => {
  it('should keep every change and give the newest per device and model as its state', async () => {
    const store = openStore();
    try {
      const log = store.deviceModels();
      expect(log.current()).toEqual([]);
      const base = { model: 'vibration-anomaly', folder: '/var/lib/edge-infer/press-1', variant: 'int8', sha256: SHA, reason: null };
      log.add({ ...base, device: 'press-1', state: 'active', sinceMs: T0 });
      log.add({ ...base, device: 'press-2', state: 'active', sinceMs: T0 + 1 });
      log.add({ ...base, device: 'press-1', state: 'rolled-back', sinceMs: T0 + 2, reason: 'it failed a batch' });
      log.add({ ...base, device: 'press-3', model: 'fault-classifier', state: 'active', sinceMs: T0 + 3 });
      log.add({ ...base, device: 'press-3', model: 'fault-classifier', state: 'cleared', sinceMs: T0 + 4, variant: null, sha256: null });
      expect(log.current().map((r) => [r.model, r.device, r.state])).toEqual([
        ['fault-classifier', 'press-3', 'cleared'],
        ['vibration-anomaly', 'press-1', 'rolled-back'],
        ['vibration-anomaly', 'press-2', 'active'],
      ]);
      expect(log.active()).toEqual([{ id: 2, device: 'press-2', ...base, state: 'active', sinceMs: T0 + 1 }]);
      expect(log.current()[1].reason).toBe('it failed a batch');
      expect([...DEVICE_MODEL_STATES]).toEqual(['active', 'rolled-back', 'cleared']);
      // A state the table does not know is refused by the database itself.
      expect(() => log.add({ ...base, device: 'press-1', state: 'paused' as never, sinceMs: T0 })).toThrow(/CHECK constraint failed/);
    } finally {
      await store.close();
    }
    expect(() => store.deviceModels()).toThrow(/deviceModels/);
  });
});
