// A simulated machine's consecutive windows as a model sees them (the card's window and hop, its
// features): what a teach-in on the gateway would learn from that machine.
import { type DeviceProfile, type FaultSpec, MachineSimulator } from '../../devices';
import type { ModelCard } from '../../runtime/model';
import { computeFeatures } from '../../runtime/stream/features';

export interface MachineWindows {
  features: Float32Array[];
  /** Data time of each window's end, ms from the run's start. */
  endMs: number[];
}

/** `count` consecutive windows of a machine (optionally with faults from t = 0), from `skip` windows in. */
export function machineWindows(profile: DeviceProfile, card: ModelCard, opts: { seed: number; count: number; skip?: number; faults?: FaultSpec[] }): MachineWindows {
  const { window, hop, sampleRate } = card.input;
  const h = hop ?? window;
  const names = card.input.channels.map((c) => c.name);
  const sim = new MachineSimulator(profile, { seed: opts.seed, faults: opts.faults });
  let tail = sim.next('vibration', window - h);
  const features: Float32Array[] = [];
  const endMs: number[] = [];
  const total = (opts.skip ?? 0) + opts.count;
  for (let i = 0; i < total; i++) {
    const b = sim.next('vibration', h);
    const channels = names.map((n) => {
      const c = new Float32Array(window);
      c.set(tail.channels[n]);
      c.set(b.channels[n], window - h);
      return c;
    });
    tail = { ...b, channels: Object.fromEntries(names.map((n, j) => [n, channels[j].subarray(h)])) };
    if (i < (opts.skip ?? 0)) continue;
    features.push(computeFeatures(card.input, channels));
    endMs.push(Math.round(((window + i * h) / sampleRate) * 1000));
  }
  return { features, endMs };
}
