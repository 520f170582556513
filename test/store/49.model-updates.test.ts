// The log of model hot-swaps (migration 11): each step with its reason, newest first, per model.
import { describe, expect, it } from 'vitest';
import { openStore } from './helpers';

describe('modelUpdates()', () => {
  it('should keep each step, committed at once, and list them newest first per model', async () => {
    const store = openStore();
    const log = store.modelUpdates();
    const step = { model: 'fault-classifier', pipeline: 'pumps', variant: 'int8', sha256: 'ab'.repeat(32), source: 'mqtt:edge-infer/models/fault-classifier/update', reason: null };
    log.add({ ...step, timeMs: 1, state: 'staged' });
    log.add({ ...step, timeMs: 2, state: 'refused', reason: 'its signature does not verify' });
    log.add({ ...step, model: 'vibration-anomaly', timeMs: 3, state: 'active' });
    expect(log.list({ model: 'fault-classifier' }).map((r) => [r.state, r.reason])).toEqual([['refused', 'its signature does not verify'], ['staged', null]]);
    expect(log.list().map((r) => r.model)).toEqual(['vibration-anomaly', 'fault-classifier', 'fault-classifier']);
    expect(log.list({ limit: 1 })).toHaveLength(1);
    await store.close();
  });

  it('should list the updates staged and not decided since, oldest first', async () => {
    const store = openStore();
    const log = store.modelUpdates();
    const at = (sha: string, state: 'staged' | 'checked' | 'active' | 'refused' | 'rolled-back', model = 'm') => log.add({ timeMs: 1, model, pipeline: null, variant: null, sha256: sha, source: 'mqtt:t', state, reason: null });
    at('a', 'staged');
    at('b', 'staged');
    at('c', 'staged');
    at('a', 'checked'); // checked is not decided: a stop between check and swap leaves it undecided
    at('b', 'refused');
    at('c', 'active', 'other'); // another model's step decides nothing here
    at('d', 'staged');
    at('d', 'active');
    at('d', 'staged'); // staged again after it was decided: undecided anew
    expect(log.undecided().map((r) => r.sha256)).toEqual(['a', 'c', 'd']);
    await store.close();
  });

  it('should tell per pipeline the update in service at the stop, step by step', async () => {
    const store = openStore();
    const log = store.modelUpdates();
    const at = (sha: string, state: 'staged' | 'checked' | 'active' | 'refused' | 'rolled-back', pipeline: string | null = 'pumps', model = 'm') => log.add({ timeMs: 1, model, pipeline, variant: sha, sha256: sha, source: 'mqtt:t', state, reason: null });
    expect(log.inService()).toEqual([]);
    // pumps: a, then b rolled back on its probation: a serves again.
    at('a', 'staged', null);
    at('a', 'active');
    at('b', 'staged', null);
    at('b', 'active');
    at('b', 'rolled-back');
    at('x', 'refused'); // a new update refused: what serves is unchanged
    // fans: c, then d; d put back after a restart and refused (its files gone): the configured variant serves, not c.
    at('c', 'active', 'fans');
    at('d', 'active', 'fans');
    at('d', 'refused', 'fans');
    // mixers: e, put back after a restart (active again), then g rolled back on its probation: e serves again.
    at('e', 'active', 'mixers');
    at('e', 'active', 'mixers');
    at('g', 'active', 'mixers');
    at('g', 'rolled-back', 'mixers');
    // presses: k put back after a restart and rolled back there: what it replaced then was the configured variant.
    at('j', 'active', 'presses');
    at('k', 'active', 'presses');
    at('k', 'active', 'presses');
    at('k', 'rolled-back', 'presses');
    at('f', 'active', 'pumps', 'other'); // another model's pipeline of the same name
    expect(log.inService().map((r) => [r.model, r.pipeline, r.sha256])).toEqual([['m', 'pumps', 'a'], ['m', 'mixers', 'e'], ['other', 'pumps', 'f']]);
    await store.close();
  });

  it('should refuse a state that is not one of an update\'s', async () => {
    const store = openStore();
    expect(() => store.modelUpdates().add({ timeMs: 1, model: 'm', pipeline: null, variant: null, sha256: null, source: 'file:x', state: 'done' as never, reason: null })).toThrow(/CHECK constraint failed/);
    await store.close();
    expect(() => store.modelUpdates()).toThrow(/closed/);
  });
});
