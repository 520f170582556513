// Journal 'when-needed' (the SD-card profile): the broker is the journal. A message is processed
// at once and its acknowledgement waits here for the batch commit that logs what it fed (its key
// among the batch's consumed messages): then it needs no journal row at all, and the broker,
// which holds it unacknowledged until then, redelivers it if the process dies first. Only a
// message still unfinished after a whole batch interval (samples buffered in a partial window)
// is journaled, in that batch's transaction, so that the broker's in-flight window keeps moving.
// The packet-id records of message identity (mqtt_deliveries) go into the same transaction, so a
// message's record is on disk no later than what it fed.
import type { DeliveryOp, DeliveryStatements } from './deliveries';
import type { Journal } from './journal';
import type { Tallies } from './tallies';
import type { ConsumedRef, JournalEntry } from './types';

interface Held {
  entry: JournalEntry;
  sinceMs: number;
  resolve: (fresh: boolean) => void;
  reject: (err: Error) => void;
}

interface QueuedOp {
  op: DeliveryOp;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** What one batch did with the held messages; `settle()` once its transaction committed. */
export interface HeldOutcome {
  /** Written to the journal now (with, per entry, false for a key the journal already had). */
  journaled: Held[];
  fresh: boolean[];
  /** Inbound keys the records' forgets deleted. */
  inboundDeleted: number;
  /** Retired by the batch: acknowledged without a journal row. */
  retired: Held[];
  ops: QueuedOp[];
}

const refKey = (pipeline: string, key: string): string => `${pipeline}\u0000${key}`;

export class HeldMessages {
  private held: Held[] = [];
  private ops: QueuedOp[] = [];

  constructor(
    private readonly journal: Journal,
    private readonly deliveries: DeliveryStatements,
    private readonly tallies: Tallies,
    /** A message unfinished for this long is journaled by the next batch. */
    private readonly journalAfterMs: number,
  ) {}

  /** Holds a message; resolves once a committed batch retired or journaled it (false: already journaled). */
  hold(entry: JournalEntry, nowMs = Date.now()): Promise<boolean> {
    return new Promise((resolve, reject) => this.held.push({ entry, sinceMs: nowMs, resolve, reject }));
  }

  /** Queues a packet-id record for the next batch; resolves once committed. */
  record(op: DeliveryOp): Promise<void> {
    return new Promise((resolve, reject) => this.ops.push({ op, resolve, reject }));
  }

  /** True when a batch has something of ours to write or settle. */
  get pending(): boolean {
    return this.held.length > 0 || this.ops.length > 0;
  }

  /** Messages held (not yet retired or journaled). */
  get size(): number {
    return this.held.length;
  }

  /**
   * Inside a batch's transaction, after its units: writes the records, and journals the messages
   * that waited a whole interval without being among `consumed` (the batch's committed units'
   * messages). Nothing held changes until `settle()`: a transaction that fails leaves all as it was.
   */
  write(consumed: Iterable<readonly ConsumedRef[] | undefined>, nowMs = Date.now()): HeldOutcome {
    const ops = this.ops;
    const inboundDeleted = this.deliveries.apply(ops.map((o) => o.op));
    const done = new Set<string>();
    for (const list of consumed) for (const c of list ?? []) done.add(refKey(c.pipeline, c.key));
    const journaled: Held[] = [];
    const retired: Held[] = [];
    for (const h of this.held) {
      if (done.has(refKey(h.entry.pipeline, h.entry.key))) retired.push(h);
      else if (nowMs - h.sinceMs >= this.journalAfterMs) journaled.push(h);
    }
    const fresh = journaled.length ? this.journal.insertAll(journaled.map((h) => h.entry)) : [];
    return { journaled, fresh, inboundDeleted, retired, ops };
  }

  /** The batch committed: its messages may be acknowledged; the others stay held. */
  settle(outcome: HeldOutcome): void {
    const gone = new Set<Held>([...outcome.journaled, ...outcome.retired]);
    this.held = this.held.filter((h) => !gone.has(h));
    const doneOps = new Set(outcome.ops);
    this.ops = this.ops.filter((o) => !doneOps.has(o));
    this.journal.counted(outcome.fresh);
    this.tallies.add('inbound', -outcome.inboundDeleted);
    for (const o of outcome.ops) o.resolve();
    outcome.journaled.forEach((h, i) => h.resolve(outcome.fresh[i]));
    for (const h of outcome.retired) h.resolve(true);
  }

  /** The log closes: nothing held may be acknowledged (the broker keeps it for the next start). */
  abandon(err: Error): void {
    const held = this.held;
    const ops = this.ops;
    this.held = [];
    this.ops = [];
    for (const h of held) h.reject(err);
    for (const o of ops) o.reject(err);
  }
}
