// Message identity at intake: which inbound MQTT message this is, and whether it can be one the
// gateway already has, from what the protocol gives rather than from the bytes alone.
//
// - QoS 0: never redelivered; every message is new (a key of its own).
// - QoS 1/2: inside one broker session, a packet id names one message until the broker has read
//   its acknowledgement; then the broker may reuse it (MQTT 3.1.1 §2.3.1, 5.0 §2.2.1). A broker
//   redelivers only unacknowledged messages, with their packet ids and the DUP flag. So a DUP
//   message is the one last received under its packet id when that one's bytes are the same and
//   the broker has not been seen to read its acknowledgement; otherwise it is new (DUP only says
//   the broker sent it before, maybe on a connection that died before we read it). A message
//   without DUP is always new.
// - The session: an epoch per client id, a new one whenever the broker answers CONNACK with
//   sessionPresent = false (its packet ids start over and it will redeliver nothing of before).
//
// Keys are `<content hash>.<epoch>.<packet id>.<tag>` (QoS 0: `<content hash>.<tag>`), the tag
// unique per message and process, so two messages with the same bytes never share a key. The
// message behind each packet id is kept in SQLite (mqtt_deliveries) in the journal's group commit,
// so a restart after kill -9 still knows it; the gateway's acknowledgement waits for that commit.
// What remains ambiguous is written down in the README (Guarantees: redelivery identity).
import { createHash, randomBytes } from 'node:crypto';
import type { Deliveries } from '../store';

/** A hash of a message's topic and payload (the first part of every key). */
export function contentHash(topic: string, payload: Uint8Array): string {
  return createHash('sha1').update(topic).update('\u0000').update(payload).digest('base64url');
}

/** The content hash a key starts with (pipelines may add a suffix to a key; it keeps this part). */
export function contentOf(key: string): string {
  const dot = key.indexOf('.');
  return dot < 0 ? key : key.slice(0, dot);
}

/** What the gateway hands each pipeline about a message's identity. */
export interface Identity {
  key: string;
  /** The message may be one already taken in: the pipelines look its key up in the log. */
  redelivered: boolean;
  /** Resolves once the packet id's new message is on disk: the acknowledgement waits for it. */
  recorded?: Promise<void>;
  /** A redelivery of a message still being taken in: wait for that before handing this one on. */
  earlier?: Promise<unknown>;
}

/** The parts of an MQTT PUBLISH that identify it (mqtt.js's IPublishPacket has them). */
export interface InboundPacket {
  topic: string;
  payload: Uint8Array | string;
  qos: 0 | 1 | 2;
  messageId?: number;
  dup?: boolean;
}

interface Carried {
  key: string;
  hash: string;
  /** The message's intake (journal and identity commit), while under way. */
  intake?: Promise<unknown>;
}

export class MessageIdentity {
  private epoch: number;
  /** The message each packet id carries whose acknowledgement the broker may not have read. */
  private readonly carried = new Map<number, Carried>();
  /** Packet → its id and key, for 'acknowledged' (the broker read its acknowledgement). */
  private readonly byPacket = new WeakMap<object, { messageId: number; key: string }>();
  /** Unique per process, so keys of messages with the same bytes never meet across restarts. */
  private readonly boot = randomBytes(6).toString('base64url');
  private counter = 0;

  constructor(private readonly log: Deliveries) {
    this.epoch = log.epoch();
    for (const d of log.all()) this.carried.set(d.messageId, { key: d.key, hash: d.hash });
  }

  /** The current session epoch (0 before the first CONNACK ever). */
  get sessionEpoch(): number {
    return this.epoch;
  }

  /** Packet ids whose message may still be redelivered (for tests and metrics). */
  get carriedCount(): number {
    return this.carried.size;
  }

  /**
   * At each CONNACK, before any message of that connection: without a session at the broker a
   * new epoch starts, and nothing of the old one can be redelivered.
   */
  session(present: boolean): void {
    if (present && this.epoch > 0) return;
    this.epoch = this.log.newEpoch();
    this.carried.clear();
  }

  /** True while a message under this packet id may still be redelivered (see `pass`). */
  carries(messageId: number): boolean {
    return this.carried.has(messageId);
  }

  /** Identifies one inbound message a pipeline takes (the others go through `pass`). */
  identify(packet: InboundPacket, receivedMs: number): Identity {
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const hash = contentHash(packet.topic, payload);
    const id = packet.messageId;
    if (packet.qos === 0 || id === undefined) return { key: `${hash}.${this.tag()}`, redelivered: false };
    const last = this.carried.get(id);
    if (packet.dup && last && last.hash === hash) {
      this.byPacket.set(packet, { messageId: id, key: last.key });
      return { key: last.key, redelivered: true, earlier: last.intake };
    }
    // A new message under this packet id (the broker read the acknowledgement of the one before).
    const key = `${hash}.${this.epoch.toString(36)}.${id.toString(36)}.${this.tag()}`;
    this.carried.set(id, { key, hash });
    this.byPacket.set(packet, { messageId: id, key });
    return { key, redelivered: false, recorded: this.log.note({ messageId: id, key, hash }, receivedMs) };
  }

  /**
   * A message no pipeline here takes (a device another gateway owns): not hashed and, as a rule,
   * nothing written. The broker reuses a packet id only once it has read the acknowledgement of
   * the message before, so the message this id carried can no longer come back: it is let go, in
   * the log too when it was there, so that a DUP under the id later is never taken for it.
   * Returns the write the acknowledgement must wait for, if there is one.
   */
  pass(packet: InboundPacket, receivedMs: number): Promise<void> | undefined {
    const id = packet.messageId;
    if (packet.qos === 0 || id === undefined) return undefined;
    const last = this.carried.get(id);
    if (!last) return undefined;
    this.carried.delete(id);
    // Rare (the broker reused the id before the gate saw its last acknowledgement read): an empty
    // hash, which no message's hash equals, overwrites the id's row.
    return this.log.note({ messageId: id, key: `passed.${this.epoch.toString(36)}.${id.toString(36)}.${this.tag()}`, hash: '' }, receivedMs);
  }

  /** The message's intake (journal commits, identity commit): a redelivery of it waits for this. */
  intake(packet: InboundPacket, done: Promise<unknown>): void {
    const known = this.byPacket.get(packet);
    const entry = known && this.carried.get(known.messageId);
    if (!entry || entry.key !== known.key) return;
    entry.intake = done;
    const clear = (): void => {
      if (entry.intake === done) entry.intake = undefined;
    };
    done.then(clear, clear);
  }

  /**
   * The broker has read these messages' acknowledgements: their packet ids are free, and a DUP
   * under one of them is a message the broker sent after (whatever its bytes).
   */
  acknowledged(packets: readonly object[]): void {
    for (const p of packets) {
      const known = this.byPacket.get(p);
      if (!known) continue;
      const entry = this.carried.get(known.messageId);
      if (entry?.key !== known.key) continue;
      this.carried.delete(known.messageId);
      this.log.forget(known.messageId, known.key);
    }
  }

  /**
   * Unique per message: the process's boot tag, then the counter with its length first, so that a
   * process's tags sort in the order it made them (see inboundKey).
   */
  private tag(): string {
    const n = (this.counter++).toString(36);
    return `${this.boot}${n.length.toString(36)}${n}`;
  }
}
