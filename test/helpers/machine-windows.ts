// A simulated machine's consecutive windows as a model sees them (the card's window and hop, its
// features): what a teach-in on the gateway would learn from that machine.
import { type DeviceProfile, type FaultSpec, MachineSimulator } from '../../devices';
import type { ModelCard } from '../../runtime/model';
import { ResultStore } from '../../runtime/store';
import { computeFeatures } from '../../runtime/stream/features';
import { TeachIn } from '../../runtime/teachin';

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

/**
 * A log file in which `device`'s teach-in of the card's model learned `count` windows of the
 * machine as the gateway runs it (each window's features recorded), its data time from `t0Ms`:
 * what `edge-infer fine-tune --log` reads. The windows are returned too.
 */
export async function logWithTeachIn(file: string, device: string, profile: DeviceProfile, card: ModelCard, opts: { seed: number; count: number; t0Ms: number }): Promise<MachineWindows> {
  const store = ResultStore.open({ path: file });
  const t = new TeachIn(store.baselines(), { card: () => card, knows: () => true });
  t.start(device, card.id, { windows: opts.count });
  const w = machineWindows(profile, card, { seed: opts.seed, count: opts.count });
  w.features.forEach((f, i) => t.learn(card, { device, model: card.id, score: 9, outputs: [9], timeMs: opts.t0Ms + w.endMs[i] }, f));
  await store.close();
  return w;
}
