// A problem that repeats (a broker that stays away, a log that cannot commit) is reported once,
// then counted, and reported again when it clears, with how long it lasted and how often it
// came: on a Pi the reports end up in the journal on the SD card, and a retry every 200 ms would
// write hundreds of identical lines a minute. While it lasts a reminder goes out at most every
// few minutes, so a reader of the journal's tail still sees that it is going on.
import { EdgeInferError, type ErrorCode } from './errors';

/** One problem while it lasts. */
export interface Problem {
  /** What makes two occurrences the same problem. */
  readonly key: string;
  /** When it first occurred, ms since the epoch. */
  readonly sinceMs: number;
  /** Occurrences so far, the first included. */
  count: number;
  /** The latest occurrence. */
  last: Error;
  /** How long it has lasted (or lasted, when it cleared), ms. */
  forMs: number;
}

/** How one kind of problem is worded. */
export interface ProblemWords {
  /** Code of the reminder and recovery reports. */
  code: ErrorCode;
  /** The first report (default: the error itself, as it came). */
  began?: (err: Error) => string;
  /** The reminder while it lasts. */
  lasting: (p: Problem) => string;
  /** The report when it clears. */
  ended: (p: Problem) => string;
}

export interface ProblemOptions {
  /** Least time between two reports of one problem that lasts, ms (default 5 minutes). */
  remindEveryMs?: number;
  /** The clock, ms since the epoch (tests pass a fake one). */
  now?: () => number;
}

/** The default least time between two reports of a problem that lasts. */
export const REMIND_EVERY_MS = 5 * 60_000;

interface Ongoing extends Problem {
  words: ProblemWords;
  /** When it was last reported (first report or reminder). */
  reportedMs: number;
  /** Causes seen while it lasts (error codes): a new one is reported once. */
  causes: Set<string>;
}

export class Problems {
  private readonly ongoing = new Map<string, Ongoing>();
  private readonly remindEveryMs: number;
  private readonly now: () => number;

  constructor(
    private readonly report: (err: Error) => void,
    options: ProblemOptions = {},
  ) {
    this.remindEveryMs = options.remindEveryMs ?? REMIND_EVERY_MS;
    this.now = options.now ?? Date.now;
  }

  /**
   * The problem `key` occurred (again). The first occurrence is reported; later ones are counted,
   * and reported only as a reminder once `remindEveryMs` has passed since the last report, or
   * when they bring a `cause` (an error code) not seen since the problem began.
   */
  occurred(key: string, err: Error, words: ProblemWords, cause?: string): void {
    const now = this.now();
    const p = this.ongoing.get(key);
    if (!p) {
      this.ongoing.set(key, { key, sinceMs: now, count: 1, last: err, forMs: 0, words, reportedMs: now, causes: new Set(cause === undefined ? [] : [cause]) });
      this.report(words.began ? new EdgeInferError(words.code, words.began(err), { cause: err }) : err);
      return;
    }
    p.count++;
    p.last = err;
    p.forMs = now - p.sinceMs;
    if (cause !== undefined && !p.causes.has(cause)) {
      p.causes.add(cause);
      p.reportedMs = now;
      this.report(words.began ? new EdgeInferError(words.code, words.began(err), { cause: err }) : err);
    } else if (now - p.reportedMs >= this.remindEveryMs) {
      p.reportedMs = now;
      this.report(new EdgeInferError(p.words.code, p.words.lasting(p), { cause: err }));
    }
  }

  /** The problem `key` is over: reported with its duration and count, if it had occurred. */
  cleared(key: string): void {
    const p = this.ongoing.get(key);
    if (!p) return;
    this.ongoing.delete(key);
    p.forMs = this.now() - p.sinceMs;
    this.report(new EdgeInferError(p.words.code, p.words.ended(p)));
  }

  /** The problem `key` while it lasts, or undefined. */
  get(key: string): Readonly<Problem> | undefined {
    const p = this.ongoing.get(key);
    return p && { key: p.key, sinceMs: p.sinceMs, count: p.count, last: p.last, forMs: this.now() - p.sinceMs };
  }
}

/** A duration as a report says it: `850 ms`, `31 s`, `5 min 2 s`, `3 h 12 min`. */
export function durationText(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return s % 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s / 60} min`;
  const min = Math.round(s / 60);
  return min % 60 ? `${Math.floor(min / 60)} h ${min % 60} min` : `${min / 60} h`;
}

/** A time of day as a report says it, in UTC as the gateway's status lines: `10:31:02 UTC`. */
export function clockText(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 19)} UTC`;
}
