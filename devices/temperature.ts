// Bearing housing temperature, in °C: a first-order thermal model. The housing heads for
// ambient plus load heating plus the friction heat of a fault, with a time constant of minutes,
// so a fault shows in temperature long after it shows in vibration.
import type { ChannelOf, MachineContext, SignalModel } from './context';
import { type FaultLevels, noFaults } from './faults';
import { Random } from './random';

/** Extra steady-state heat at severity 1, °C: a damaged bearing rubs, a misaligned coupling loads its bearings. */
const FAULT_HEAT_C = { bearing: 18, misalignment: 10 };

/** Where the housing temperature is heading at a given load and fault condition. */
export function steadyTemperature(ctx: MachineContext, load: number, lv: FaultLevels): number {
  const th = ctx.profile.machine.thermal;
  const bearing = Math.min(1, lv.outer + lv.inner + lv.ball);
  // Copper and friction losses grow with the square of the load (current).
  return th.ambientC + th.riseAtRatedC * load * load + FAULT_HEAT_C.bearing * bearing + FAULT_HEAT_C.misalignment * lv.misalignment;
}

export class TemperatureModel implements SignalModel {
  private readonly noise: Random[];
  private readonly offsets: number[];
  private readonly levels: FaultLevels = noFaults();
  private temperature = NaN;
  private lastT = NaN;

  constructor(
    private readonly ctx: MachineContext,
    streamName: string,
    channels: readonly ChannelOf<'temperature'>[],
  ) {
    this.noise = channels.map((c) => new Random(ctx.seed, streamName, 'noise', c.name));
    // A sensor's calibration offset, ±0.3 °C.
    this.offsets = channels.map((c) => (ctx.individual ? new Random(ctx.seed, 'offset', c.name).uniform(-0.3, 0.3) : 0));
  }

  render(times: Float64Array, outs: Float32Array[]): void {
    const { drive, condition, profile } = this.ctx;
    const tau = profile.machine.thermal.timeConstantS;
    for (let i = 0; i < times.length; i++) {
      const t = times[i];
      condition.levelsAt(t, this.levels);
      const target = steadyTemperature(this.ctx, drive.load(t), this.levels);
      // The machine has been running long before the simulation starts: begin at steady state.
      if (Number.isNaN(this.temperature)) this.temperature = target;
      else this.temperature = target + (this.temperature - target) * Math.exp(-(t - this.lastT) / tau);
      this.lastT = t;
      for (let c = 0; c < outs.length; c++) {
        // 0.1 °C resolution, as most housing sensors report.
        outs[c][i] = Math.round((this.temperature + this.offsets[c] + this.noise[c].gaussian(0, 0.05)) * 10) / 10;
      }
    }
  }
}
