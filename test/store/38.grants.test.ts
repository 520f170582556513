import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ResultStore } from '../../runtime/store';
import { MIGRATIONS, migrate } from '../../runtime/store/schema';
import { dbPath, openStore, peek } from './helpers';

const grant = (filter: string, granted = 1, askedQos = 1, grantedMs = 1_700_000_000_000) => ({ filter, askedQos, granted, grantedMs });

describe("the broker's grants at an MQTT client's last SUBSCRIBE", () => {
  it('should be on disk when save() returns, and read back after the file is reopened', async () => {
    const file = dbPath();
    const first = ResultStore.open({ path: file });
    first.grants('gw-1').save([grant('plant/+/vibration'), grant('plant/+/temperature', 0, 1)]);
    expect(peek(file, (db) => db.prepare('SELECT client_id, filter, asked_qos, granted FROM mqtt_subscriptions ORDER BY filter').all())).toEqual([
      { client_id: 'gw-1', filter: 'plant/+/temperature', asked_qos: 1, granted: 0 },
      { client_id: 'gw-1', filter: 'plant/+/vibration', asked_qos: 1, granted: 1 },
    ]);
    await first.close();
    expect(openStore({ path: file }).grants('gw-1').all()).toEqual([grant('plant/+/temperature', 0, 1), grant('plant/+/vibration')]);
  });

  it('should replace the grant of a filter subscribed to again, keep the other filters, and keep each client id apart', () => {
    const store = openStore();
    const a = store.grants('gw-a');
    const b = store.grants('gw-b');
    a.save([grant('plant/#', 1), grant('line/#', 2, 2)]);
    b.save([grant('plant/#', 0, 0)]);
    a.save([grant('plant/#', 0x80, 2, 1_700_000_001_000)]);
    expect(a.all()).toEqual([grant('line/#', 2, 2), grant('plant/#', 0x80, 2, 1_700_000_001_000)]);
    a.clear();
    expect(a.all()).toEqual([]);
    expect(b.all()).toEqual([grant('plant/#', 0, 0)]);
  });

  it('should come to a log from before grants were kept (schema 6) by migration, with no grant remembered', async () => {
    const file = dbPath();
    const old = new Database(file);
    migrate(old, file, MIGRATIONS.filter((m) => m.version <= 6));
    old.close();
    expect(openStore({ path: file }).grants('gw-1').all()).toEqual([]);
  });
});
