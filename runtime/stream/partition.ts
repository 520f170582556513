// Device partitions: which of several gateways on one broker owns a device, so that each device's
// windows stay on one gateway. Every gateway computes the same answer on its own (no cluster):
// a device the config's map names goes where the map says; any other goes by a hash of its id.
//
// The hash is FNV-1a followed by murmur3's 32-bit finalizer (fmix32). FNV-1a alone does not
// avalanche into its low bits: modulo 2 it is the parity of the id's characters, so `robot-02`,
// `-04`, `-06`, `-08` all landed on one of two gateways. The finalizer mixes every bit of the
// state into every bit of the result, for two multiplications per device.
import { EdgeInferError } from '../errors';
import { fmix32 } from '../hash';

/** This gateway's slot among `count`, and devices placed by name (they win over the hash). */
export interface PartitionSpec {
  /** The partition this gateway handles, 0 ≤ index < count. */
  index: number;
  /** How many gateways share the devices. */
  count: number;
  /** Device id → partition index, for devices the hash should not place. */
  devices?: Readonly<Record<string, number>>;
}

/** FNV-1a over the id's UTF-16 code units, then murmur3 fmix32: an unsigned 32-bit hash. */
export function partitionHash(device: string): number {
  let h = 2166136261;
  for (let i = 0; i < device.length; i++) h = Math.imul(h ^ device.charCodeAt(i), 16777619);
  return fmix32(h);
}

/** Which of `count` gateways owns a device: the map's index when it names the device, else the hash's. */
export function partitionOf(device: string, count: number, devices?: Readonly<Record<string, number>>): number {
  if (devices && Object.hasOwn(devices, device)) return devices[device];
  return partitionHash(device) % count;
}

/**
 * One gateway's partition, checked once: the hot path (every inbound message) asks only `owns`.
 * Throws E_ARGUMENT naming the field or the device when the spec cannot be right.
 */
export class DevicePartition {
  readonly index: number;
  readonly count: number;
  private readonly placed: ReadonlyMap<string, number>;

  constructor(spec: PartitionSpec, where = 'partition') {
    const { index, count } = spec;
    if (!Number.isInteger(count) || count < 1) throw new EdgeInferError('E_ARGUMENT', `${where}.count: expected a whole number ≥ 1, got ${count}`);
    if (!Number.isInteger(index) || index < 0 || index >= count) throw new EdgeInferError('E_ARGUMENT', `${where}.index: expected a whole number from 0 to ${count - 1}, got ${index}`);
    for (const [device, i] of Object.entries(spec.devices ?? {})) {
      if (!Number.isInteger(i) || i < 0 || i >= count) throw new EdgeInferError('E_ARGUMENT', `${where}.devices: device '${device}' is placed in partition ${i}; expected 0 to ${count - 1} (count is ${count})`);
    }
    this.index = index;
    this.count = count;
    // A Map: a device id such as `constructor` or `__proto__` is a device like any other.
    this.placed = new Map(Object.entries(spec.devices ?? {}));
  }

  /** The partition a device belongs to. */
  of(device: string): number {
    return this.placed.get(device) ?? partitionHash(device) % this.count;
  }

  /** True when this gateway handles the device. */
  owns(device: string): boolean {
    return this.of(device) === this.index;
  }
}
