// The acknowledgement gate's drop on arrival (runtime/stream/ack-gate.ts): a QoS 0/1 PUBLISH the
// gateway does not want never reaches mqtt.js, a QoS 1 one is acknowledged by the gate, and
// PUBACKs still leave in the order their PUBLISHes came (MQTT-4.6.0-2), also behind a forwarded
// message whose hold has not come yet. A socket stand-in records what is written; what is pushed
// into it is what the broker sends.
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AckGate, OrphanAcks, PUBACK } from '../../runtime/stream/ack-gate';

/** An MQTT PUBLISH frame (remaining length as MQTT encodes it). */
function publishFrame(topic: string, qos: 0 | 1 | 2, messageId?: number, payload = Buffer.from('{"speed":1}')): Buffer {
  const t = Buffer.from(topic);
  const body = Buffer.concat([Buffer.from([t.length >> 8, t.length & 0xff]), t, qos > 0 ? Buffer.from([messageId! >> 8, messageId! & 0xff]) : Buffer.alloc(0), payload]);
  const length: number[] = [];
  let n = body.length;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    length.push(b);
  } while (n > 0);
  return Buffer.concat([Buffer.from([0x30 | (qos << 1), ...length]), body]);
}

const puback = (messageId: number): Buffer => Buffer.from([0x40, 2, messageId >> 8, messageId & 0xff]);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A gate on a socket stand-in: `written` is what reached the broker, `forwarded` what reached mqtt.js. */
function gateOn(drops: (topic: string, messageId: number | undefined) => boolean) {
  const written: Buffer[] = [];
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, done) {
      written.push(chunk);
      done();
    },
  });
  const asked: Array<[string, number | undefined]> = [];
  const gate = new AckGate<string>(socket, {
    orphans: new OrphanAcks(),
    drops: (topic, messageId) => {
      asked.push([topic, messageId]);
      return drops(topic, messageId);
    },
  });
  const forwarded: Buffer[] = [];
  gate.on('data', (chunk: Buffer) => forwarded.push(chunk));
  const receive = async (...frames: Buffer[]): Promise<void> => {
    socket.push(Buffer.concat(frames));
    await tick();
  };
  return { gate, socket, written: () => Buffer.concat(written), forwarded: () => Buffer.concat(forwarded), asked, receive };
}

const otherPartition = (topic: string): boolean => topic.startsWith('machine/theirs/');

describe('the acknowledgement gate dropping unwanted messages on arrival', () => {
  it('should acknowledge a dropped QoS 1 message itself and never hand it to mqtt.js', async () => {
    const g = gateOn(otherPartition);
    await g.receive(publishFrame('machine/theirs/speed', 1, 0x1234));
    expect(g.asked).toEqual([['machine/theirs/speed', 0x1234]]);
    expect(g.forwarded()).toEqual(Buffer.alloc(0));
    expect(g.written()).toEqual(puback(0x1234));
    g.gate.destroy();
  });

  it('should drop a QoS 0 message silently', async () => {
    const g = gateOn(otherPartition);
    await g.receive(publishFrame('machine/theirs/speed', 0));
    expect(g.asked).toEqual([['machine/theirs/speed', undefined]]);
    expect(g.forwarded()).toEqual(Buffer.alloc(0));
    expect(g.written()).toEqual(Buffer.alloc(0));
    g.gate.destroy();
  });

  it('should hand over wanted messages, QoS 2 messages and messages named only by a topic alias, in the order they came', async () => {
    const g = gateOn(() => true);
    const qos2 = publishFrame('machine/theirs/speed', 2, 7);
    // MQTT 5: an empty topic (the alias is in the properties, which the gate does not read).
    const aliasOnly = publishFrame('', 1, 8);
    const wanted = gateOn(() => false);
    await g.receive(qos2, aliasOnly);
    expect(g.asked).toEqual([]);
    expect(g.forwarded()).toEqual(Buffer.concat([qos2, aliasOnly]));
    expect(g.written()).toEqual(Buffer.alloc(0));
    const mine = [publishFrame('machine/mine/speed', 1, 1), publishFrame('machine/mine/speed', 0)];
    await wanted.receive(...mine);
    expect(wanted.forwarded()).toEqual(Buffer.concat(mine));
    g.gate.destroy();
    wanted.gate.destroy();
  });

  it('should send a dropped message’s PUBACK only after the PUBACK of a QoS 1 message that came before it, whose hold comes later', async () => {
    const g = gateOn(otherPartition);
    // M1 is forwarded (mqtt.js is still parsing it), D is dropped right behind it.
    await g.receive(publishFrame('machine/mine/speed', 1, 1), publishFrame('machine/theirs/speed', 1, 2));
    expect(g.written(), 'D acknowledged before M1').toEqual(Buffer.alloc(0));
    // mqtt.js hands M1 over: its hold, then the PUBACK it writes, held until M1 is journaled.
    const hold = g.gate.hold(1, PUBACK, 'M1');
    g.gate.write(puback(1));
    await tick();
    expect(g.written(), 'D acknowledged while M1 is being journaled').toEqual(Buffer.alloc(0));
    hold.settle(true);
    await tick();
    expect(g.written().subarray(0, 8)).toEqual(Buffer.concat([puback(1), puback(2)]));
    g.gate.destroy();
  });

  it('should send a dropped message’s PUBACK at once when no acknowledgement is ahead of it', async () => {
    const g = gateOn(otherPartition);
    await g.receive(publishFrame('machine/mine/speed', 1, 1));
    const hold = g.gate.hold(1, PUBACK, 'M1');
    g.gate.write(puback(1));
    hold.settle(true);
    await tick();
    await g.receive(publishFrame('machine/theirs/speed', 1, 2));
    expect(g.written().subarray(0, 4)).toEqual(puback(1));
    expect(g.written().subarray(-4)).toEqual(puback(2));
    g.gate.destroy();
  });

  it('should not let a PUBLISH mqtt.js never handed over hold back the acknowledgements behind it', async () => {
    const g = gateOn(otherPartition);
    // X (id 5) is forwarded but never handed over (say mqtt.js could not parse it); M (id 6) is.
    await g.receive(publishFrame('machine/mine/speed', 1, 5), publishFrame('machine/theirs/speed', 1, 9), publishFrame('machine/mine/speed', 1, 6));
    const hold = g.gate.hold(6, PUBACK, 'M');
    g.gate.write(puback(6));
    hold.settle(true);
    await tick();
    // D (id 9) came after X: it goes once M's hold shows X was passed over, in arrival order with M.
    expect(g.written().subarray(0, 8)).toEqual(Buffer.concat([puback(9), puback(6)]));
    g.gate.destroy();
  });

  it('should forward a message whose packet id the hook says still carries a message (and acknowledge nothing for it)', async () => {
    const carried = new Set([3]);
    const g = gateOn((topic, messageId) => (messageId === undefined || !carried.has(messageId)) && otherPartition(topic));
    const frame = publishFrame('machine/theirs/speed', 1, 3);
    await g.receive(frame);
    expect(g.forwarded()).toEqual(frame);
    expect(g.written()).toEqual(Buffer.alloc(0));
    g.gate.destroy();
  });

  it('should add no orphan for a forwarded message whose hold never came when the connection goes', async () => {
    const orphans = new OrphanAcks();
    const socket = new Duplex({ read() {}, write: (_c, _e, done) => done() });
    const gate = new AckGate<string>(socket, { orphans, drops: otherPartition });
    gate.on('data', () => undefined);
    socket.push(publishFrame('machine/mine/speed', 1, 4));
    await tick();
    gate.destroy();
    await tick();
    expect(orphans.size).toBe(0);
    // mqtt.js hands it over after all: its PUBACK, written to the next connection, must not go.
    gate.hold(4, PUBACK, 'late');
    expect(orphans.size).toBe(1);
  });
});
