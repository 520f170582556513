// One stream of a simulated machine: its channels sampled at one rate on their own clock, with
// the ground truth beside every sample.
import type { ChannelOf, MachineContext, SignalModel } from './context';
import { CurrentModel } from './current';
import { labelIndex } from './faults';
import type { DeviceStream } from './profile';
import { SpeedModel } from './speed';
import { TemperatureModel } from './temperature';
import { VibrationModel } from './vibration';

export interface SampleBlock {
  stream: string;
  /** Time of the first sample, seconds since simulation start. */
  t0: number;
  sampleRate: number;
  /** One Float32Array per channel name, all the same length. */
  channels: Record<string, Float32Array>;
  /** Ground truth per sample: index into MACHINE_LABELS. */
  labels: Uint8Array;
  /** Ground-truth fault severity per sample (0 when normal). */
  severity: Float32Array;
}

interface Part {
  model: SignalModel;
  channels: string[];
}

export class StreamSynth {
  private readonly parts: Part[] = [];

  /** `origin` is the time of sample 0. */
  constructor(
    private readonly ctx: MachineContext,
    readonly stream: DeviceStream,
    private readonly origin = 0,
  ) {
    const of = <S extends ChannelOf<'vibration' | 'current' | 'temperature' | 'speed'>['signal']>(signal: S): ChannelOf<S>[] =>
      stream.channels.filter((c): c is ChannelOf<S> => c.signal === signal);
    const add = (channels: { name: string }[], make: () => SignalModel): void => {
      if (channels.length) this.parts.push({ model: make(), channels: channels.map((c) => c.name) });
    };
    const vib = of('vibration');
    const cur = of('current');
    const temp = of('temperature');
    const speed = of('speed');
    add(vib, () => new VibrationModel(ctx, stream.name, stream.sampleRate, vib));
    add(cur, () => new CurrentModel(ctx, stream.name, cur));
    add(temp, () => new TemperatureModel(ctx, stream.name, temp));
    add(speed, () => new SpeedModel(ctx, speed));
  }

  /** Samples `start` .. `start + n - 1` of the stream; calls must follow on from each other. */
  render(start: number, n: number): SampleBlock {
    const fs = this.stream.sampleRate;
    const times = new Float64Array(n);
    // Times from the sample index, not by adding up 1/fs, so that no rounding drifts in.
    for (let i = 0; i < n; i++) times[i] = this.origin + (start + i) / fs;
    const channels: Record<string, Float32Array> = {};
    for (const c of this.stream.channels) channels[c.name] = new Float32Array(n);
    for (const part of this.parts) part.model.render(times, part.channels.map((name) => channels[name]));
    const labels = new Uint8Array(n);
    const severity = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const truth = this.ctx.condition.labelAt(times[i]);
      labels[i] = labelIndex(truth.label);
      severity[i] = truth.severity;
    }
    return { stream: this.stream.name, t0: this.origin + start / fs, sampleRate: fs, channels, labels, severity };
  }
}
