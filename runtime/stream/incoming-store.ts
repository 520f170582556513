// mqtt.js's incoming store (inbound QoS 2 between PUBREC and PUBCOMP) kept in the result log, so
// that a QoS 2 message survives a crash after its PUBREC: mqtt.js puts the PUBLISH here before it
// answers PUBREC, and on PUBREL gets it back and hands it to the gateway. After a restart the
// broker sends that PUBREL again (persistent session) and the message is found here.
import { Readable } from 'node:stream';
import type { IPublishPacket, IStore } from 'mqtt';
import type { HeldPublish } from '../store';

/** Where the held messages live (ResultStore.incoming() gives one per client id). */
export interface IncomingLog {
  put(p: HeldPublish): void;
  get(messageId: number): HeldPublish | undefined;
  all(): HeldPublish[];
  del(messageId: number): void;
  clear(): void;
}

type Callback = (err?: Error, packet?: IPublishPacket) => void;

export class PersistentIncomingStore implements IStore {
  /** Ids put by this process: a message found only on disk came from a run before, and may have been journaled then. */
  private readonly mine = new Set<number>();
  /** Ids handed to the gateway by this process and still kept: a PUBREL for one again is a redelivery. */
  private readonly handed = new Set<number>();
  /** Ids whose deletion waits until their message is journaled (see hold()). */
  private readonly held = new Map<number, boolean>();

  constructor(
    private readonly log: IncomingLog,
    /**
     * The log could not be written or read. mqtt.js would answer PUBREC (or PUBCOMP) whatever the
     * store says, so no callback is called and this drops the connection instead: the broker
     * sends the message (or the PUBREL) again.
     */
    private readonly onFailure: (err: Error) => void,
  ) {}

  put(packet: Parameters<IStore['put']>[0], cb: (err?: Error) => void): this {
    const p = packet as IPublishPacket;
    try {
      this.handed.delete(p.messageId as number);
      this.log.put({ messageId: p.messageId as number, topic: p.topic, payload: typeof p.payload === 'string' ? Buffer.from(p.payload) : p.payload, qos: p.qos, retain: p.retain, dup: p.dup, properties: p.properties as Record<string, unknown> | undefined });
      this.mine.add(p.messageId as number);
    } catch (err) {
      return this.fail(err);
    }
    cb();
    return this;
  }

  get(packet: { messageId?: number }, cb: Callback): this {
    let held: HeldPublish | undefined;
    try {
      held = this.log.get(packet.messageId as number);
    } catch (err) {
      return this.fail(err);
    }
    if (!held) {
      cb(new Error('missing packet'));
      return this;
    }
    // Kept by an earlier run, which may have journaled it before it stopped, or handed over once
    // already (its connection dropped before the journal answered): a redelivery to check.
    const dup = held.dup || !this.mine.has(held.messageId) || this.handed.has(held.messageId);
    this.handed.add(held.messageId);
    cb(undefined, { cmd: 'publish', messageId: held.messageId, topic: held.topic, payload: Buffer.from(held.payload), qos: held.qos, retain: held.retain, dup, properties: held.properties } as IPublishPacket);
    return this;
  }

  /**
   * mqtt.js deletes the message as soon as the handler was called, before the handler's journal
   * commit; while an id is held, its deletion waits for release().
   */
  hold(messageId: number): void {
    this.held.set(messageId, false);
  }

  /** The message is journaled: a deletion mqtt.js asked for meanwhile happens now. */
  release(messageId: number): void {
    const deleted = this.held.get(messageId);
    this.held.delete(messageId);
    if (deleted) this.delete(messageId);
  }

  /** Forgets holds of a connection that is gone: their messages stay until the broker's PUBREL comes again. */
  dropHolds(): void {
    this.held.clear();
  }

  del(packet: { messageId?: number }, cb: Callback): this {
    const id = packet.messageId as number;
    if (this.held.has(id)) this.held.set(id, true);
    else this.delete(id);
    cb(undefined, packet as IPublishPacket);
    return this;
  }

  /** The broker has no session for this client: nothing held will be released. */
  clear(): void {
    this.log.clear();
    this.mine.clear();
    this.handed.clear();
    this.held.clear();
  }

  createStream(): ReturnType<IStore['createStream']> {
    const rows = this.log.all();
    return Readable.from(rows.map((h) => ({ cmd: 'publish', messageId: h.messageId, topic: h.topic, payload: Buffer.from(h.payload), qos: h.qos, retain: h.retain, dup: h.dup }))) as unknown as ReturnType<IStore['createStream']>;
  }

  /** The rows stay: they are what the next run needs. */
  close(cb: (err?: Error) => void): void {
    cb();
  }

  private delete(messageId: number): void {
    this.mine.delete(messageId);
    this.handed.delete(messageId);
    try {
      this.log.del(messageId);
    } catch {
      // The log is closed: the row stays, and a PUBREL for it after a restart finds a message
      // that was journaled, which the pipelines recognise.
    }
  }

  private fail(err: unknown): this {
    this.onFailure(err instanceof Error ? err : new Error(String(err)));
    return this;
  }
}
