// A simulated machine publishing all the streams of its profile, with faults that appear and
// grow at given times: what the MQTT publisher, the demos and the end-to-end tests run.
import { z } from 'zod';
import { EdgeInferError } from '../runtime/errors';
import { machineContext, type MachineContext } from './context';
import { WanderingDrive } from './drive';
import { type FaultSpec, FaultSpecSchema, FaultTimeline, type MachineLabel } from './faults';
import { formatIssues } from './issues';
import { machineTraits } from './machine';
import { type DeviceProfile, parseProfile } from './profile';
import { type SampleBlock, StreamSynth } from './stream';

export interface SimulatorOptions {
  /** Everything random about the machine and its signals follows from it. */
  seed: number;
  /** Faults to inject; several may overlap. */
  faults?: FaultSpec[];
  /** Machine-to-machine spread (random resonance, phases, noise floor, balance grade) drawn from the seed. Default true. */
  individual?: boolean;
}

const SimulatorOptionsSchema = z
  .object({
    seed: z.number(),
    faults: z.array(FaultSpecSchema).optional(),
    individual: z.boolean().optional(),
  })
  .strict();

/** Checks a value against a schema at a public boundary: E_ARGUMENT naming the argument and field. */
export function checkArgument<T extends z.ZodType>(schema: T, value: unknown, argument: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw new EdgeInferError('E_ARGUMENT', `invalid ${argument}: ${formatIssues(result.error.issues, value, argument)}`);
  return result.data;
}

export class MachineSimulator {
  readonly profile: DeviceProfile;
  private readonly ctx: MachineContext;
  private readonly timeline: FaultTimeline;
  private readonly streams = new Map<string, { synth: StreamSynth; next: number }>();

  constructor(profile: DeviceProfile, options: SimulatorOptions) {
    this.profile = parseProfile(profile, `profile '${(profile as { id?: unknown } | undefined)?.id ?? '?'}'`);
    const opts = checkArgument(SimulatorOptionsSchema, options, 'options');
    const individual = opts.individual ?? true;
    const traits = machineTraits(this.profile, opts.seed, individual);
    this.timeline = new FaultTimeline(opts.faults ?? []);
    this.ctx = machineContext(this.profile, traits, new WanderingDrive(this.profile, traits, opts.seed), this.timeline, opts.seed, individual);
    for (const s of this.profile.streams) this.streams.set(s.name, { synth: new StreamSynth(this.ctx, s), next: 0 });
  }

  /**
   * The next n samples of a stream. Streams advance independently, each on its own clock, and
   * are continuous across calls: next(100) twice equals next(200) once, sample for sample.
   */
  next(stream: string, n: number): SampleBlock {
    const s = this.streams.get(stream);
    if (!s) throw new EdgeInferError('E_ARGUMENT', `unknown stream '${stream}' of device profile '${this.profile.id}'; its streams: ${[...this.streams.keys()].join(', ')}`);
    if (!Number.isSafeInteger(n) || n < 0) throw new EdgeInferError('E_ARGUMENT', `n: expected a whole number of samples ≥ 0, got ${String(n)}`);
    const block = s.synth.render(s.next, n);
    s.next += n;
    return block;
  }

  /** The label and severity at time t (seconds). */
  labelAt(t: number): { label: MachineLabel; severity: number; fault?: FaultSpec } {
    return this.timeline.labelAt(t);
  }
}
