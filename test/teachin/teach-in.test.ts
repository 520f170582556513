// Teach-in: the threshold rule on its own, then a TeachIn on a real log file, learning, judging,
// and taken up again after the file is closed and reopened.
import { describe, expect, it } from 'vitest';
import type { ModelCard } from '../../runtime/model';
import { type ResultStore } from '../../runtime/store';
import { TEACH_IN_DEFAULTS, TeachIn, checkTarget, deriveThreshold, quantileOf, taughtScore } from '../../runtime/teachin';
import { thrown } from '../helpers/errors';
import { dbPath, openStore, result } from '../store/helpers';

const anomalyCard = { id: 'vibration-anomaly', task: 'anomaly', output: { tensor: 'score', threshold: 11.19 } } as unknown as ModelCard;
const classifierCard = { id: 'fault-classifier', task: 'classification', output: { tensor: 'probs', labels: ['normal', 'imbalance', 'misalignment'], threshold: 0.6 } } as unknown as ModelCard;

describe('deriveThreshold', () => {
  it('should put the threshold at the quantile plus margin × (quantile − median)', () => {
    const scores = Array.from({ length: 101 }, (_, i) => i); // 0..100: median 50
    const d = deriveThreshold(scores, { quantile: 0.9, margin: 0.5 });
    expect(d.quantileScore).toBeCloseTo(90, 12);
    expect(d.median).toBe(50);
    expect(d.threshold).toBeCloseTo(90 + 0.5 * 40, 12);
    expect(d).toMatchObject({ maxScore: 100, windows: 101 });
    // The order of the scores does not matter.
    expect(deriveThreshold([...scores].reverse(), { quantile: 0.9, margin: 0.5 }).threshold).toBe(d.threshold);
  });

  it('should interpolate the quantile between neighbours', () => {
    expect(quantileOf(Float64Array.from([1, 2, 3, 4]), 0.5)).toBe(2.5);
    expect(quantileOf(Float64Array.from([1, 2, 3, 4]), 1)).toBe(4);
  });

  it('should never put the threshold at or below the highest healthy score', () => {
    // One spike: the quantile and margin would flag it, the floor does not.
    const scores = [...Array.from({ length: 999 }, () => 10), 14];
    const d = deriveThreshold(scores, { quantile: 0.99, margin: 1 });
    expect(d.quantileScore).toBe(10);
    expect(d.threshold).toBeGreaterThan(14);
    expect(d.threshold).toBeLessThan(14.000001);
    // All equal: still above them.
    expect(deriveThreshold([3, 3, 3], { quantile: 0.999, margin: 1 }).threshold).toBeGreaterThan(3);
  });

  it('should give a machine whose healthy scores sit near the card\'s threshold one above them, and a quiet one a lower one', () => {
    const loud = Array.from({ length: 1000 }, (_, i) => 9 + 2.2 * ((i * 7919) % 1000) / 1000); // 9 .. 11.2, across the card's 11.19
    const quiet = loud.map((s) => s / 4); // 2.25 .. 2.8
    expect(deriveThreshold(loud, TEACH_IN_DEFAULTS).threshold).toBeGreaterThan(11.2);
    expect(deriveThreshold(quiet, TEACH_IN_DEFAULTS).threshold).toBeLessThan(11.19);
  });

  it('should refuse NaN and infinite scores naming the first, an empty list and a bad rule', () => {
    expect(thrown(() => deriveThreshold([1, 2, Number.NaN, Infinity], { quantile: 0.9, margin: 1 })).message).toBe('teach-in: score 2 is NaN, expected a finite number');
    expect(thrown(() => deriveThreshold([1, -Infinity], { quantile: 0.9, margin: 1 })).message).toBe('teach-in: score 1 is -Infinity, expected a finite number');
    expect(thrown(() => deriveThreshold([], { quantile: 0.9, margin: 1 })).message).toBe('teach-in: no healthy scores to derive a threshold from');
    expect(thrown(() => deriveThreshold([1], { quantile: 0, margin: 1 })).message).toBe('teach-in: quantile must be a number in (0, 1], got 0');
    expect(thrown(() => deriveThreshold([1], { quantile: 1.5, margin: 1 })).message).toBe('teach-in: quantile must be a number in (0, 1], got 1.5');
    expect(thrown(() => deriveThreshold([1], { quantile: 0.9, margin: -1 })).message).toBe('teach-in: margin must be a finite number ≥ 0, got -1');
    expect(thrown(() => deriveThreshold([1], { quantile: 0.9, margin: Number.NaN })).code).toBe('E_ARGUMENT');
  });

  it('should teach a classifier its highest probability of a label that is not normal', () => {
    expect(taughtScore(classifierCard, 0.9, [0.9, 0.06, 0.04])).toBe(0.06);
    expect(taughtScore(classifierCard, 0.7, [0.1, 0.2, 0.7])).toBe(0.7);
    expect(taughtScore(anomalyCard, 9.5, [9.5])).toBe(9.5);
  });
});

describe('checkTarget', () => {
  const bounds = { minWindows: 100, maxWindows: 5000 };
  it('should take windows or minutes and refuse the rest in one line', () => {
    expect(checkTarget({ windows: 200 }, bounds)).toEqual({ windows: 200 });
    expect(checkTarget({ minutes: 30 }, bounds)).toEqual({ minutes: 30 });
    expect(thrown(() => checkTarget({ windows: 0 }, bounds)).message).toBe('teach-in: windows must be a whole number ≥ 1, got 0');
    expect(thrown(() => checkTarget({ windows: -5 }, bounds)).message).toBe('teach-in: windows must be a whole number ≥ 1, got -5');
    expect(thrown(() => checkTarget({ windows: 2.5 }, bounds)).message).toBe('teach-in: windows must be a whole number ≥ 1, got 2.5');
    expect(thrown(() => checkTarget({ windows: '200' }, bounds)).message).toBe('teach-in: windows must be a whole number ≥ 1, got "200"');
    expect(thrown(() => checkTarget({ windows: 50 }, bounds)).message).toBe('teach-in: windows must be at least 100 (fewer say nothing of a high quantile), got 50');
    expect(thrown(() => checkTarget({ windows: 5001 }, bounds)).message).toBe('teach-in: windows must be at most 5000, got 5001');
    expect(thrown(() => checkTarget({ minutes: 0 }, bounds)).message).toBe('teach-in: minutes must be a number > 0, got 0');
    expect(thrown(() => checkTarget({ minutes: Number.NaN }, bounds)).message).toBe('teach-in: minutes must be a number > 0, got null');
    expect(thrown(() => checkTarget({ windows: 200, minutes: 3 }, bounds)).message).toBe('teach-in: give windows or minutes, not both');
    expect(thrown(() => checkTarget({}, bounds)).message).toBe('teach-in: expected windows or minutes, got neither');
    expect(thrown(() => checkTarget(null, bounds)).message).toBe('teach-in: expected { windows } or { minutes }');
  });
});

describe('TeachIn on a real log', () => {
  const T0 = 1_700_000_000_000;
  const cards = new Map([[anomalyCard.id, anomalyCard], [classifierCard.id, classifierCard]]);
  const teachInOn = (store: ResultStore, settings = { minWindows: 10 }): TeachIn =>
    new TeachIn(store.baselines(), { card: (m) => cards.get(m), knows: (d, m) => store.baselines().hasResults(d, m), now: () => T0 }, settings);
  /** One logged result of press-1 at second i, learned as the pipeline does after logging it. */
  async function feed(store: ResultStore, t: TeachIn, from: number, scores: number[]): Promise<Array<ReturnType<TeachIn['learn']>>> {
    const records = scores.map((score, i) => result(T0 + (from + i) * 1000, { score, outputs: [score] }));
    await store.commit({ results: records });
    return records.map((r) => t.learn(anomalyCard, r));
  }

  it('should learn a device for its windows, judge it by its own threshold once active, and keep both across a reopen', async () => {
    const file = dbPath();
    let store = openStore({ path: file });
    await store.commit({ results: [result(T0 - 1000, { score: 10 })] });
    let t = teachInOn(store);
    expect(t.status('press-1', 'vibration-anomaly')).toEqual({ device: 'press-1', model: 'vibration-anomaly', state: 'none', threshold: 11.19, cardThreshold: 11.19 });
    expect(t.start('press-1', 'vibration-anomaly', { windows: 20 }, 'ops')).toMatchObject({ state: 'learning', threshold: 11.19, learning: { windows: 0, targetWindows: 20, targetMinutes: null, startedMs: T0, firstWindowMs: null } });
    const scores = Array.from({ length: 20 }, (_, i) => 10 + (i % 5) * 0.5); // 10 .. 12: over the card's threshold at times
    // Learning: judged by the card's threshold still.
    expect(await feed(store, t, 0, scores.slice(0, 12))).toEqual(Array(12).fill(undefined));
    expect(t.judge('press-1', 'vibration-anomaly')).toEqual({ threshold: undefined, state: 'learning' });
    await store.close();

    // A restart while learning: the 12 windows come back from the log's results.
    store = openStore({ path: file });
    t = teachInOn(store);
    expect(t.status('press-1', 'vibration-anomaly')).toMatchObject({ state: 'learning', learning: { windows: 12, firstWindowMs: T0 } });
    const ends = await feed(store, t, 12, scores.slice(12));
    expect(ends.slice(0, 7)).toEqual(Array(7).fill(undefined));
    const expected = deriveThreshold(scores, TEACH_IN_DEFAULTS).threshold;
    expect(ends[7]).toMatchObject({ state: 'active', threshold: expected, cardThreshold: 11.19, baseline: { threshold: expected, windows: 20, quantile: 0.999, margin: 1, median: 11, maxScore: 12 } });
    expect(expected).toBeGreaterThan(12);
    expect(t.judge('press-1', 'vibration-anomaly')).toEqual({ threshold: expected, state: 'active' });
    await store.close();

    // A restart with it active: applied at once.
    store = openStore({ path: file });
    t = teachInOn(store);
    expect(t.judge('press-1', 'vibration-anomaly')).toEqual({ threshold: expected, state: 'active' });
    expect(t.list()).toMatchObject([{ device: 'press-1', state: 'active', threshold: expected }]);
    // A new teach-in: the baseline in force stays while it learns, and after a cancel.
    t.start('press-1', 'vibration-anomaly', { windows: 10 });
    expect(t.judge('press-1', 'vibration-anomaly')).toEqual({ threshold: expected, state: 'learning' });
    expect(t.cancel('press-1', 'vibration-anomaly')).toMatchObject({ state: 'active', threshold: expected });
    // Taught again on quieter scores: the new baseline supersedes the old one.
    t.start('press-1', 'vibration-anomaly', { windows: 10 });
    const last = (await feed(store, t, 100, Array(10).fill(5))).at(-1);
    expect(last).toMatchObject({ state: 'active', baseline: { windows: 10, maxScore: 5 } });
    const states = new TeachIn(store.baselines(), { card: (m) => cards.get(m), knows: () => true }).list();
    expect(states).toHaveLength(1);
    expect(states[0].threshold).toBeGreaterThan(5);
    expect(states[0].threshold).toBeLessThan(5.0001);
  });

  it('should give the card a device is judged by: the card itself until its baseline is active, then one with its own threshold, made once per baseline', async () => {
    const store = openStore({ path: dbPath() });
    await store.commit({ results: [result(T0 - 1000)] });
    const t = teachInOn(store);
    expect(t.judgedCard(anomalyCard, 'press-1')).toEqual({ card: anomalyCard, state: 'none' });
    t.start('press-1', 'vibration-anomaly', { windows: 10 });
    await feed(store, t, 0, Array(9).fill(4));
    expect(t.judgedCard(anomalyCard, 'press-1')).toEqual({ card: anomalyCard, state: 'learning' });
    await feed(store, t, 9, [4]);
    const active = t.judgedCard(anomalyCard, 'press-1');
    expect(active.state).toBe('active');
    expect(active.card.output.threshold).toBe(t.judge('press-1', 'vibration-anomaly').threshold);
    expect({ ...active.card, output: { ...active.card.output, threshold: anomalyCard.output.threshold } }).toEqual(anomalyCard);
    expect(t.judgedCard(anomalyCard, 'press-1').card).toBe(active.card);
    // Taught again: the new threshold, on a new card.
    t.start('press-1', 'vibration-anomaly', { windows: 10 });
    await feed(store, t, 10, Array(10).fill(2));
    const again = t.judgedCard(anomalyCard, 'press-1');
    expect(again.card).not.toBe(active.card);
    expect(again.card.output.threshold).toBe(t.judge('press-1', 'vibration-anomaly').threshold);
    expect(again.card.output.threshold).toBeLessThan(active.card.output.threshold!);
    await store.close();
  });

  it('should end a period in data time, and fail it when it gave fewer windows than a baseline needs', async () => {
    const store = openStore();
    await store.commit({ results: [result(T0 - 1000)] });
    const ended: string[] = [];
    const t = new TeachIn(store.baselines(), { card: (m) => cards.get(m), knows: () => true, ended: (s, row) => ended.push(`${row.state} ${row.windows}`) }, { minWindows: 10 });
    t.start('press-1', 'vibration-anomaly', { minutes: 0.1 }); // 6 s of data: 6 windows of 1 s
    const ends = await feed(store, t, 0, Array(7).fill(1));
    expect(ends.slice(0, 6)).toEqual(Array(6).fill(undefined));
    expect(ends[6]).toMatchObject({ state: 'none', threshold: 11.19 });
    expect(ended).toEqual(['failed 6']);
    t.start('press-1', 'vibration-anomaly', { minutes: 0.25 }); // 15 windows
    const again = await feed(store, t, 10, Array(16).fill(2));
    expect(again[15]).toMatchObject({ state: 'active', baseline: { windows: 15 } });
    expect(ended).toEqual(['failed 6', 'active 15']);
  });

  it('should refuse to teach a classifier, which a threshold of its own would blind', async () => {
    const store = openStore();
    await store.commit({ results: [result(T0, { model: 'fault-classifier' })] });
    const t = teachInOn(store);
    expect(thrown(() => t.start('press-1', 'fault-classifier', { windows: 10 }))).toMatchObject({
      code: 'E_ARGUMENT',
      message: "teach-in: model 'fault-classifier' is a classifier; a threshold of its own from healthy windows reaches 1 and would hide its faults (teach an anomaly model)",
    });
    expect(t.status('press-1', 'fault-classifier')).toMatchObject({ state: 'none', threshold: 0.6 });
  });

  it('should refuse an unknown model or device, a second start, a cancel with none running and bad settings, each in one line', async () => {
    const store = openStore();
    await store.commit({ results: [result(T0)] });
    const t = teachInOn(store);
    expect(thrown(() => t.start('press-1', 'no-such-model', { windows: 100 }))).toMatchObject({ code: 'E_NOT_FOUND', message: "teach-in: model 'no-such-model' is not served here" });
    expect(thrown(() => t.start('press-9', 'vibration-anomaly', { windows: 100 }))).toMatchObject({ code: 'E_NOT_FOUND', message: "teach-in: device 'press-9' has no results of model 'vibration-anomaly' yet" });
    expect(thrown(() => t.status('', 'vibration-anomaly')).message).toBe('teach-in: device must be a name, got ""');
    expect(thrown(() => t.start('press-1', 'vibration-anomaly', { windows: -3 })).message).toBe('teach-in: windows must be a whole number ≥ 1, got -3');
    expect(thrown(() => t.cancel('press-1', 'vibration-anomaly'))).toMatchObject({ code: 'E_NOT_FOUND', message: 'teach-in of press-1 (vibration-anomaly): none is running to cancel' });
    t.start('press-1', 'vibration-anomaly', { windows: 100 });
    expect(thrown(() => t.start('press-1', 'vibration-anomaly', { windows: 100 }))).toMatchObject({ code: 'E_CONFLICT', message: 'teach-in of press-1 (vibration-anomaly): already learning (0 windows so far); cancel it first' });
    expect(thrown(() => new TeachIn(store.baselines(), { card: () => undefined, knows: () => true }, { quantile: 2 })).message).toBe('teachIn: quantile must be a number in (0, 1], got 2');
    expect(thrown(() => new TeachIn(store.baselines(), { card: () => undefined, knows: () => true }, { minWindows: 0 })).message).toBe('teachIn: minWindows must be a whole number ≥ 1, got 0');
    expect(thrown(() => new TeachIn(store.baselines(), { card: () => undefined, knows: () => true }, { minWindows: 10, maxWindows: 5 })).message).toBe('teachIn: maxWindows must be a whole number ≥ minWindows (10), got 5');
  });
});
