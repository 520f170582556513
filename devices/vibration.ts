// Accelerometer signals of a rotating machine, 3 axes (x horizontal and y vertical radial, z
// axial), in g. Each fault has the signature a vibration analyst looks for:
//   imbalance     1x radial, x and y 90° apart, axial barely changes
//   misalignment  2x (with 1x and 3x) and high axial 1x/2x, axial in anti-phase with radial
//   bearing       impacts at the defect frequency ringing a structural resonance: a raised band
//                 around the resonance, the defect frequency in the envelope spectrum
//   looseness     a truncated waveform with knocks: many 1x harmonics, half harmonics, one direction
import type { ChannelOf, MachineContext, SignalModel } from './context';
import { TWO_PI, frac } from './context';
import { type BearingLocation, type FaultLevels, noFaults } from './faults';
import { Random } from './random';

type Axis = 'x' | 'y' | 'z';
const AXES: readonly Axis[] = ['x', 'y', 'z'];
const G = 9.80665;
/** Peak of a looseness knock relative to the loose part's motion. */
const KNOCK = 5;

/** Peak acceleration in g of a sinusoidal vibration of `mmS` mm/s RMS at `hz`: a = 2πf·v·√2. */
export function velocityToG(mmS: number, hz: number): number {
  return (mmS * 1e-3 * Math.SQRT2 * TWO_PI * hz) / G;
}

/**
 * A lightly damped mode of the machine structure: a two-pole resonator whose impulse response
 * is r^n·sin((n+1)ω), so an impulse of size A rings with a peak of about A.
 */
class Resonator {
  private readonly a1: number;
  private readonly a2: number;
  private readonly b: number;
  /** Output RMS for unit-RMS white input. */
  readonly noiseGain: number;
  private y1 = 0;
  private y2 = 0;
  private now = 0;
  private next = 0;

  constructor(hz: number, sampleRate: number, damping: number) {
    const w = (TWO_PI * hz) / sampleRate;
    const r = Math.exp(-damping * w);
    this.a1 = 2 * r * Math.cos(w);
    this.a2 = -r * r;
    this.b = Math.sin(w);
    // Variance of an AR(2) process driven by white noise.
    const v = (1 - this.a2) / ((1 + this.a2) * ((1 - this.a2) ** 2 - this.a1 ** 2));
    this.noiseGain = this.b * Math.sqrt(v);
  }

  /**
   * An impact `alpha` of the way from the previous sample to this one, split over this sample and
   * the next (one sample late throughout, which nothing can tell) so that its timing is not
   * quantized to the sample clock.
   */
  kick(amount: number, alpha: number): void {
    this.now += amount * (1 - alpha);
    this.next += amount * alpha;
  }

  step(input: number): number {
    const y = this.a1 * this.y1 + this.a2 * this.y2 + this.b * (input + this.now);
    this.now = this.next;
    this.next = 0;
    this.y2 = this.y1;
    this.y1 = y;
    return y;
  }
}

/**
 * The impacts of one bearing defect: one per pass, at a fixed number of passes per revolution,
 * each pass 1.5 % early or late at random because the rolling elements slip.
 */
class ImpactTrain {
  private readonly rng: Random;
  private nextPass = NaN;
  private lastPasses = NaN;

  constructor(
    /** Passes per shaft revolution (BPFO, BPFI or 2·BSF over the shaft speed). */
    private readonly perRev: number,
    seed: number,
    tag: string,
  ) {
    this.rng = new Random(seed, tag);
  }

  /** The fraction of the last sample interval at which a pass happened, or -1 if none. */
  advance(revolutions: number): number {
    const passes = revolutions * this.perRev;
    if (Number.isNaN(this.nextPass)) {
      this.nextPass = Math.floor(passes) + this.rng.uniform();
      this.lastPasses = passes;
      return -1;
    }
    let alpha = -1;
    // At most one impact per sample is kept: defect rates are far below the sample rate.
    while (passes >= this.nextPass) {
      alpha = passes > this.lastPasses ? (this.nextPass - this.lastPasses) / (passes - this.lastPasses) : 1;
      this.nextPass += Math.max(0.5, 1 + 0.015 * this.rng.gaussian());
    }
    this.lastPasses = passes;
    return alpha < 0 ? -1 : Math.min(1, Math.max(0, alpha));
  }
}

/**
 * Share of the load a rolling contact carries at angle ψ from the bottom of the bearing (the load
 * zone under the rotor's weight): full at the bottom, little at the top.
 */
function loadZone(psi: number): number {
  const c = 0.5 + 0.5 * Math.cos(psi);
  return 0.15 + 0.85 * c * c;
}

/**
 * A waveform made of shaft orders 1x..3x with fixed amplitudes and phases, kept as coefficients
 * of cos kθ and sin kθ, so a sample costs two trig calls for the shaft angle and a few products.
 */
class Orders {
  readonly c = new Float64Array(6);

  /** amp·cos(kθ + phase) */
  cos(k: number, amp: number, phase: number): this {
    this.c[2 * k - 2] += amp * Math.cos(phase);
    this.c[2 * k - 1] -= amp * Math.sin(phase);
    return this;
  }

  /** amp·sin(kθ + phase): 90° behind amp·cos(kθ + phase). */
  sin(k: number, amp: number, phase: number): this {
    this.c[2 * k - 2] += amp * Math.sin(phase);
    this.c[2 * k - 1] += amp * Math.cos(phase);
    return this;
  }

  /** The value for trig = [cos θ, sin θ, cos 2θ, sin 2θ, cos 3θ, sin 3θ]. */
  at(trig: Float64Array): number {
    const c = this.c;
    return c[0] * trig[0] + c[1] * trig[1] + c[2] * trig[2] + c[3] * trig[3] + c[4] * trig[4] + c[5] * trig[5];
  }
}

type Shape = Record<Axis, Orders>;

export class VibrationModel implements SignalModel {
  private readonly resonators: Record<Axis, Resonator>;
  private readonly structural: Record<Axis, Random>;
  private readonly noise: Random[];
  private readonly impactRng: Random;
  private readonly trains: Record<BearingLocation, ImpactTrain>;
  private readonly levels: FaultLevels = noFaults();
  private readonly ph: Record<string, number> = {};
  /** Per unit of the healthy residual 1x, of the imbalance and of the misalignment amplitude. */
  private readonly healthy: Shape;
  private readonly imbalance: Shape;
  private readonly misalignment: Shape;
  private readonly tonePhases: number[];
  private readonly gains: number[];
  private readonly units: number[];
  private readonly gravity: number[];
  private readonly axisIndex: number[];
  /** Looseness: whether the loose part was against its stop at the last sample, and the knock in progress. */
  private againstStop = false;
  private knockLeft = 0;
  private knockLength = 0;
  private knockSize = 0;
  private readonly dt: number;

  constructor(
    private readonly ctx: MachineContext,
    streamName: string,
    sampleRate: number,
    channels: readonly ChannelOf<'vibration'>[],
  ) {
    const { traits, seed } = ctx;
    this.dt = 1 / sampleRate;
    const resonator = (axis: Axis): Resonator => new Resonator(traits.resonanceHz[axis], sampleRate, traits.damping);
    this.resonators = { x: resonator('x'), y: resonator('y'), z: resonator('z') };
    this.structural = { x: new Random(seed, streamName, 'structural', 'x'), y: new Random(seed, streamName, 'structural', 'y'), z: new Random(seed, streamName, 'structural', 'z') };
    this.noise = channels.map((c) => new Random(seed, streamName, 'noise', c.name));
    this.impactRng = new Random(seed, streamName, 'impacts');
    const o = ctx.orders;
    this.trains = {
      outer: new ImpactTrain(o.bpfo, seed, `${streamName}/outer`),
      inner: new ImpactTrain(o.bpfi, seed, `${streamName}/inner`),
      // A ball defect strikes both races once per spin of the ball.
      ball: new ImpactTrain(2 * o.bsf, seed, `${streamName}/ball`),
    };
    const ph = (name: string): number => traits.phase(name);
    for (const name of ['loose1', 'inner', 'ball', 'electric']) this.ph[name] = ph(name);
    this.ph.looseLag = (ph('looseLag') / TWO_PI - 0.5) * 0.8;
    const ky = traits.stiffnessRatio;
    const h2 = traits.harmonic2;
    const h3 = traits.harmonic3;
    // x leads y by 90° at 1x (forward whirl); y's response is scaled by the mounting stiffness.
    this.healthy = {
      x: new Orders().cos(1, 1, ph('res1')).cos(2, h2, ph('res2')).cos(3, h3, ph('res3')),
      y: new Orders().sin(1, ky, ph('res1')).cos(2, ky * h2, ph('res2y')).cos(3, ky * h3, ph('res3y')),
      z: new Orders().cos(1, traits.axialRatio, ph('ax1')).cos(2, 1.2 * h2 * traits.axialRatio, ph('ax2')),
    };
    // A heavy spot: centrifugal force at 1x turning with the shaft, radial only. It lies within
    // 60° of the residual heavy spot, so that a growing imbalance never hides behind the residual
    // one (a fault's severity always shows as more 1x).
    const imb = ph('res1') + (ph('imb') / TWO_PI - 0.5) * ((2 * Math.PI) / 3);
    this.imbalance = {
      x: new Orders().cos(1, 1, imb).cos(2, 0.04, imb),
      y: new Orders().sin(1, ky, imb).sin(2, 0.04 * ky, imb),
      z: new Orders().cos(1, 0.05, ph('imbz')),
    };
    // The coupling forces the shafts to bend twice per turn and pushes them axially; the axial
    // motion is in anti-phase across the coupling, seen here against the radial x.
    const skew = (ph('misz') / TWO_PI - 0.5) * 0.6;
    this.misalignment = {
      x: new Orders().cos(1, 0.35, ph('mis1')).cos(2, 0.9, ph('mis2')).cos(3, 0.3, ph('mis3')),
      y: new Orders().sin(1, 0.35 * ky, ph('mis1')).sin(2, 0.9 * ky, ph('mis2')).sin(3, 0.3 * ky, ph('mis3')),
      z: new Orders().cos(1, -0.6, ph('mis1') + skew).cos(2, -0.8, ph('mis2') + skew).cos(3, -0.15, ph('mis3') + skew),
    };
    this.tonePhases = ctx.profile.machine.vibration.processTones.map((t, i) => ph(`tone:${t.name}:${i}`));
    this.gains = channels.map((c) => traits.gain(c.name));
    this.units = channels.map((c) => (c.unit === 'g' ? 1 : G));
    const down = ctx.profile.machine.vibration.gravityAxis;
    this.gravity = channels.map((c) => (c.axis === down ? 1 : 0));
    this.axisIndex = channels.map((c) => AXES.indexOf(c.axis));
  }

  render(times: Float64Array, outs: Float32Array[]): void {
    const { drive, condition, traits, profile } = this.ctx;
    const v = profile.machine.vibration;
    const lv = this.levels;
    const ky = traits.stiffnessRatio;
    const twiceLine = 2 * profile.machine.mainsHz;
    const trig = new Float64Array(6);
    const axis = new Float64Array(3);
    const { healthy, imbalance, misalignment } = this;
    const res = this.resonators;
    const structuralSd = [traits.structuralG / res.x.noiseGain, traits.structuralG / res.y.noiseGain, traits.structuralG / res.z.noiseGain];

    for (let i = 0; i < times.length; i++) {
      const t = times[i];
      const rev = drive.revolutions(t);
      const f = drive.shaftHz(t);
      condition.levelsAt(t, lv);
      const th = TWO_PI * frac(rev);
      const c1 = Math.cos(th);
      const s1 = Math.sin(th);
      trig[0] = c1;
      trig[1] = s1;
      trig[2] = c1 * c1 - s1 * s1;
      trig[3] = 2 * s1 * c1;
      trig[4] = trig[2] * c1 - trig[3] * s1;
      trig[5] = trig[3] * c1 + trig[2] * s1;

      // Healthy machine: residual imbalance (1x), a little residual misalignment (2x, 3x, axial).
      const r1 = velocityToG(v.healthyMmS * traits.balanceGrade, f);
      // A severe fault's 1x level: ISO 10816 zone D velocity at this speed, in g.
      const severe = velocityToG(v.severeMmS, f);
      const u = lv.imbalance * severe;
      const m = lv.misalignment * severe;
      let x = r1 * healthy.x.at(trig) + u * imbalance.x.at(trig) + m * misalignment.x.at(trig);
      let y = r1 * healthy.y.at(trig) + u * imbalance.y.at(trig) + m * misalignment.y.at(trig);
      let z = r1 * healthy.z.at(trig) + u * imbalance.z.at(trig) + m * misalignment.z.at(trig);

      for (let k = 0; k < v.processTones.length; k++) {
        const tone = v.processTones[k];
        // frac(order·rev) keeps the tone continuous for non-integer orders too.
        const a = TWO_PI * frac(tone.order * rev) + this.tonePhases[k];
        const ca = tone.amplitudeG * Math.cos(a);
        x += ca;
        y += ky * tone.amplitudeG * Math.sin(a);
        z += 0.3 * ca;
      }
      // Magnetic pull of the stator at twice the line frequency.
      const e = traits.electricalG * Math.cos(TWO_PI * frac(twiceLine * t) + this.ph.electric);
      x += e;
      y += 0.8 * e;
      z += 0.3 * e;

      if (lv.looseness > 0 || this.knockLeft > 0) {
        const loose = this.looseness(lv.looseness * severe, lv.looseness, rev, th, f);
        y += ky * loose;
        x += 0.3 * loose;
        z += 0.15 * loose;
      }

      this.bearingImpacts(rev, th, lv);

      axis[0] = x + res.x.step(this.structural.x.gaussian(0, structuralSd[0]));
      axis[1] = y + res.y.step(this.structural.y.gaussian(0, structuralSd[1]));
      axis[2] = z + res.z.step(this.structural.z.gaussian(0, structuralSd[2]));
      for (let c = 0; c < outs.length; c++) {
        const sample = axis[this.axisIndex[c]] + this.noise[c].gaussian(0, traits.noiseG) + this.gravity[c];
        outs[c][i] = this.gains[c] * this.units[c] * sample;
      }
    }
  }

  /**
   * Mechanical looseness (a cracked or loose foot, a loose bearing fit): the part moves freely
   * until it hits its stop, which truncates the waveform and knocks once per contact. As it
   * loosens the part lifts higher on every other revolution (a sub-harmonic response), so it
   * hits the stop only every second turn: half harmonics (0.5x, 1.5x, 2.5x ...). The truncation
   * and the short knocks make the long comb of 1x harmonics.
   */
  private looseness(amp: number, severity: number, rev: number, th: number, f: number): number {
    const ph = this.ph;
    const half = 0.7 * Math.min(1, severity / 0.4);
    // The half-speed motion is locked to the 1x forcing (period doubling): its crests fall on the
    // 1x crests of alternate turns, give or take a little.
    const w = Math.cos(th + ph.loose1) + half * Math.cos(TWO_PI * frac(rev / 2) + ph.loose1 / 2 + ph.looseLag);
    const stop = 0.5 * (1 + half);
    const above = w > stop;
    let out = above ? stop + 0.15 * (w - stop) : w;
    if (above && !this.againstStop) {
      // A knock lasting about a sixteenth of a revolution, and a ring of the structure.
      this.knockLength = Math.max(2, Math.round(1 / (16 * f * this.dt)));
      this.knockLeft = this.knockLength;
      // No two knocks are alike.
      this.knockSize = KNOCK * (1 + 0.2 * this.impactRng.gaussian());
      const g = this.ctx.traits.impactGain;
      const k = 0.3 * amp * (1 + 0.2 * this.impactRng.gaussian());
      this.resonators.x.kick(0.3 * k * g.x, 0);
      this.resonators.y.kick(k * g.y, 0);
      this.resonators.z.kick(0.15 * k * g.z, 0);
    }
    this.againstStop = above;
    if (this.knockLeft > 0) {
      out -= this.knockSize * Math.sin((Math.PI * (this.knockLength - this.knockLeft + 0.5)) / this.knockLength);
      this.knockLeft--;
    }
    return amp * out;
  }

  /** Rolling-element bearing defects: each pass over the defect is an impact that rings the structure. */
  private bearingImpacts(rev: number, th: number, lv: FaultLevels): void {
    const { traits, profile } = this.ctx;
    const g = traits.impactGain;
    const peak = profile.machine.vibration.bearingImpactG;
    for (const loc of ['outer', 'inner', 'ball'] as const) {
      const alpha = this.trains[loc].advance(rev);
      if (alpha < 0 || lv[loc] <= 0) continue;
      // Outer race: the defect sits still in the load zone, every impact alike. Inner race: the
      // defect turns with the shaft and is loaded once per revolution (sidebands at 1x). Ball: the
      // ball travels with the cage through the load zone (modulation at the cage frequency, FTF).
      const zone = loc === 'outer' ? 1 : loc === 'inner' ? loadZone(th + this.ph.inner) : loadZone(TWO_PI * frac(rev * this.ctx.orders.ftf) + this.ph.ball);
      // Impact energy grows in proportion to severity (the spalled area), so the amplitude with its root.
      const a = Math.sqrt(lv[loc]) * peak * zone * (1 + 0.1 * this.impactRng.gaussian());
      for (const axis of AXES) this.resonators[axis].kick(a * g[axis], alpha);
    }
  }
}
