// A repeated problem on a fake clock: reported once, counted, reminded at most every few
// minutes, and reported again when it clears, with how long it lasted and how often it came.
import { describe, expect, it } from 'vitest';
import { isEdgeInferError } from '../runtime/errors';
import { Problems, type ProblemWords, clockText, durationText } from '../runtime/problems';

const T0 = Date.UTC(2026, 11, 6, 10, 31, 2);

const WORDS: ProblemWords = {
  code: 'E_BROKER',
  began: (err) => `broker unreachable (${err.message}); retrying`,
  lasting: (p) => `broker still unreachable after ${durationText(p.forMs)} (since ${clockText(p.sinceMs)}), ${p.count} attempts`,
  ended: (p) => `broker reachable again after ${durationText(p.forMs)} down (since ${clockText(p.sinceMs)}), ${p.count} attempts`,
};

/** Problems on a clock the test moves, and the reports they made. */
function setup(remindEveryMs?: number) {
  let now = T0;
  const reports: Error[] = [];
  const problems = new Problems((err) => reports.push(err), { now: () => now, remindEveryMs });
  return {
    problems,
    reports,
    lines: () => reports.map((e) => e.message),
    advance: (ms: number) => (now += ms),
  };
}

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1883'), { code: 'ECONNREFUSED' });

describe('Problems', () => {
  it('should report the first occurrence of a problem in its own words, as an EdgeInferError with the code and the error as its cause', () => {
    const { problems, reports } = setup();
    const err = refused();
    problems.occurred('broker', err, WORDS, 'ECONNREFUSED');
    expect(reports).toHaveLength(1);
    expect(reports[0].message).toBe('broker unreachable (connect ECONNREFUSED 127.0.0.1:1883); retrying');
    expect(isEdgeInferError(reports[0], 'E_BROKER')).toBe(true);
    expect(reports[0].cause).toBe(err);
  });

  it('should report the error itself when the words give no first line', () => {
    const { problems, reports } = setup();
    const err = new Error('database is locked');
    problems.occurred('commit', err, { ...WORDS, began: undefined });
    expect(reports).toEqual([err]);
  });

  it('should count repeats without reporting them', () => {
    const { problems, lines, advance } = setup();
    for (let i = 0; i < 147; i++) {
      problems.occurred('broker', refused(), WORDS, 'ECONNREFUSED');
      advance(200);
    }
    expect(lines()).toHaveLength(1);
    expect(problems.get('broker')).toMatchObject({ count: 147, sinceMs: T0 });
  });

  it('should report its end with how long it lasted, since when, and how many times it came', () => {
    const { problems, lines, advance } = setup();
    for (let i = 0; i < 147; i++) {
      problems.occurred('broker', refused(), WORDS, 'ECONNREFUSED');
      advance(211);
    }
    problems.cleared('broker');
    expect(lines()).toEqual(['broker unreachable (connect ECONNREFUSED 127.0.0.1:1883); retrying', 'broker reachable again after 31 s down (since 10:31:02 UTC), 147 attempts']);
    expect(problems.get('broker')).toBeUndefined();
  });

  it('should report nothing when a problem that never occurred clears, and begin afresh after one cleared', () => {
    const { problems, lines, advance } = setup();
    problems.cleared('broker');
    expect(lines()).toEqual([]);
    problems.occurred('broker', refused(), WORDS);
    problems.cleared('broker');
    advance(60_000);
    problems.occurred('broker', refused(), WORDS);
    expect(lines()).toHaveLength(3);
    expect(lines()[2]).toMatch(/^broker unreachable/);
    expect(problems.get('broker')).toMatchObject({ count: 1, sinceMs: T0 + 60_000 });
  });

  it('should remind of a problem that lasts at most once per reminder interval, counting on', () => {
    const { problems, lines, advance } = setup();
    // Five times a second for 12 minutes.
    for (let t = 0; t < 12 * 60_000; t += 200) {
      problems.occurred('broker', refused(), WORDS, 'ECONNREFUSED');
      advance(200);
    }
    expect(lines()).toEqual([
      'broker unreachable (connect ECONNREFUSED 127.0.0.1:1883); retrying',
      'broker still unreachable after 5 min (since 10:31:02 UTC), 1501 attempts',
      'broker still unreachable after 10 min (since 10:31:02 UTC), 3001 attempts',
    ]);
  });

  it('should take its reminder interval from the options', () => {
    const { problems, lines, advance } = setup(60_000);
    for (let t = 0; t <= 2 * 60_000; t += 1000) {
      problems.occurred('broker', refused(), WORDS);
      advance(1000);
    }
    expect(lines().filter((l) => l.includes('still unreachable'))).toHaveLength(2);
  });

  it('should report a new cause of a lasting problem once, and go on counting it as the same problem', () => {
    const { problems, lines, advance } = setup();
    const unreachable = () => Object.assign(new Error('connect EHOSTUNREACH 10.0.0.5:1883'), { code: 'EHOSTUNREACH' });
    for (let i = 0; i < 10; i++) {
      problems.occurred('broker', i % 2 ? unreachable() : refused(), WORDS, i % 2 ? 'EHOSTUNREACH' : 'ECONNREFUSED');
      advance(1000);
    }
    problems.cleared('broker');
    expect(lines()).toEqual([
      'broker unreachable (connect ECONNREFUSED 127.0.0.1:1883); retrying',
      'broker unreachable (connect EHOSTUNREACH 10.0.0.5:1883); retrying',
      'broker reachable again after 10 s down (since 10:31:02 UTC), 10 attempts',
    ]);
  });

  it('should keep problems of different keys apart', () => {
    const { problems, lines } = setup();
    problems.occurred('broker', refused(), WORDS);
    problems.occurred('commit', new Error('disk full'), { ...WORDS, began: undefined });
    problems.occurred('broker', refused(), WORDS);
    problems.cleared('commit');
    expect(lines()).toEqual(['broker unreachable (connect ECONNREFUSED 127.0.0.1:1883); retrying', 'disk full', expect.stringMatching(/reachable again after 0 ms down .*, 1 attempts/)]);
    expect(problems.get('broker')).toMatchObject({ count: 2 });
  });
});

describe('durationText()', () => {
  it('should say a duration in the largest units that fit', () => {
    expect([850, 31_000, 59_600, 300_000, 302_000, 3_600_000, 11_520_000].map(durationText)).toEqual(['850 ms', '31 s', '1 min', '5 min', '5 min 2 s', '1 h', '3 h 12 min']);
  });
});
