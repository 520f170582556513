// Motor phase current, in A: what motor current signature analysis (MCSA) reads. A mechanical
// fault modulates the air gap and the load torque, which modulates the current: sidebands
// around the line frequency at f_line ± f_r (eccentricity from imbalance, misalignment,
// looseness) and at f_line ± k·f_defect for bearing faults.
import type { ChannelOf, MachineContext, SignalModel } from './context';
import { TWO_PI, frac } from './context';
import { type FaultLevels, noFaults } from './faults';
import { Random } from './random';

/** Sideband amplitude (fraction of the fundamental) per unit of severity, at f_line ± f_r. */
const ECCENTRICITY_PER_SEVERITY = { imbalance: 0.03, misalignment: 0.04, looseness: 0.05 };
/** Bearing sidebands at f_line ± f_defect and f_line ± 2·f_defect per unit of severity. */
const BEARING_SIDEBANDS = [0.02, 0.008];

export class CurrentModel implements SignalModel {
  private readonly noise: Random[];
  private readonly gains: number[];
  private readonly levels: FaultLevels = noFaults();
  private readonly ph: Record<string, number> = {};

  constructor(
    private readonly ctx: MachineContext,
    streamName: string,
    channels: readonly ChannelOf<'current'>[],
  ) {
    this.noise = channels.map((c) => new Random(ctx.seed, streamName, 'noise', c.name));
    this.gains = channels.map((c) => ctx.traits.gain(c.name));
    for (const name of ['h3', 'h5', 'ecc', 'polepass', 'outer1', 'outer2', 'inner1', 'inner2', 'ball1', 'ball2']) this.ph[name] = ctx.traits.phase(`current:${name}`);
  }

  render(times: Float64Array, outs: Float32Array[]): void {
    const { drive, condition, traits, profile, orders } = this.ctx;
    const m = profile.machine;
    const lv = this.levels;
    const ph = this.ph;
    const noiseA = 0.004 * Math.SQRT2 * m.ratedCurrentA;
    const perRev = { outer: orders.bpfo, inner: orders.bpfi, ball: 2 * orders.bsf };
    for (let i = 0; i < times.length; i++) {
      const t = times[i];
      const rev = drive.revolutions(t);
      condition.levelsAt(t, lv);
      const amplitude = Math.SQRT2 * m.ratedCurrentA * drive.load(t);
      const line = TWO_PI * frac(m.mainsHz * t);
      // Amplitude modulation by (1 + 2a·cos) puts a sideband of a times the fundamental on each side.
      const ecc = traits.eccentricity + ECCENTRICITY_PER_SEVERITY.imbalance * lv.imbalance + ECCENTRICITY_PER_SEVERITY.misalignment * lv.misalignment + ECCENTRICITY_PER_SEVERITY.looseness * lv.looseness;
      let mod = 1 + 2 * ecc * Math.cos(TWO_PI * frac(rev) + ph.ecc);
      // Rotor asymmetry of a healthy cage: small pole-pass sidebands at f_line·(1 ± 2s); the slip
      // frequency's phase is line turns minus pole pairs × shaft turns.
      mod += 2 * 0.0015 * Math.cos(TWO_PI * frac(2 * (m.mainsHz * t - m.polePairs * rev)) + ph.polepass);
      for (const loc of ['outer', 'inner', 'ball'] as const) {
        const s = lv[loc];
        if (s <= 0) continue;
        const passes = rev * perRev[loc];
        mod += 2 * s * (BEARING_SIDEBANDS[0] * Math.cos(TWO_PI * frac(passes) + ph[`${loc}1`]) + BEARING_SIDEBANDS[1] * Math.cos(TWO_PI * frac(2 * passes) + ph[`${loc}2`]));
      }
      const wave = mod * Math.sin(line) + 0.02 * Math.sin(3 * line + ph.h3) + 0.012 * Math.sin(5 * line + ph.h5);
      for (let c = 0; c < outs.length; c++) outs[c][i] = this.gains[c] * (amplitude * wave + this.noise[c].gaussian(0, noiseA));
    }
  }
}
