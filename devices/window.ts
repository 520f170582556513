// Stateless labelled windows with a constant condition: what the model builders draw thousands
// of training examples from. Same physics as MachineSimulator; each seed is another machine of
// the profile's type, at another operating point, at another moment.
import { z } from 'zod';
import { EdgeInferError } from '../runtime/errors';
import { machineContext } from './context';
import { SteadyDrive, operatingPoint } from './drive';
import { BEARING_LOCATIONS, type BearingLocation, ConstantCondition, FAULT_TYPES, type FaultType } from './faults';
import { machineTraits } from './machine';
import { type DeviceProfile, parseProfile } from './profile';
import { Random } from './random';
import { checkArgument } from './simulator';
import { type SampleBlock, StreamSynth } from './stream';

export interface WindowSpec {
  /** Machine, operating point, phases and noise all follow from it. */
  seed: number;
  /** Samples per channel. */
  length: number;
  /** Stream to render; default 'vibration'. */
  stream?: string;
  /** Constant during the window; absent = normal. */
  fault?: { type: FaultType; severity: number; location?: BearingLocation };
  /** Shaft speed override in Hz; default: drawn around the profile's nominal speed from the seed. */
  shaftHz?: number;
  /** Start time, seconds (affects phases); default drawn from the seed. */
  t0?: number;
}

const WindowSpecSchema = z
  .object({
    seed: z.number(),
    length: z.number().int().min(1).max(1 << 24),
    stream: z.string().optional(),
    fault: z
      .object({
        type: z.enum(FAULT_TYPES),
        severity: z.number().min(0).max(1),
        location: z.enum(BEARING_LOCATIONS).optional(),
      })
      .strict()
      .optional(),
    shaftHz: z.number().positive().max(500).optional(),
    t0: z.number().optional(),
  })
  .strict();

/** Start times are drawn from the first hour. */
const T0_RANGE_S = 3600;

/**
 * One window with a constant fault, deterministic in (profile, spec). The signal models run a
 * short lead-in before t0 and drop it, so the structure is already ringing at the first sample
 * as it would be in a running machine.
 */
export function renderWindow(profileIn: DeviceProfile, spec: WindowSpec): SampleBlock {
  // Checking the profile costs microseconds next to the milliseconds of rendering.
  const profile = parseProfile(profileIn, `profile '${(profileIn as { id?: unknown } | undefined)?.id ?? '?'}'`);
  const s = checkArgument(WindowSpecSchema, spec, 'spec');
  const streamName = s.stream ?? 'vibration';
  const stream = profile.streams.find((x) => x.name === streamName);
  if (!stream) throw new EdgeInferError('E_ARGUMENT', `spec.stream: device profile '${profile.id}' has no stream '${streamName}'; its streams: ${profile.streams.map((x) => x.name).join(', ')}`);
  const rng = new Random(s.seed, 'window');
  const traits = machineTraits(profile, s.seed, true);
  const point = operatingPoint(profile, traits, rng.gaussian());
  const t0 = s.t0 ?? rng.uniform(0, T0_RANGE_S);
  const drive = new SteadyDrive(s.shaftHz ?? point.shaftHz, point.load);
  const ctx = machineContext(profile, traits, drive, new ConstantCondition(s.fault), s.seed, true);
  const leadIn = Math.min(512, Math.round(0.1 * stream.sampleRate));
  const synth = new StreamSynth(ctx, stream, t0 - leadIn / stream.sampleRate);
  if (leadIn > 0) synth.render(0, leadIn);
  const block = synth.render(leadIn, s.length);
  block.t0 = t0;
  return block;
}
