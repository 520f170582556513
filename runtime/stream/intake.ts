// The intake stage: a message's identity, its journal row and the moment it may be
// acknowledged. A message the broker marks as a redelivery is looked up (journal, then the keys
// of consumed messages) and dropped when the log already has it; every other message is
// journaled in the group commit of its turn of the event loop, then handed on in arrival order.
// With the log's journal 'when-needed' (the 'sd' profile) it is handed on at once, and its
// acknowledgement waits for the commit that logs what it fed.
import type { GatewayMetrics } from '../serve/metrics';
import { type ResultStore, inboundKey } from '../store';
import type { MessageLedger } from './ledger';

/** One inbound message, as the gateway hands it to each pipeline that wants it. */
export interface InboundMessage {
  topic: string;
  payload: Buffer;
  receivedMs: number;
  /** The broker marked it as a redelivery (DUP), or it was recovered after a restart. */
  redelivered: boolean;
  /** The message's identity (runtime/stream/identity.ts), the same for a redelivery of it. */
  key: string;
  qos: 0 | 1 | 2;
}

/** A journaled message on its way to the decoder. */
export interface JournaledMessage {
  key: string;
  topic: string;
  payload: Uint8Array;
  receivedMs: number;
  /** Keep its key in `inbound` once consumed (a redelivery of it is possible). */
  remember: boolean;
}

export interface IntakeOptions {
  /** The pipeline's name: its journal rows and inbound keys are its own. */
  pipeline: string;
  /** Keep the keys of consumed QoS 1/2 messages to recognise a later redelivery. */
  rememberKeys: boolean;
  /** False for messages of devices another gateway owns: nothing is kept of them. */
  wants: (topic: string) => boolean;
  /** Resolves when the next stage has room (the 'pause' policy); undefined when it need not wait. */
  room: () => Promise<void> | undefined;
  /** The next stage; called in arrival order, once per journaled message. */
  process: (m: JournaledMessage) => void;
}

export class Intake {
  /** Keys being journaled, or journaled and waiting for their turn to be processed. */
  private readonly journaling = new Set<string>();
  /** The last journaled message's turn to be processed: messages are processed in arrival order. */
  private turn: Promise<void> = Promise.resolve();
  private repeats = 0;
  /** Callers waiting for the backlog to shrink. */
  private shrinkWaiters: Array<() => void> = [];

  constructor(
    private readonly options: IntakeOptions,
    private readonly store: ResultStore,
    private readonly ledger: MessageLedger,
    private readonly metrics: GatewayMetrics,
  ) {}

  /**
   * Takes one message. Resolves once the message may be acknowledged: it is journaled (or was
   * already handled) and processed; under the 'pause' policy processing waits for room, so the
   * acknowledgement (and the caller's next message) waits too. Rejects when the journal write
   * fails: the message must then not be acknowledged.
   */
  async accept(m: InboundMessage): Promise<void> {
    const pipeline = this.options.pipeline;
    // Another gateway's device: nothing is looked up, counted or kept here (the gateway drops
    // such messages before it even identifies them; this holds for any other caller too).
    if (!this.options.wants(m.topic)) return;
    this.metrics.messages.inc({ pipeline });
    let key = m.key;
    const inMemory = this.ledger.has(key) || this.journaling.has(key);
    // Only a message the broker marks as redelivered can be one the log already has; looking
    // every message up would cost a query each.
    if (m.redelivered && (inMemory || this.store.journaled(pipeline, key) || this.seenBefore(key))) {
      this.metrics.duplicates.inc({ pipeline });
      return;
    }
    // The same key again, sent anew: a message of its own.
    if (inMemory) key = `${key}~${m.receivedMs}~${++this.repeats}`;
    // In memory from here until the ledger has it: a repeat of it meanwhile is a message of its own.
    this.journaling.add(key);
    if (this.store.journalMode === 'when-needed') return this.acceptHeld(m, key);
    try {
      // Grouped with the messages of this turn in one commit; the acknowledgement waits on it.
      const fresh = await this.store.journalSoon({ pipeline, key, topic: m.topic, payload: m.payload, receivedMs: m.receivedMs });
      // A key already journaled is one of ours still pending (replay comes before live messages).
      if (!fresh) return;
      await this.processInTurn(m, key);
    } finally {
      this.released(key);
    }
  }

  /**
   * Journal 'when-needed' (the SD-card profile): the message is processed now, and the
   * acknowledgement waits for the batch commit that logs what it fed, or journals it if it is still
   * unfinished a batch interval later. Until then the broker holds it: a crash before that commit
   * brings it again. A QoS 0 message has no acknowledgement to hold, and no redelivery: it is not
   * journaled at all (what it left in a partial window is lost with the process).
   */
  private async acceptHeld(m: InboundMessage, key: string): Promise<void> {
    const entry = { pipeline: this.options.pipeline, key, topic: m.topic, payload: m.payload, receivedMs: m.receivedMs };
    const kept = m.qos > 0 ? this.store.journalSoon(entry) : undefined;
    // Its rejection is the caller's, through the await below; never unhandled meanwhile.
    kept?.catch(() => undefined);
    try {
      await this.processInTurn(m, key);
    } finally {
      // Processed: the ledger has it now (until its retirement commits), so the backlog lets go.
      this.released(key);
    }
    await kept;
  }

  /** Hands the message on in its turn (arrival order), once the next stage has room. */
  private async processInTurn(m: InboundMessage, key: string): Promise<void> {
    const message: JournaledMessage = { key, topic: m.topic, payload: m.payload, receivedMs: m.receivedMs, remember: this.options.rememberKeys && m.qos > 0 };
    const turn = this.turn.then(async () => {
      await this.options.room();
      this.options.process(message);
    });
    // One message's failure must not fail the turns of the messages after it.
    this.turn = turn.catch(() => undefined);
    await turn;
  }

  /** The message left the backlog: whoever waits for it to shrink may go on. */
  private released(key: string): void {
    this.journaling.delete(key);
    const waiters = this.shrinkWaiters;
    this.shrinkWaiters = [];
    for (const w of waiters) w();
  }

  /** True when the log remembers the message as consumed (under its row key, or as earlier versions kept it). */
  private seenBefore(key: string): boolean {
    const pipeline = this.options.pipeline;
    return this.store.seen(inboundKey(pipeline, key)) || this.store.seen(`${pipeline}:${key}`);
  }

  /** Resolves when a message taken leaves the backlog (at once when there is none). */
  shrunk(): Promise<void> {
    if (this.journaling.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.shrinkWaiters.push(resolve));
  }

  /** Messages taken (being journaled, or waiting for their turn) and not processed yet. */
  get backlog(): number {
    return this.journaling.size;
  }

  /** Resolves once every message taken so far has been processed. */
  async settled(): Promise<void> {
    await this.turn;
  }
}
