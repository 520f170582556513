// How the machine turns: its load wanders slowly and an induction motor's speed drops as the
// load (and with it the slip) rises. Every stream reads the same drive, so the current's
// sidebands sit exactly at the vibration's 1x at any instant.
import type { DeviceProfile } from './profile';
import type { MachineTraits } from './machine';
import { Random } from './random';

export interface Drive {
  /** Shaft revolutions since t = 0; its fractional part is the shaft angle. Continuous in t. */
  revolutions(t: number): number;
  /** Shaft speed at time t, Hz. */
  shaftHz(t: number): number;
  /** Motor load at time t, per unit of rated. */
  load(t: number): number;
}

const MIN_LOAD = 0.05;
const MAX_LOAD = 1.25;
/** The load deviation is kept within ±2.5 σ: a pump does not run dry or stall in the simulation. */
const MAX_DEVIATION = 2.5;

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

/** Speed and load for a normalized load deviation u (in standard deviations). */
export function operatingPoint(profile: DeviceProfile, traits: MachineTraits, u: number): { shaftHz: number; load: number } {
  const m = profile.machine;
  const d = clamp(u, -MAX_DEVIATION, MAX_DEVIATION);
  return {
    shaftHz: Math.max(0.1, m.shaftHz + traits.speedOffsetHz - m.shaftSpreadHz * d),
    load: clamp(m.load.nominal + m.load.spread * d, MIN_LOAD, MAX_LOAD),
  };
}

/**
 * The load deviation is a mean-reverting random walk (Ornstein–Uhlenbeck) sampled at knots one
 * second apart and interpolated linearly between them; with linear speed between knots the
 * revolutions are its exact integral, so the shaft angle is the same whichever stream asks and
 * however the samples are chunked. Streams only move forward, so knots older than an hour
 * behind the newest are dropped: a plant that runs for months keeps a fixed-size drive.
 */
export class WanderingDrive implements Drive {
  private static readonly KNOT_S = 1;
  /** Knots kept behind the newest: far more than streams of one machine drift apart. */
  static readonly KEPT_KNOTS = 3600;
  private readonly rng: Random;
  private readonly decay: number;
  private hz: number[] = [];
  private loads: number[] = [];
  /** Revolutions at each knot. */
  private revs: number[] = [0];
  /** Index of the first knot kept. */
  private first = 0;
  private u: number;

  constructor(
    private readonly profile: DeviceProfile,
    private readonly traits: MachineTraits,
    seed: number,
  ) {
    this.rng = new Random(seed, 'drive');
    this.decay = Math.exp(-WanderingDrive.KNOT_S / profile.machine.load.timeConstantS);
    this.u = this.rng.gaussian();
    this.push();
  }

  private push(): void {
    const p = operatingPoint(this.profile, this.traits, this.u);
    this.hz.push(p.shaftHz);
    this.loads.push(p.load);
    this.u = this.decay * this.u + Math.sqrt(1 - this.decay * this.decay) * this.rng.gaussian();
  }

  /** Position of the last located time within its knot, 0..1 (a field: locate runs per sample). */
  private x = 0;

  /** The stored index of the knot at or before t, growing the knots as far as t needs. */
  private locate(t: number): number {
    const at = Math.max(0, t) / WanderingDrive.KNOT_S;
    const k = Math.floor(at);
    if (k < this.first) {
      throw new Error(`the drive has moved on: t = ${t.toFixed(3)} s is more than ${WanderingDrive.KEPT_KNOTS} s behind the newest time asked for`);
    }
    while (this.first + this.hz.length < k + 2) {
      const i = this.hz.length - 1;
      this.push();
      this.revs.push(this.revs[i] + (WanderingDrive.KNOT_S * (this.hz[i] + this.hz[i + 1])) / 2);
    }
    // Drop the oldest knots in chunks, so that dropping costs nothing per sample.
    const stale = k - this.first - WanderingDrive.KEPT_KNOTS;
    if (stale >= WanderingDrive.KEPT_KNOTS) {
      this.hz = this.hz.slice(stale);
      this.loads = this.loads.slice(stale);
      this.revs = this.revs.slice(stale);
      this.first += stale;
    }
    this.x = at - k;
    return k - this.first;
  }

  revolutions(t: number): number {
    const i = this.locate(t);
    const x = this.x;
    const f0 = this.hz[i];
    const f1 = this.hz[i + 1];
    return this.revs[i] + WanderingDrive.KNOT_S * (f0 * x + ((f1 - f0) * x * x) / 2);
  }

  shaftHz(t: number): number {
    const i = this.locate(t);
    return this.hz[i] + (this.hz[i + 1] - this.hz[i]) * this.x;
  }

  load(t: number): number {
    const i = this.locate(t);
    return this.loads[i] + (this.loads[i + 1] - this.loads[i]) * this.x;
  }

  /** Knots held now (for tests of the bound). */
  get knotsHeld(): number {
    return this.hz.length;
  }
}

/** A machine held at one operating point: what a rendered window sees. */
export class SteadyDrive implements Drive {
  constructor(
    private readonly hz: number,
    private readonly perUnitLoad: number,
  ) {}

  revolutions(t: number): number {
    return this.hz * t;
  }

  shaftHz(): number {
    return this.hz;
  }

  load(): number {
    return this.perUnitLoad;
  }
}
