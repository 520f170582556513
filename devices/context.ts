// What every signal model of one simulated machine shares.
import type { BearingFrequencies } from './bearing';
import { bearingFrequencies } from './bearing';
import type { Condition } from './faults';
import type { Drive } from './drive';
import type { MachineTraits } from './machine';
import type { DeviceChannel, DeviceProfile } from './profile';

export interface MachineContext {
  profile: DeviceProfile;
  traits: MachineTraits;
  drive: Drive;
  condition: Condition;
  seed: number;
  /** Whether machine-to-machine spread is on (sensor offsets follow it too). */
  individual: boolean;
  /** Bearing defect frequencies per Hz of shaft speed (they scale with speed). */
  orders: BearingFrequencies;
}

export function machineContext(profile: DeviceProfile, traits: MachineTraits, drive: Drive, condition: Condition, seed: number, individual: boolean): MachineContext {
  return { profile, traits, drive, condition, seed, individual, orders: bearingFrequencies(profile.machine.bearing, 1) };
}

/** A signal model renders the channels of one signal kind in one stream, sample by sample, keeping its state between calls. */
export interface SignalModel {
  /** Writes samples at `times` (seconds) into `outs` (one array per channel, in the order the model was given them). */
  render(times: Float64Array, outs: Float32Array[]): void;
}

export type ChannelOf<S extends DeviceChannel['signal']> = Extract<DeviceChannel, { signal: S }>;

/** x mod 1 in [0, 1), for turning revolutions into angles without losing precision. */
export function frac(x: number): number {
  return x - Math.floor(x);
}

export const TWO_PI = 2 * Math.PI;
