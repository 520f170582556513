// The K-run teach-in rule: a threshold derived from the lowest score of each run of K consecutive
// windows (K, the alert's windows in a row), so a lone spike taught does not raise it and a run
// of K high scores does; K = 1 is the single-window rule exactly. Then through a TeachIn on a real
// log: the host's K recorded with the baseline, the scores read back in data-time order after a
// restart, and migration 15 on a log written by the schema before it.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { ModelCard } from '../../runtime/model';
import { type ResultStore, SCHEMA_VERSION } from '../../runtime/store';
import { MIGRATIONS, migrate } from '../../runtime/store/schema';
import { statusLine } from '../../runtime/cli/teach-in';
import { RUN_MARGIN_DEFAULT, TEACH_IN_DEFAULTS, TeachIn, deriveThreshold, quantileOf, runMinima } from '../../runtime/teachin';
import { thrown } from '../helpers/errors';
import { dbPath, openStore, result } from '../store/helpers';

/** Healthy-looking scores around 3: a fixed pseudo-random series (a hash of the index), the same every run. */
function healthy(n: number, seed = 1): number[] {
  return Array.from({ length: n }, (_, i) => {
    let h = Math.imul(i + 1, 0x9e3779b1) ^ seed;
    h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
    return 3 + ((h >>> 8) / 2 ** 24) * 1.5; // 3 .. 4.5
  });
}

/** The single-window rule as it was written before K existed, for comparison. */
function singleWindowRule(scores: number[], q: number, margin: number): number {
  const sorted = [...scores].sort((a, b) => a - b);
  const qs = quantileOf(sorted, q);
  const t = qs + margin * (qs - quantileOf(sorted, 0.5));
  const max = sorted[sorted.length - 1];
  return t > max ? t : max + Math.max(Math.abs(max), 1) * 4 * Number.EPSILON;
}

describe('runMinima', () => {
  it('should give the lowest of each run of k consecutive scores, in order', () => {
    expect([...runMinima([5, 1, 4, 2, 8, 7, 3], 3)]).toEqual([1, 1, 2, 2, 3]);
    expect([...runMinima([5, 1, 4], 1)]).toEqual([5, 1, 4]);
    expect([...runMinima([5, 1, 4], 3)]).toEqual([1]);
  });

  it('should agree with the plain definition on a long series with ties and any k', () => {
    const s = healthy(3000).map((v) => Math.round(v * 4) / 4); // ties
    for (const k of [2, 3, 7, 50]) {
      const plain = Array.from({ length: s.length - k + 1 }, (_, i) => Math.min(...s.slice(i, i + k)));
      expect([...runMinima(s, k)]).toEqual(plain);
    }
  });
});

describe('deriveThreshold with K (the alert\'s windows in a row)', () => {
  const rule = { quantile: 0.99, margin: 1 };

  it('should not raise the threshold for a lone spike, where the single-window rule goes above it', () => {
    const base = healthy(1000);
    const spiky = [...base];
    spiky[500] = 23; // one window of a knock, as pump-1 taught one
    const k3 = deriveThreshold(spiky, { ...rule, consecutive: 3 });
    expect(k3.threshold).toBeLessThan(5);
    expect(k3.threshold).toBeCloseTo(deriveThreshold(base, { ...rule, consecutive: 3 }).threshold, 1);
    expect(k3).toMatchObject({ maxScore: 23, consecutive: 3, rule: 'runs', windows: 1000 });
    expect(k3.maxRunScore).toBeLessThan(4.5);
    expect(deriveThreshold(spiky, rule).threshold).toBeGreaterThan(23);
  });

  it('should put the threshold above a run of K high scores, and not above a run of K − 1', () => {
    const run3 = healthy(1000);
    run3.splice(400, 3, 20, 21, 22);
    const d = deriveThreshold(run3, { ...rule, consecutive: 3 });
    expect(d.maxRunScore).toBe(20);
    expect(d.threshold).toBeGreaterThan(20); // never below the floor: K windows in a row at 20 were declared healthy
    const run2 = healthy(1000);
    run2.splice(400, 2, 20, 21);
    expect(deriveThreshold(run2, { ...rule, consecutive: 3 }).threshold).toBeLessThan(5);
  });

  it('should depend on the windows\' order: the same scores apart or in a row give other thresholds', () => {
    const apart = healthy(600);
    for (const i of [100, 200, 300]) apart[i] = 15;
    const together = healthy(600);
    together.splice(100, 3, 15, 15, 15);
    const sameScores = (a: number[]): number[] => [...a].sort((x, y) => x - y);
    expect(sameScores(apart.filter((v) => v === 15))).toEqual(sameScores(together.filter((v) => v === 15)));
    expect(deriveThreshold(apart, { ...rule, consecutive: 3 }).threshold).toBeLessThan(5);
    expect(deriveThreshold(together, { ...rule, consecutive: 3 }).threshold).toBeGreaterThan(15);
  });

  it('should keep today\'s rule exactly for K = 1, given or left out', () => {
    for (const scores of [healthy(1000), [...healthy(999), 23], [3, 3, 3], [7]]) {
      const today = singleWindowRule(scores, TEACH_IN_DEFAULTS.quantile, TEACH_IN_DEFAULTS.margin);
      const left = deriveThreshold(scores, TEACH_IN_DEFAULTS);
      expect(left.threshold).toBe(today);
      expect(deriveThreshold(scores, { ...TEACH_IN_DEFAULTS, consecutive: 1 })).toEqual(left);
      expect(left).toMatchObject({ consecutive: 1, rule: 'windows', maxRunScore: left.maxScore });
    }
  });

  it('should refuse a K that is not a whole number ≥ 1, or more than the windows taught, in one line', () => {
    const s = healthy(10);
    const msg = (k: unknown): string => thrown(() => deriveThreshold(s, { ...rule, consecutive: k as number })).message;
    expect(msg(0)).toBe('teach-in: consecutive (the alert\'s windows in a row) must be a whole number ≥ 1, got 0');
    expect(msg(2.5)).toBe('teach-in: consecutive (the alert\'s windows in a row) must be a whole number ≥ 1, got 2.5');
    expect(msg(Number.NaN)).toBe('teach-in: consecutive (the alert\'s windows in a row) must be a whole number ≥ 1, got NaN');
    expect(msg(-3)).toMatch(/got -3$/);
    expect(msg('3')).toMatch(/got 3$/); // a string is not a number, though it reads like one
    expect(msg(11)).toBe('teach-in: consecutive (11 windows in a row) is more than the 10 windows taught');
    expect(deriveThreshold(s, { ...rule, consecutive: 10 }).windows).toBe(10); // exactly one run
    // A NaN score is still named with K > 1.
    expect(thrown(() => deriveThreshold([1, 2, Number.NaN, 4], { ...rule, consecutive: 2 })).message).toBe('teach-in: score 2 is NaN, expected a finite number');
  });

  it('should derive from 100,000 windows with a long K without slowing down (the deque, not K × n)', () => {
    const s = healthy(100_000);
    const d = deriveThreshold(s, { ...TEACH_IN_DEFAULTS, consecutive: 5_000 });
    expect(d.threshold).toBeGreaterThan(d.maxRunScore);
    expect(d.maxRunScore).toBeLessThan(3.01); // the lowest of 5,000 windows is near the bottom of 3 .. 4.5
  });
});

describe('TeachIn with the host\'s K, on a real log', () => {
  const T0 = 1_700_000_000_000;
  const card = { id: 'vibration-anomaly', task: 'anomaly', output: { tensor: 'score', threshold: 11.19 } } as unknown as ModelCard;
  const teachInOn = (store: ResultStore, consecutive?: () => number, margin?: number): TeachIn =>
    new TeachIn(store.baselines(), { card: (m) => (m === card.id ? card : undefined), knows: () => true, consecutive, now: () => T0 }, margin === undefined ? { minWindows: 10 } : { minWindows: 10, margin });
  /** The K-run rule as a teach-in applies it when no margin is set. */
  const runRule = { ...TEACH_IN_DEFAULTS, margin: RUN_MARGIN_DEFAULT, consecutive: 3 };
  const records = (from: number, scores: number[]): ReturnType<typeof result>[] => scores.map((score, i) => result(T0 + (from + i) * 1000, { score, outputs: [score] }));

  it('should learn with the host\'s K, record its rule and K in the log, and give a spiky machine a threshold under its spike', async () => {
    const file = dbPath();
    const store = openStore({ path: file });
    const t = teachInOn(store, () => 3);
    expect(t.start('press-1', 'vibration-anomaly', { windows: 200 })).toMatchObject({ state: 'learning', learning: { rule: 'runs', consecutive: 3 } });
    const scores = healthy(200);
    scores[50] = 23;
    scores[120] = 19;
    const rs = records(0, scores);
    await store.commit({ results: rs });
    const ends = rs.map((r) => t.learn(card, r));
    const d = deriveThreshold(scores, runRule);
    expect(ends[199]).toMatchObject({ state: 'active', threshold: d.threshold, baseline: { rule: 'runs', consecutive: 3, margin: 2, maxScore: 23, maxRunScore: d.maxRunScore } });
    expect(d.threshold).toBeLessThan(11.19); // under the card's, and far under the spike
    expect(statusLine(ends[199]!)).toBe(`press-1 (vibration-anomaly): baseline active, threshold ${d.threshold} from 200 healthy windows, the lowest of each 3 in a row (the card's 11.19)`);
    const row = new Database(file, { readonly: true });
    try {
      expect(row.prepare("SELECT rule, consecutive, max_score AS maxScore, max_run_score AS maxRunScore, threshold FROM baselines WHERE state = 'active'").get()).toEqual({ rule: 'runs', consecutive: 3, maxScore: 23, maxRunScore: d.maxRunScore, threshold: d.threshold });
    } finally {
      row.close();
    }
    // Without a K from its host: the single-window rule, floored above the spike.
    const one = teachInOn(store);
    one.start('press-1', 'vibration-anomaly', { windows: 200 });
    const last = records(1000, scores).map((r) => one.learn(card, r)).at(-1);
    expect(last).toMatchObject({ state: 'active', baseline: { rule: 'windows', consecutive: 1, margin: 1 } });
    expect(last!.threshold).toBeGreaterThan(23);
    // A margin the host set applies to either rule.
    const set = teachInOn(store, () => 3, 0.5);
    set.start('press-1', 'vibration-anomaly', { windows: 200 });
    const own = records(2000, scores).map((r) => set.learn(card, r)).at(-1);
    expect(own).toMatchObject({ state: 'active', threshold: deriveThreshold(scores, { ...runRule, margin: 0.5 }).threshold, baseline: { rule: 'runs', margin: 0.5 } });
  });

  it('should read the learned scores back in data-time order after a restart, whatever order the log got them in', async () => {
    const file = dbPath();
    let store = openStore({ path: file });
    let t = teachInOn(store, () => 3);
    t.start('press-1', 'vibration-anomaly', { windows: 100 });
    // Three high windows in a row in data time, apart in the order they were committed (a backlog replayed out of order).
    const scores = healthy(99);
    scores.splice(40, 3, 14, 15, 16);
    const rs = records(0, scores);
    t.learn(card, rs[0]); // notes the first window's time; a restart re-reads from there
    const scrambled = [...rs.filter((_, i) => i % 2 === 0), ...rs.filter((_, i) => i % 2 === 1)];
    await store.commit({ results: scrambled });
    await store.close();

    store = openStore({ path: file });
    t = teachInOn(store, () => 5); // the alert's K changed meanwhile: the teach-in keeps the one it started with
    expect(t.status('press-1', 'vibration-anomaly')).toMatchObject({ state: 'learning', learning: { windows: 99, consecutive: 3 } });
    const next = records(99, [3.5])[0];
    await store.commit({ results: [next] });
    const end = t.learn(card, next);
    const inOrder = deriveThreshold([...scores, 3.5], runRule);
    const asCommitted = deriveThreshold([...scrambled.map((r) => r.score), 3.5], runRule);
    expect(inOrder.threshold).toBeGreaterThan(14);
    expect(asCommitted.threshold).toBeLessThan(14);
    expect(end).toMatchObject({ state: 'active', threshold: inOrder.threshold, baseline: { consecutive: 3, maxRunScore: 14 } });
  });

  it('should refuse a bad K from its host, and a target under K windows, in one line; fail a period that gave fewer than K', async () => {
    const store = openStore();
    for (const [k, got] of [[0, '0'], [2.5, '2.5'], [Number.NaN, 'NaN']] as const) {
      expect(thrown(() => teachInOn(store, () => k).start('press-1', 'vibration-anomaly', { windows: 100 })).message).toBe(`teach-in of press-1 (vibration-anomaly): consecutive (the alert's windows in a row) must be a whole number ≥ 1, got ${got}`);
    }
    const t = new TeachIn(store.baselines(), { card: () => card, knows: () => true, consecutive: () => 20 }, { minWindows: 10 });
    expect(thrown(() => t.start('press-1', 'vibration-anomaly', { windows: 15 }))).toMatchObject({ code: 'E_ARGUMENT', message: "teach-in of press-1 (vibration-anomaly): windows (15) must be at least the alert's 20 in a row" });
    expect(t.status('press-1', 'vibration-anomaly').state).toBe('none');
    t.start('press-1', 'vibration-anomaly', { minutes: 0.25 }); // 15 windows of 1 s: fewer than K
    const ends = records(0, healthy(16)).map((r) => t.learn(card, r));
    expect(ends[15]).toMatchObject({ state: 'none', threshold: 11.19 });
    expect(store.baselines().current()).toEqual([]);
  });
});

describe('migration 15', () => {
  it('should keep a log\'s baselines written before it as single-window baselines with K = 1, and apply them', () => {
    const file = dbPath();
    const db = new Database(file);
    try {
      migrate(db, file, MIGRATIONS.filter((m) => m.version <= 12));
      db.prepare(`INSERT INTO baselines (device, model, state, started_ms, target_windows, windows, quantile, margin, card_threshold, threshold, median, max_score, ended_ms)
        VALUES ('pump-1', 'vibration-anomaly', 'active', 1000, 2000, 2000, 0.999, 1, 11.19, 33.02, 3.3, 22.97, 5000)`).run();
    } finally {
      db.close();
    }
    const store = openStore({ path: file });
    expect(store.baselines().current()).toMatchObject([{ device: 'pump-1', state: 'active', rule: 'windows', consecutive: 1, maxScore: 22.97, maxRunScore: null, threshold: 33.02 }]);
    const card = { id: 'vibration-anomaly', task: 'anomaly', output: { tensor: 'score', threshold: 11.19 } } as unknown as ModelCard;
    const t = new TeachIn(store.baselines(), { card: () => card, knows: () => true, consecutive: () => 3 });
    expect(t.status('pump-1', 'vibration-anomaly')).toMatchObject({ state: 'active', threshold: 33.02, baseline: { rule: 'windows', consecutive: 1, maxRunScore: null } });
    const raw = new Database(file, { readonly: true });
    try {
      expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    } finally {
      raw.close();
    }
    const rw = new Database(file);
    try {
      expect(() => rw.prepare("UPDATE baselines SET rule = 'median'").run()).toThrow(/CHECK constraint failed/);
      expect(() => rw.prepare('UPDATE baselines SET consecutive = 0').run()).toThrow(/CHECK constraint failed/);
    } finally {
      rw.close();
    }
  });
});
