// Device partitions (runtime/stream/partition.ts): the hash spreads the names plants use evenly
// and places each device independently of its name's structure; a configured map wins over it;
// a bad map is refused naming the device; and a message of another partition leaves nothing at
// intake (no identity, no count, no journal row) while the packet id it came under is let go.
import { randomUUID } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { GatewayMetrics } from '../../runtime/serve/metrics';
import { ResultStore } from '../../runtime/store';
import { MessageIdentity } from '../../runtime/stream/identity';
import { Intake } from '../../runtime/stream/intake';
import { MessageLedger } from '../../runtime/stream/ledger';
import { DevicePartition, partitionHash, partitionOf } from '../../runtime/stream/partition';
import { countRows, dbPath, openStore } from '../store/helpers';

/** pump-a … pump-z, pump-aa …: the names a spreadsheet gives its columns. */
const letters = (k: number): string => (k < 26 ? '' : letters(Math.floor(k / 26) - 1)) + String.fromCharCode(97 + (k % 26));
const MACHINES = ['press', 'pump', 'fan', 'conveyor'];

// Large enough fleets that ±15 % is a property of the hash and not luck: a hash that behaves like
// chance puts n devices in one of k partitions with a spread of √(n(k-1))/k around n/k, which for
// 2048 devices in 4 partitions is 3.8 % of even. (A plant of 8 or 16 devices is split as a coin
// would: up to 6 of pump-a…pump-h on one of two gateways. The map is for an exact split.)
const FLEETS: Record<string, string[]> = {
  'robot-0001 … robot-2048': Array.from({ length: 2048 }, (_, k) => `robot-${String(k + 1).padStart(4, '0')}`),
  'line1-press … line512-conveyor': Array.from({ length: 512 }, (_, l) => MACHINES.map((m) => `line${l + 1}-${m}`)).flat(),
  'pump-a … pump-cbx': Array.from({ length: 2048 }, (_, k) => `pump-${letters(k)}`),
  '4096 random UUIDs': Array.from({ length: 4096 }, () => randomUUID()),
};

describe('partitionOf', () => {
  for (const [fleet, devices] of Object.entries(FLEETS)) {
    it(`should give each of 2, 3 and 4 gateways within ±15 % of an even share of ${fleet}`, () => {
      for (const parts of [2, 3, 4]) {
        const counts = new Array<number>(parts).fill(0);
        for (const d of devices) counts[partitionOf(d, parts)]++;
        const even = devices.length / parts;
        for (const [p, n] of counts.entries()) expect(Math.abs(n - even) / even, `${parts} gateways: partition ${p} holds ${n} of ${devices.length}`).toBeLessThanOrEqual(0.15);
      }
    });
  }

  it('should place a device independently of the parity of its name: flipping any bit of any character flips each bit of the hash about half the time', () => {
    // FNV-1a without a finalizer failed this: its lowest bit is the parity of the name's
    // characters, so with two gateways robot-02, -04, -06, -08 all went to one of them.
    const names = ['robot-01', 'robot-16', 'line1-press', 'line4-conveyor', 'pump-a', 'pump-h', randomUUID()];
    const flips = new Array<number>(32).fill(0);
    let trials = 0;
    for (const name of names) {
      for (let i = 0; i < name.length; i++) {
        for (let bit = 0; bit < 7; bit++) {
          const other = name.slice(0, i) + String.fromCharCode(name.charCodeAt(i) ^ (1 << bit)) + name.slice(i + 1);
          const diff = partitionHash(name) ^ partitionHash(other);
          for (let b = 0; b < 32; b++) flips[b] += (diff >>> b) & 1;
          trials++;
        }
      }
    }
    // About 600 trials: chance keeps each rate within 0.5 ± 0.1 (five standard deviations).
    for (const [b, n] of flips.entries()) expect(n / trials, `bit ${b} of the hash`).toBeGreaterThan(0.4);
    for (const [b, n] of flips.entries()) expect(n / trials, `bit ${b} of the hash`).toBeLessThan(0.6);
  });

  it('should not put machines named in even steps on one gateway (pump-a, -c, -e … -y: FNV-1a alone put all 13 on one of two)', () => {
    const pumps = Array.from({ length: 13 }, (_, k) => `pump-${String.fromCharCode(97 + 2 * k)}`);
    const spread = (parts: number): number[] => {
      const counts = new Array<number>(parts).fill(0);
      for (const d of pumps) counts[partitionOf(d, parts)]++;
      return counts;
    };
    // A chance split of 13, as a coin would give it; before, 0/13 with two gateways and 0/7/0/6 with four.
    expect(spread(2)).toEqual([6, 7]);
    expect(spread(4).every((n) => n > 0)).toBe(true);
  });

  it('should give the same partition on every call and for every gateway (no state, no seed)', () => {
    expect(partitionHash('robot-07')).toBe(partitionHash('robot-07'));
    expect(new DevicePartition({ index: 0, count: 3 }).of('robot-07')).toBe(partitionOf('robot-07', 3));
    expect(new DevicePartition({ index: 2, count: 3 }).of('robot-07')).toBe(partitionOf('robot-07', 3));
  });

  it('should place a device the map names where the map says, whatever its hash', () => {
    const hashed = partitionOf('pump-a', 2);
    const devices = { 'pump-a': 1 - hashed };
    expect(partitionOf('pump-a', 2, devices)).toBe(1 - hashed);
    expect(new DevicePartition({ index: 1 - hashed, count: 2, devices }).owns('pump-a')).toBe(true);
    expect(new DevicePartition({ index: hashed, count: 2, devices }).owns('pump-a')).toBe(false);
    // Devices the map does not name still go by the hash.
    expect(new DevicePartition({ index: 0, count: 2, devices }).of('pump-b')).toBe(partitionOf('pump-b', 2));
  });

  it('should split a small plant exactly when the map places every device', () => {
    const pumps = 'abcdefgh'.split('').map((c) => `pump-${c}`);
    const devices = Object.fromEntries(pumps.map((d, k) => [d, k % 2]));
    const gateways = [0, 1].map((index) => new DevicePartition({ index, count: 2, devices }));
    expect(gateways.map((g) => pumps.filter((d) => g.owns(d)))).toEqual([
      ['pump-a', 'pump-c', 'pump-e', 'pump-g'],
      ['pump-b', 'pump-d', 'pump-f', 'pump-h'],
    ]);
  });

  it('should take a device named like an object property (constructor, __proto__) as any other device', () => {
    const p = new DevicePartition({ index: 0, count: 2, devices: { other: 1 } });
    for (const d of ['constructor', '__proto__', 'toString']) expect(p.of(d)).toBe(partitionHash(d) % 2);
    expect(partitionOf('constructor', 2, { other: 1 })).toBe(partitionHash('constructor') % 2);
  });

  it('should refuse a partition index or a placement out of range, naming the field or the device', () => {
    expect(() => new DevicePartition({ index: 2, count: 2 })).toThrow(/partition\.index: expected a whole number from 0 to 1, got 2/);
    expect(() => new DevicePartition({ index: 0, count: 0 })).toThrow(/partition\.count: expected a whole number ≥ 1, got 0/);
    expect(() => new DevicePartition({ index: 0, count: 2, devices: { 'pump-c': 2 } })).toThrow(/device 'pump-c' is placed in partition 2; expected 0 to 1/);
  });
});

describe('partition in the gateway config', () => {
  const config = (partition: unknown) => ({ pipelines: [{ name: 'pumps', topic: 'plant/{device}/vibration', decoder: { kind: 'json', channels: ['speed'] }, model: 'speed-table', partition }] });

  it('should take a device map with placements below count', () => {
    const c = parseGatewayConfig(config({ index: 1, count: 3, devices: { 'pump-a': 0, 'pump-b': 2 } }), 'gw.yaml');
    expect(c.pipelines[0].partition).toEqual({ index: 1, count: 3, devices: { 'pump-a': 0, 'pump-b': 2 } });
  });

  it('should refuse a placement at or past count, naming the file, the field and the device', () => {
    expect(() => parseGatewayConfig(config({ index: 0, count: 2, devices: { 'pump-a': 1, 'pump-c': 2 } }), 'gw.yaml')).toThrow(
      "gw.yaml: pipelines[0].partition.devices.pump-c: device 'pump-c' is placed in partition 2; expected 0 to 1 (count is 2)",
    );
  });

  it('should refuse a negative or fractional placement, and a map that is not an object', () => {
    expect(() => parseGatewayConfig(config({ index: 0, count: 2, devices: { 'pump-a': -1 } }), 'gw.yaml')).toThrow(/^gw\.yaml: pipelines\[0\]\.partition\.devices\.pump-a: /);
    expect(() => parseGatewayConfig(config({ index: 0, count: 2, devices: { 'pump-a': 0.5 } }), 'gw.yaml')).toThrow(/^gw\.yaml: pipelines\[0\]\.partition\.devices\.pump-a: /);
    expect(() => parseGatewayConfig(config({ index: 0, count: 2, devices: ['pump-a'] }), 'gw.yaml')).toThrow(/^gw\.yaml: pipelines\[0\]\.partition\.devices: /);
  });

  it('should refuse a device name that no topic level can hold', () => {
    expect(() => parseGatewayConfig(config({ index: 0, count: 2, devices: { 'hall/pump-a': 0 } }), 'gw.yaml')).toThrow(/device 'hall\/pump-a': expected a device id as the topic's \{device\} level holds it/);
    expect(() => parseGatewayConfig(config({ index: 0, count: 2, devices: { '': 0 } }), 'gw.yaml')).toThrow(/device '': expected a device id/);
  });

  it('should refuse an index at or past count', () => {
    expect(() => parseGatewayConfig(config({ index: 2, count: 2 }), 'gw.yaml')).toThrow('gw.yaml: pipelines[0].partition.index: expected a partition below count (2), got 2');
  });
});

describe('a message of another partition at intake', () => {
  const pkt = (messageId: number, topic: string, dup = false, payload = Buffer.from('{"speed":3.2}')) => ({ topic, payload, qos: 1 as const, messageId, dup });

  it('should let go of the message its packet id carried, so that a later DUP with those bytes is new', async () => {
    const file = dbPath();
    const store = ResultStore.open({ path: file });
    const identity = new MessageIdentity(store.deliveries('gw'));
    identity.session(false);
    const mine = identity.identify(pkt(9, 'plant/pump-a/speed'), 1);
    await mine.recorded;
    // The broker read the acknowledgement (the gate has not seen it yet) and reused the id.
    await identity.pass(pkt(9, 'plant/pump-b/speed'), 2);
    expect(identity.carriedCount).toBe(0);
    await store.close();
    // After a restart too: the log's row for the id no longer names the message.
    const again = ResultStore.open({ path: file });
    const restarted = new MessageIdentity(again.deliveries('gw'));
    restarted.session(true);
    expect(restarted.identify(pkt(9, 'plant/pump-a/speed', true), 4).redelivered).toBe(false);
    await again.close();
  });

  it('should take a later DUP under the packet id, with the bytes of the message it carried before, as new', async () => {
    const identity = new MessageIdentity(openStore().deliveries('gw'));
    identity.session(false);
    await identity.identify(pkt(9, 'plant/pump-a/speed'), 1).recorded;
    await identity.pass(pkt(9, 'plant/pump-b/speed'), 2);
    expect(identity.identify(pkt(9, 'plant/pump-a/speed', true), 3).redelivered).toBe(false);
  });

  it('should write nothing for a message whose packet id carried nothing', () => {
    const store = openStore();
    const deliveries = store.deliveries('gw');
    const note = vi.spyOn(deliveries, 'note');
    const identity = new MessageIdentity(deliveries);
    identity.session(false);
    expect(identity.pass(pkt(3, 'plant/pump-b/speed'), 1)).toBeUndefined();
    expect(identity.pass({ ...pkt(3, 'plant/pump-b/speed'), qos: 0, messageId: undefined }, 1)).toBeUndefined();
    expect(note).not.toHaveBeenCalled();
  });

  it('should not count, look up or journal a message the pipeline does not want, even one marked redelivered', async () => {
    const file = dbPath();
    const store = openStore({ path: file, batchMs: 1 });
    const journaled = vi.spyOn(store, 'journaled');
    const seen = vi.spyOn(store, 'seen');
    const metrics = new GatewayMetrics({ processMetrics: false });
    const processed: string[] = [];
    const intake = new Intake({ pipeline: 'p', rememberKeys: true, wants: (t) => t.includes('pump-a'), room: () => undefined, process: (m) => processed.push(m.topic) }, store, new MessageLedger('p'), metrics);
    await intake.accept({ topic: 'plant/pump-b/speed', payload: Buffer.from('{}'), receivedMs: 1, redelivered: true, key: 'k1', qos: 1 });
    expect(journaled).not.toHaveBeenCalled();
    expect(seen).not.toHaveBeenCalled();
    expect(countRows(file, 'journal')).toBe(0);
    expect((await metrics.messages.get()).values).toEqual([]);
    await intake.accept({ topic: 'plant/pump-a/speed', payload: Buffer.from('{}'), receivedMs: 2, redelivered: false, key: 'k2', qos: 1 });
    expect(processed).toEqual(['plant/pump-a/speed']);
    expect((await metrics.messages.get()).values.map((v) => v.value)).toEqual([1]);
  });
});
