// Shaft speed as a tachometer or the drive reports it.
import type { ChannelOf, MachineContext, SignalModel } from './context';

export class SpeedModel implements SignalModel {
  private readonly scale: number[];

  constructor(
    private readonly ctx: MachineContext,
    channels: readonly ChannelOf<'speed'>[],
  ) {
    this.scale = channels.map((c) => (c.unit === 'rpm' ? 60 : 1));
  }

  render(times: Float64Array, outs: Float32Array[]): void {
    for (let i = 0; i < times.length; i++) {
      const hz = this.ctx.drive.shaftHz(times[i]);
      for (let c = 0; c < outs.length; c++) outs[c][i] = hz * this.scale[c];
    }
  }
}
