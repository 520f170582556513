// The acknowledgement gate: a Duplex between mqtt.js and one broker connection's socket that holds
// the client's PUBACK and PUBCOMP packets until the message they acknowledge is journaled.
//
// Why here, on the byte stream, and not inside mqtt.js: mqtt.js writes a QoS 1 message's PUBACK
// (and a QoS 2 message's PUBCOMP) as soon as the `handleMessage` callback is called, and parses the
// next packet only after that. Holding the callback until the journal commit would give one commit
// per message; calling it at once and catching the acknowledgement needs mqtt.js's private
// `_sendPacket`; `customHandleAcks` is MQTT 5 only and also answers before the next packet. The
// stream mqtt.js writes to is ours through its public `MqttClient(streamBuilder, options)`
// constructor, and MQTT's framing (a fixed header: type nibble, remaining length) is the protocol's
// own, not mqtt.js's. One gate per connection: what it holds dies with the socket, so an
// acknowledgement is never sent on another connection.
//
// The gate also tells which sent acknowledgements the broker has processed: a broker handles a
// connection's packets in order, so its PINGRESP to a PINGREQ written after an acknowledgement
// means the acknowledgement was read. After each run of acknowledgements the gate writes one
// PINGREQ of its own (MQTT lets a client ping at any time) and keeps its PINGRESP from mqtt.js.
//
// A partitioned gateway receives every device's messages and keeps only its own: the gate drops
// the others' QoS 0/1 PUBLISHes before mqtt.js parses them (hooks.drops), and acknowledges a QoS 1
// one itself. PUBACKs must leave in the order the PUBLISHes came (MQTT-4.6.0-2), and a forwarded
// message's hold comes later (mqtt.js parses asynchronously): so each forwarded QoS 1 PUBLISH
// takes its place in the queue on arrival, and its hold fills that place.
import { Duplex } from 'node:stream';
import { EdgeInferError } from '../errors';

/** MQTT control packet types (high nibble of the first byte). */
export const PUBACK = 4;
export const PUBCOMP = 7;
const PUBLISH = 3;
const PINGREQ = 12;
const PINGRESP = 13;
const PINGREQ_BYTES = Buffer.from([PINGREQ << 4, 0]);

/** Acknowledgements mqtt.js has yet to write for a connection that is gone: never to be sent. */
export class OrphanAcks {
  private readonly counts = new Map<number, number>();

  add(type: number, messageId: number): void {
    const k = type * 65536 + messageId;
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }

  /** True (and one less) when an acknowledgement of this type and id belongs to a connection that is gone. */
  take(type: number, messageId: number): boolean {
    const k = type * 65536 + messageId;
    const n = this.counts.get(k) ?? 0;
    if (n === 0) return false;
    if (n === 1) this.counts.delete(k);
    else this.counts.set(k, n - 1);
    return true;
  }

  get size(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }
}

/** One held acknowledgement: settle it when the message is journaled (or failed). */
export interface AckHold<T> {
  readonly messageId: number;
  readonly type: number;
  readonly token: T;
  /** ok: the acknowledgement may go (in arrival order); not ok: it never goes and the connection drops. */
  settle(ok: boolean): void;
}

interface Entry<T> {
  hold?: { messageId: number; type: number; token: T; state: 'pending' | 'ok' | 'failed' };
  frame?: Buffer;
  /** A QoS 1 PUBLISH forwarded to mqtt.js whose hold has yet to come: the place its PUBACK takes. */
  awaiting?: number;
}

export interface AckGateHooks<T> {
  orphans: OrphanAcks;
  /** Acknowledgements the broker has read (proved by a PINGRESP), oldest first. */
  onConfirmed?: (tokens: T[]) => void;
  /** A held acknowledgement's message failed: the gate drops the connection. */
  onDropped?: (err: EdgeInferError) => void;
  /**
   * True when an inbound QoS 0/1 PUBLISH on this topic (packet id for QoS 1) is not wanted here:
   * the gate drops it before mqtt.js parses it and writes a QoS 1 one's PUBACK itself. With this
   * hook every forwarded QoS 1 PUBLISH must get its hold (as mqtt-source gives each one).
   */
  drops?: (topic: string, messageId: number | undefined) => boolean;
}

/**
 * Splits a byte stream into MQTT control packets by their fixed header. Returns the complete
 * frames and keeps the rest for the next chunk.
 */
export class MqttFramer {
  private rest: Buffer | undefined;

  constructor(private readonly where: string) {}

  push(chunk: Buffer): Buffer[] {
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = undefined;
    const frames: Buffer[] = [];
    let at = 0;
    for (;;) {
      if (buf.length - at < 2) break;
      let length = 0;
      let multiplier = 1;
      let i = at + 1;
      let complete = false;
      for (let n = 0; n < 4 && i < buf.length; n++, i++) {
        length += (buf[i] & 0x7f) * multiplier;
        multiplier *= 128;
        if ((buf[i] & 0x80) === 0) {
          complete = true;
          i++;
          break;
        }
        if (n === 3) throw new EdgeInferError('E_BROKER', `${this.where}: malformed MQTT packet: remaining length longer than 4 bytes`);
      }
      if (!complete || buf.length < i + length) break;
      frames.push(buf.subarray(at, i + length));
      at = i + length;
    }
    if (at < buf.length) this.rest = Buffer.from(buf.subarray(at));
    return frames;
  }
}

/** Offset of the variable header (after type byte and remaining length) in a whole frame. */
function headerLength(frame: Buffer): number {
  let i = 1;
  while (frame[i] & 0x80) i++;
  return i + 1;
}

export class AckGate<T = unknown> extends Duplex {
  /** Held acknowledgements and the frames queued behind them, in the order mqtt.js wrote them. */
  private readonly queue: Array<Entry<T>> = [];
  private readonly out: MqttFramer;
  private readonly inFramer: MqttFramer;
  /** Acknowledgements written to the socket, not yet proved read by the broker. */
  private readonly unconfirmed: Array<{ seq: number; token: T }> = [];
  private written = 0;
  /** PINGREQs on the wire, oldest first: ours (answered PINGRESP kept from mqtt.js) or mqtt.js's. */
  private readonly pings: Array<{ ours: boolean; upTo: number }> = [];
  private probing = false;
  private gone = false;
  /** The socket is corked until the end of this tick (see send). */
  private corked = false;
  /** Places in the queue waiting for their hold (entries with `awaiting`). */
  private awaiting = 0;

  constructor(
    private readonly transport: Duplex,
    private readonly hooks: AckGateHooks<T>,
    where = 'broker connection',
  ) {
    super();
    this.out = new MqttFramer(`${where} (to the broker)`);
    this.inFramer = new MqttFramer(`${where} (from the broker)`);
    transport.on('data', (chunk: Buffer) => this.incoming(chunk));
    transport.on('end', () => this.push(null));
    transport.on('error', (err) => this.destroy(err));
    transport.on('close', () => this.destroy());
    transport.on('drain', () => this.emit('transport-drain'));
  }

  /** Held acknowledgements not yet sent. */
  get heldCount(): number {
    return this.queue.filter((e) => e.hold).length;
  }

  /**
   * Holds the acknowledgement (PUBACK or PUBCOMP) of message `messageId` that mqtt.js is about to
   * write: call before the handleMessage callback. Acknowledgements leave in the order held.
   */
  hold(messageId: number, type: typeof PUBACK | typeof PUBCOMP, token: T): AckHold<T> {
    const hold = { messageId, type, token, state: 'pending' as 'pending' | 'ok' | 'failed' };
    if (this.gone) {
      // mqtt.js will write it to whatever connection comes next: it must not go there.
      this.hooks.orphans.add(type, messageId);
      return { messageId, type, token, settle: () => undefined };
    }
    const entry = (type === PUBACK && this.placeOf(messageId)) || {};
    entry.hold = hold;
    if (entry.awaiting === undefined) this.queue.push(entry);
    else {
      entry.awaiting = undefined;
      this.awaiting--;
    }
    return {
      messageId,
      type,
      token,
      settle: (ok) => {
        if (hold.state !== 'pending') return;
        hold.state = ok ? 'ok' : 'failed';
        this.release();
      },
    };
  }

  /**
   * The place a forwarded QoS 1 PUBLISH took on arrival, for its hold. mqtt.js hands QoS 1
   * messages over in arrival order, so places before it whose holds never came are of PUBLISHes
   * mqtt.js did not hand over (a packet it could not parse): mqtt.js never acknowledges those,
   * and they must not hold back the acknowledgements behind them.
   */
  private placeOf(messageId: number): Entry<T> | undefined {
    if (this.awaiting === 0) return undefined;
    const at = this.queue.findIndex((e) => e.awaiting === messageId);
    if (at < 0) return undefined;
    const place = this.queue[at];
    for (let i = at - 1; i >= 0; i--) {
      if (this.queue[i].awaiting === undefined) continue;
      this.queue.splice(i, 1);
      this.awaiting--;
    }
    return place;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    let frames: Buffer[];
    try {
      frames = this.out.push(chunk);
    } catch (err) {
      return done(err as Error);
    }
    for (const frame of frames) this.outgoing(frame);
    this.release();
    // The socket's own back-pressure reaches mqtt.js: it waits for 'drain' like on a socket.
    if (this.transport.writableNeedDrain) this.once('transport-drain', () => done());
    else done();
  }

  override _final(done: (err?: Error | null) => void): void {
    this.transport.end();
    done();
  }

  override _read(): void {
    this.transport.resume();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.forget();
    // A write waiting for the socket's drain will never get it.
    this.emit('transport-drain');
    this.transport.destroy();
    done(err);
  }

  private outgoing(frame: Buffer): void {
    const type = frame[0] >> 4;
    if (type === PUBACK || type === PUBCOMP) {
      const id = frame.readUInt16BE(headerLength(frame));
      const entry = this.queue.find((e) => e.hold && e.frame === undefined && e.hold.messageId === id && e.hold.type === type);
      if (entry) {
        entry.frame = frame;
        return;
      }
      // Written for a message of a connection that is gone (mqtt.js queues what it writes while
      // disconnected and sends it after the next CONNACK): that message was never journaled here.
      if (this.hooks.orphans.take(type, id)) return;
      // Any other acknowledgement (a PUBCOMP for a message already handled) keeps MQTT's order.
      if (this.queue.length > 0) {
        this.queue.push({ frame });
        return;
      }
    }
    if (type === PINGREQ) this.pings.push({ ours: false, upTo: this.written });
    this.transport.write(frame);
  }

  /** Sends the acknowledgements whose messages are done, in the order held. */
  private release(): void {
    let sent = false;
    while (this.queue.length > 0 && !this.gone) {
      const head = this.queue[0];
      const hold = head.hold;
      if (head.awaiting !== undefined) break;
      if (hold) {
        if (hold.state === 'pending' || head.frame === undefined) break;
        if (hold.state === 'failed') {
          // Not acknowledging it while acknowledging later ones would break MQTT's order: drop
          // the connection, and the broker delivers everything unacknowledged again.
          const err = new EdgeInferError('E_BROKER', `message ${hold.messageId} was not journaled: connection dropped so the broker delivers it again`);
          this.hooks.onDropped?.(err);
          this.destroy();
          return;
        }
        this.unconfirmed.push({ seq: ++this.written, token: hold.token });
        sent = true;
      }
      this.queue.shift();
      this.send(head.frame!);
    }
    if (sent) this.probe();
  }

  /**
   * Writes to the socket, corked until the end of the tick: acknowledgements are released one
   * message at a time (each message's handler settles on its own), and one write per
   * acknowledgement made a system call per message, also for the messages a partitioned gateway
   * only drops. Order is the socket's: corking only groups what is written meanwhile.
   */
  private send(frame: Buffer): void {
    if (!this.corked) {
      this.corked = true;
      this.transport.cork();
      process.nextTick(() => {
        this.corked = false;
        this.transport.uncork();
      });
    }
    this.transport.write(frame);
  }

  /** One PINGREQ of ours at a time, after acknowledgements were sent since the last one. */
  private probe(): void {
    if (this.probing || this.gone || !this.hooks.onConfirmed || this.unconfirmed.length === 0) return;
    this.probing = true;
    this.pings.push({ ours: true, upTo: this.written });
    this.send(PINGREQ_BYTES);
  }

  private incoming(chunk: Buffer): void {
    let frames: Buffer[];
    try {
      frames = this.inFramer.push(chunk);
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    let keep: Buffer[] | undefined;
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i];
      const type = frame[0] >> 4;
      if (type === PUBLISH && this.hooks.drops) {
        if (this.dropped(frame)) keep ??= frames.slice(0, i);
        else keep?.push(frame);
        continue;
      }
      if (type !== PINGRESP) {
        keep?.push(frame);
        continue;
      }
      const ping = this.pings.shift();
      if (ping) this.confirm(ping.upTo);
      if (ping?.ours) {
        // mqtt.js did not ask for this one: it never sees it.
        keep ??= frames.slice(0, i);
        this.probing = false;
        this.probe();
      } else {
        keep?.push(frame);
      }
    }
    const forward = keep ?? frames;
    if (forward.length === 0) return;
    const data = forward.length === 1 ? forward[0] : Buffer.concat(forward);
    // mqtt.js not keeping up (or held back by flow control): stop reading from the socket.
    if (!this.push(data)) this.transport.pause();
  }

  /**
   * An inbound PUBLISH: true when it is dropped here (and a QoS 1 one acknowledged in its turn);
   * a forwarded QoS 1 one takes its place in the queue. QoS 2 always goes to mqtt.js (its PUBREC
   * and PUBREL flow), and so does a PUBLISH without a topic (an MQTT 5 topic alias names it).
   */
  private dropped(frame: Buffer): boolean {
    const qos = (frame[0] >> 1) & 3;
    if (qos === 2 || qos === 3) return false;
    const at = headerLength(frame);
    if (frame.length < at + 2) return false;
    const topicEnd = at + 2 + frame.readUInt16BE(at);
    if (frame.length < topicEnd + (qos === 1 ? 2 : 0)) return false;
    const messageId = qos === 1 ? frame.readUInt16BE(topicEnd) : undefined;
    if (topicEnd > at + 2 && this.hooks.drops!(frame.toString('utf8', at + 2, topicEnd), messageId)) {
      if (messageId !== undefined && !this.gone) {
        const puback = Buffer.from([PUBACK << 4, 2, messageId >> 8, messageId & 0xff]);
        if (this.queue.length === 0) this.send(puback);
        else this.queue.push({ frame: puback });
      }
      return true;
    }
    if (messageId !== undefined && !this.gone) {
      this.queue.push({ awaiting: messageId });
      this.awaiting++;
    }
    return false;
  }

  private confirm(upTo: number): void {
    let n = 0;
    while (n < this.unconfirmed.length && this.unconfirmed[n].seq <= upTo) n++;
    if (n === 0) return;
    const tokens = this.unconfirmed.splice(0, n).map((u) => u.token);
    this.hooks.onConfirmed?.(tokens);
  }

  /** The socket is gone: held acknowledgements are never sent, and ones mqtt.js has yet to write never will be. */
  private forget(): void {
    if (this.gone) return;
    this.gone = true;
    for (const e of this.queue) {
      if (e.hold && e.frame === undefined) this.hooks.orphans.add(e.hold.type, e.hold.messageId);
    }
    // Places still waiting for their hold are not orphans: hold() on a gate that is gone adds them.
    this.queue.length = 0;
    this.awaiting = 0;
  }
}
