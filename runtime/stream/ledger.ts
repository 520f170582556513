// What still holds each journaled message. A message's journal row may go only once nothing
// needs it any more: its windows are logged (or dead-lettered), no device window still buffers
// its samples, and (Sparkplug) it is not a birth kept for the next restart. Retired messages are
// handed to the next commit, which deletes their rows in the same transaction as the results.
import { type CommitUnit, type ConsumedRef, type InboundRef, inboundKey } from '../store';
import type { ReadyWindow } from './device-windows';

interface Holds {
  /** Windows holding the message's samples that are queued, running or being committed. */
  windows: number;
  /** Device windows still buffering its samples: one per push that kept them, until released. */
  spans: number;
  /** True while the message is still being pushed into windows. */
  open: boolean;
  /** Keep its key in `inbound` once consumed (a redelivery of it is possible). */
  remember: boolean;
  /** A Sparkplug birth kept until a newer birth or a death replaces it. */
  pinned: boolean;
}

export class MessageLedger {
  private readonly holds = new Map<string, Holds>();
  /** Keys ready to retire with the next commit. */
  private consumable: Array<{ key: string; remember: boolean }> = [];
  /** Keys handed to a commit that has not settled yet. */
  private readonly retiring = new Set<string>();
  /** Windows settled (logged, shed or failed): each only once. */
  private readonly settled = new WeakSet<ReadyWindow>();

  constructor(readonly pipeline: string) {}

  /** True while the key is held, or retiring: a message with the same key now is a repeat. */
  has(key: string): boolean {
    return this.holds.has(key) || this.retiring.has(key);
  }

  /** Messages held (journal rows this pipeline still needs). */
  get size(): number {
    return this.holds.size;
  }

  /** True when messages are waiting to retire with a commit. */
  get hasConsumable(): boolean {
    return this.consumable.length > 0;
  }

  /** A message starts being pushed into windows. */
  open(key: string, remember: boolean): void {
    this.holds.set(key, { windows: 0, spans: 0, open: true, remember, pinned: false });
  }

  /** A device window kept some of the message's samples. */
  buffered(key: string): void {
    const h = this.holds.get(key);
    if (h) h.spans++;
  }

  /** A device window no longer buffers the message's samples. */
  release(key: string): void {
    const h = this.holds.get(key);
    if (!h) return;
    h.spans--;
    this.maybeRetire(key, h);
  }

  /** Windows were made from the messages' samples: each holds its messages until settled. */
  hold(windows: readonly ReadyWindow[]): void {
    for (const w of windows) {
      for (const k of w.messageKeys) {
        const h = this.holds.get(k);
        if (h) h.windows++;
      }
    }
  }

  /** The message is pushed; `pinned` keeps it (a Sparkplug birth) until unpinned. */
  close(key: string, pinned = false): void {
    const h = this.holds.get(key);
    if (!h) return;
    h.open = false;
    h.pinned = pinned;
    this.maybeRetire(key, h);
  }

  /** A birth a newer birth or a death replaced: it may retire. */
  unpin(key: string): void {
    const h = this.holds.get(key);
    if (!h) return;
    h.pinned = false;
    this.maybeRetire(key, h);
  }

  /** The windows are done (logged or dead-lettered): their messages may retire. Returns the windows not settled before. */
  settle(windows: readonly ReadyWindow[]): ReadyWindow[] {
    const fresh: ReadyWindow[] = [];
    for (const w of windows) {
      if (this.settled.has(w)) continue;
      this.settled.add(w);
      fresh.push(w);
      for (const k of w.messageKeys) {
        const h = this.holds.get(k);
        if (!h) continue;
        h.windows--;
        this.maybeRetire(k, h);
      }
    }
    return fresh;
  }

  isSettled(w: ReadyWindow): boolean {
    return this.settled.has(w);
  }

  private maybeRetire(key: string, h: Holds): void {
    if (h.open || h.pinned || h.spans > 0 || h.windows > 0) return;
    this.holds.delete(key);
    this.consumable.push({ key, remember: h.remember });
  }

  /**
   * The retired messages, as the parts of a commit unit: their journal rows go, and the keys of
   * those that may be redelivered are kept in `inbound`. Call `committed` when that unit settles.
   */
  take(nowMs = Date.now()): Pick<CommitUnit, 'consumed' | 'inbound'> {
    const keys = this.consumable;
    this.consumable = [];
    const consumed: ConsumedRef[] = [];
    const inbound: InboundRef[] = [];
    for (const k of keys) {
      consumed.push({ pipeline: this.pipeline, key: k.key });
      this.retiring.add(k.key);
      // The inbound key outlives the journal row, so a redelivery after it is still recognised.
      if (k.remember) inbound.push({ key: inboundKey(this.pipeline, k.key), topic: this.pipeline, receivedMs: nowMs });
    }
    return { consumed, inbound };
  }

  /** The unit carrying these retired messages settled (committed, or given up: the journal keeps them). */
  committed(consumed: readonly ConsumedRef[] | undefined): void {
    for (const c of consumed ?? []) this.retiring.delete(c.key);
  }
}
