// The replay after a restart: journal rows a previous run took but did not finish go through
// the pipeline again, before any new message. Each row's attempts are counted before it is
// processed and cleared once the replay went through it, so a message that brings the process
// down (whatever the cause) is known at the next start: it is then processed alone, and past
// MAX_REPLAY_ATTEMPTS it becomes a dead letter instead of a crash loop.
import type { JournalRow, ResultStore } from '../store';

/** Starts on a row that ended with the process down, before the row becomes a dead letter. */
export const MAX_REPLAY_ATTEMPTS = 3;

/** Rows read (and counted) at a time when none of them is under suspicion. */
const PAGE = 500;

export interface ReplayTarget {
  /** Waits for room in the queue. */
  room(): Promise<void>;
  /** Processes one row (decode, windows, queue); never throws. */
  process(row: JournalRow): void;
  /** Runs and logs everything queued. */
  drain(): Promise<void>;
  /** Records a row that stopped the process too often as a dead letter (and retires it). */
  poisoned(row: JournalRow): Promise<void>;
  /** Forget the message order known so far (Sparkplug seq): rows may have gaps between them. */
  resync(): void;
}

/** Replays a pipeline's pending rows; returns how many were processed and how many were dead-lettered as poison. */
export async function replayJournal(pipeline: string, store: ResultStore, target: ReplayTarget): Promise<{ messages: number; poisoned: number }> {
  let after = 0;
  let messages = 0;
  let poisoned = 0;
  for (;;) {
    const rows = store.pendingJournal(pipeline, after, PAGE);
    if (rows.length === 0) break;
    // Rows a crashed replay was on go one at a time, so only the one to blame is counted again.
    const suspect = rows.findIndex((r) => r.attempts > 0);
    const run = suspect === 0 ? rows.slice(0, 1) : suspect > 0 ? rows.slice(0, suspect) : rows;
    const first = run[0].id;
    const last = run[run.length - 1].id;
    after = last;
    if (run.length === 1 && run[0].attempts >= MAX_REPLAY_ATTEMPTS) {
      await target.poisoned(run[0]);
      poisoned++;
      continue;
    }
    store.replayingRows(pipeline, first, last);
    for (const r of run) {
      await target.room();
      // Messages between two journaled ones may have been consumed before the restart: their
      // order (Sparkplug seq) is not checked across the gap.
      target.resync();
      target.process(r);
      messages++;
    }
    await target.drain();
    // Still open: the process went through these rows. Rows kept (partial windows, births) are not to blame.
    store.replayedRows(pipeline, first, last);
  }
  target.resync();
  return { messages, poisoned };
}
