// The healthy windows a teach-in learns, recorded in a real log file (taught_windows, migration
// 13): grouped writes, the bound per baseline, a restart, and only for anomaly models.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { TAUGHT_WINDOWS_MAX, TaughtWindows, taughtWindowsOf } from '../../runtime/finetune';
import type { ModelCard } from '../../runtime/model';
import type { ResultStore } from '../../runtime/store';
import { TeachIn } from '../../runtime/teachin';
import { countRows, dbPath, openStore, peek, result } from '../store/helpers';

const T0 = 1_700_000_000_000;
const anomalyCard = { id: 'vibration-anomaly', task: 'anomaly', output: { tensor: 'score', threshold: 11.19 } } as unknown as ModelCard;
const regressionCard = { id: 'wear', task: 'regression', output: { tensor: 'wear', threshold: 0.8 } } as unknown as ModelCard;
const cards = new Map([[anomalyCard.id, anomalyCard], [regressionCard.id, regressionCard]]);

/** Window i's features: 192 values that say which window they are. */
const featuresOf = (i: number): Float32Array => Float32Array.from({ length: 192 }, (_, k) => i + k / 1000);

function teachInOn(store: ResultStore): TeachIn {
  return new TeachIn(store.baselines(), { card: (m) => cards.get(m), knows: () => true, now: () => T0 }, { minWindows: 10 });
}

async function feed(store: ResultStore, t: TeachIn, card: ModelCard, from: number, count: number): Promise<void> {
  const records = Array.from({ length: count }, (_, i) => result(T0 + (from + i) * 1000, { model: card.id, score: 1 + (i % 3) * 0.1, outputs: [1] }));
  await store.commit({ results: records });
  records.forEach((r, i) => t.learn(card, r, featuresOf(from + i)));
}

describe('the taught windows recorder', () => {
  it('should record each learned window of an anomaly teach-in, grouped, readable as the newest active baseline\'s', async () => {
    const file = dbPath();
    const store = openStore({ path: file });
    const t = teachInOn(store);
    t.start('press-1', 'vibration-anomaly', { windows: 30 });
    await feed(store, t, anomalyCard, 0, 30);
    expect(t.status('press-1', 'vibration-anomaly').state).toBe('active');
    // 30 windows, one transaction: written when the teach-in ended, before it became active.
    expect(t.recorder.stats).toEqual({ windows: 30, bytes: 30 * 192 * 4, transactions: 1, dropped: 0, replaced: 0 });
    expect(peek(file, (db) => taughtWindowsOf(db, 'press-1', 'vibration-anomaly'))?.features).toHaveLength(30);
    // Taught again: the newer baseline's windows replace the superseded one's.
    t.start('press-1', 'vibration-anomaly', { windows: 12 });
    await feed(store, t, anomalyCard, 100, 12);
    expect(peek(file, (db) => taughtWindowsOf(db, 'press-1', 'vibration-anomaly'))?.features[0]).toEqual(featuresOf(100));
    expect(countRows(file, 'taught_windows')).toBe(12);
    await store.close();
    const set = peek(file, (db) => taughtWindowsOf(db, 'press-1', 'vibration-anomaly'));
    expect(set?.features).toHaveLength(12);
    expect(set?.features[7]).toEqual(featuresOf(107));
    expect(set?.firstWindowMs).toBe(T0 + 100_000);
    expect(set?.lastWindowMs).toBe(T0 + 111_000);
    expect(peek(file, (db) => taughtWindowsOf(db, 'press-2', 'vibration-anomaly'))).toBeNull();
  });

  it('should keep at most its bound per baseline, in groups, and refuse an empty window', () => {
    const file = dbPath();
    openStore({ path: file });
    const db = new Database(file);
    const baseline = Number(db.prepare("INSERT INTO baselines (device, model, state, started_ms, quantile, margin) VALUES ('d', 'm', 'learning', 0, 0.999, 1)").run().lastInsertRowid);
    const r = new TaughtWindows(db, { max: 25, group: 10 });
    for (let i = 0; i < 40; i++) r.add(baseline, i, featuresOf(i));
    expect(r.count(baseline)).toBe(25);
    r.flush();
    expect(countRows(file, 'taught_windows')).toBe(25);
    expect(r.stats.windows).toBe(25);
    expect(r.stats.replaced + r.stats.dropped).toBe(15);
    expect(r.stats.replaced).toBeGreaterThan(0);
    // An empty window is not kept.
    expect(new TaughtWindows(db).add(baseline + 1, 0, new Float32Array(0))).toBe(false);
    db.close();
    expect(TAUGHT_WINDOWS_MAX).toBe(5000);
  });

  it('should keep a uniform sample of a long teach-in, not its first windows, writing fewer of them as it goes, the same sample for the same windows', () => {
    const sample = (): { times: number[]; stats: TaughtWindows['stats'] } => {
      const file = dbPath();
      openStore({ path: file });
      const db = new Database(file);
      const baseline = Number(db.prepare("INSERT INTO baselines (device, model, state, started_ms, quantile, margin) VALUES ('d', 'm', 'active', 0, 0.999, 1)").run().lastInsertRowid);
      const r = new TaughtWindows(db, { max: 100, group: 50 });
      for (let i = 0; i < 2000; i++) r.add(baseline, T0 + i * 200, featuresOf(i), i + 1);
      r.flush();
      const set = taughtWindowsOf(db, 'd', 'm')!;
      db.close();
      // Each kept window's features still say which window it was, and it is in data-time order.
      const times = set.features.map((f) => f[0]);
      expect(times).toEqual([...times].sort((a, b) => a - b));
      expect(set.firstWindowMs).toBe(T0 + times[0] * 200);
      return { times, stats: { ...r.stats } };
    };
    const { times, stats } = sample();
    expect(times).toHaveLength(100);
    // Each quarter of the 2,000 windows holds about a quarter of the sample (25 expected).
    for (let q = 0; q < 4; q++) expect(times.filter((t) => t >= q * 500 && t < (q + 1) * 500).length, `quarter ${q + 1}`).toBeGreaterThanOrEqual(12);
    expect(times.filter((t) => t >= 1000).length).toBeGreaterThanOrEqual(35);
    // About max × ln(n / max) = 300 replacements, grouped: no transaction per window.
    expect(stats.replaced).toBeGreaterThan(200);
    expect(stats.replaced).toBeLessThan(420);
    expect(stats.windows).toBe(100);
    expect(stats.transactions).toBeLessThanOrEqual(2 + Math.ceil(stats.replaced / 50) + 1);
    expect(sample().times).toEqual(times);
  });

  it('should resume its count after a restart, so the bound holds across it', () => {
    const file = dbPath();
    openStore({ path: file });
    let db = new Database(file);
    const baseline = Number(db.prepare("INSERT INTO baselines (device, model, state, started_ms, quantile, margin) VALUES ('d', 'm', 'learning', 0, 0.999, 1)").run().lastInsertRowid);
    let r = new TaughtWindows(db, { max: 20, group: 5 });
    for (let i = 0; i < 12; i++) r.add(baseline, i, featuresOf(i));
    // The 2 windows not yet grouped are lost with the process; the 10 written stay.
    db.close();
    db = new Database(file);
    r = new TaughtWindows(db, { max: 20, group: 5 });
    expect(r.count(baseline)).toBe(10);
    for (let i = 0; i < 30; i++) r.add(baseline, 100 + i, featuresOf(100 + i));
    r.flush();
    expect(countRows(file, 'taught_windows')).toBe(20);
    db.close();
  });

  it('should record nothing for a model that is not an anomaly model, and forget a cancelled teach-in\'s windows', async () => {
    const file = dbPath();
    const store = openStore({ path: file });
    await store.commit({ results: [result(T0 - 1000, { model: 'wear' })] });
    const t = teachInOn(store);
    t.start('press-1', 'wear', { windows: 20 });
    await feed(store, t, regressionCard, 0, 20);
    expect(t.status('press-1', 'wear').state).toBe('active');
    expect(t.recorder.stats.windows).toBe(0);

    // Cancelled after 300 windows: the 250 already written and the 50 pending go.
    t.start('press-1', 'vibration-anomaly', { windows: 1000 });
    await feed(store, t, anomalyCard, 100, 300);
    expect(t.recorder.stats.windows).toBe(250);
    t.cancel('press-1', 'vibration-anomaly');
    await store.close();
    expect(countRows(file, 'taught_windows')).toBe(0);
  });
});
