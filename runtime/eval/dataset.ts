// Labelled windows from the simulated plant, shaped for a model card: what the example models
// are trained and tested on, and one of the quantizer's calibration sources.
import { type BearingLocation, type DeviceProfile, MACHINE_LABELS, type MachineLabel, renderWindow, trainingProfiles } from '../../devices';
import { EdgeInferError } from '../errors';
import type { ModelCard } from '../model/card';
import { computeFeatures } from '../stream/features';

export interface SimulatedSetSpec {
  /** Number of windows. */
  count: number;
  /** Seed of the whole set; window i is drawn from (seed, i), so sets with other seeds are fresh data. */
  seed: number;
  /** Machines to draw from (default: the machine types the shipped models were trained on). */
  profiles?: readonly DeviceProfile[];
  /** Classes to draw, in equal shares (default: all of MACHINE_LABELS). */
  labels?: readonly MachineLabel[];
  /** Fault severity range (default [0.15, 1]); 'moderate' faults are about [0.25, 0.45]. */
  severity?: readonly [number, number];
}

export interface SimulatedWindow {
  /** Raw samples, one array per card channel. */
  channels: Float32Array[];
  /** Index into MACHINE_LABELS. */
  label: number;
  severity: number;
  profile: string;
}

/** Severity range of the "moderate" faults the example models are tested on. */
export const MODERATE: readonly [number, number] = [0.25, 0.45];

/** A 32-bit hash of (seed, i): independent, reproducible per-window seeds. */
function mix(seed: number, i: number): number {
  let h = (seed ^ 0x9e3779b9) + Math.imul(i + 1, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

const LOCATIONS: readonly BearingLocation[] = ['outer', 'inner', 'ball'];

/** The profile's stream that carries all of the card's channels at the card's sample rate. */
function streamFor(profile: DeviceProfile, input: ModelCard['input']): string {
  const names = input.channels.map((c) => c.name);
  const stream = profile.streams.find((s) => names.every((n) => s.channels.some((c) => c.name === n)));
  if (!stream) throw new EdgeInferError('E_ARGUMENT', `device profile '${profile.id}' has no stream with channels ${names.join(', ')}`);
  if (stream.sampleRate !== input.sampleRate) {
    throw new EdgeInferError('E_ARGUMENT', `device profile '${profile.id}': stream '${stream.name}' is sampled at ${stream.sampleRate} Hz, the card expects ${input.sampleRate} Hz`);
  }
  return stream.name;
}

/** Renders `count` labelled windows of the card's channels and window length from the simulator. */
export function simulatedWindows(input: ModelCard['input'], spec: SimulatedSetSpec): SimulatedWindow[] {
  // By default the machine types the shipped models learned, so an unseen profile stays unseen.
  const profiles = spec.profiles ?? trainingProfiles();
  const labels = spec.labels ?? MACHINE_LABELS;
  const [lo, hi] = spec.severity ?? [0.15, 1];
  if (!(spec.count >= 0) || !Number.isInteger(spec.count)) throw new EdgeInferError('E_ARGUMENT', `count must be a whole number ≥ 0, got ${spec.count}`);
  if (profiles.length === 0 || labels.length === 0) throw new EdgeInferError('E_ARGUMENT', 'need at least one profile and one label');
  const streams = profiles.map((p) => streamFor(p, input));
  const out: SimulatedWindow[] = [];
  for (let i = 0; i < spec.count; i++) {
    const h = mix(spec.seed, i);
    // Labels cycle so classes stay balanced; profile and severity come from the window's hash.
    const label = labels[i % labels.length];
    const p = Math.floor(h / 2 ** 32 * profiles.length * 7) % profiles.length;
    const u = mix(h, 1) / 2 ** 32;
    const severity = label === 'normal' ? 0 : lo + (hi - lo) * u;
    const fault = label === 'normal' ? undefined : { type: label, severity, location: LOCATIONS[mix(h, 2) % 3] };
    const block = renderWindow(profiles[p], { seed: h, length: input.window, stream: streams[p], fault });
    out.push({
      channels: input.channels.map((c) => block.channels[c.name]),
      label: MACHINE_LABELS.indexOf(label),
      severity,
      profile: profiles[p].id,
    });
  }
  return out;
}

/** The card's features of each window (normalized as the card says). */
export function featuresOf(input: ModelCard['input'], windows: readonly SimulatedWindow[]): Float32Array[] {
  return windows.map((w) => computeFeatures(input, w.channels));
}
