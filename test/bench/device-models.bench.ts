// Per-device model variants, side by side in one run: the scheduler's throughput on batches of 32
// windows from 8 devices (vibration-anomaly int8, in this thread) when 0, 1, 4 or 8 of the devices
// are served by variants of their own (a copy of the same int8, loaded as its own session). A batch
// that mixes devices is split into one run per session: what that split costs is the question.
// Rounds alternate the arms so that a noisy machine charges them alike.
import * as path from 'node:path';
import { ModelSession } from '../../runtime/engine';
import { parseCardJson } from '../../runtime/model';
import { bundledModelsDir } from '../../runtime/paths';
import type { ReadyWindow } from '../../runtime/stream/device-windows';
import { DeviceVariants } from '../../runtime/stream/device-variants';
import { ModelSlot } from '../../runtime/stream/model-slot';
import { Scheduler } from '../../runtime/stream/scheduler';
import { readFileSync } from 'node:fs';
import { fmt, int, machine, median, table } from './table';

const DIR = path.join(bundledModelsDir(), 'vibration-anomaly');
const FILE = path.join(DIR, 'vibration-anomaly.int8.onnx');
const card = parseCardJson(readFileSync(path.join(DIR, 'vibration-anomaly.int8.model.json'), 'utf8'));
const DEVICES = 8;
const BATCH = 32;
const BATCHES = 40;
const ROUNDS = 5;
const ARMS = [0, 1, 4, 8];

const load = (name: string) => ModelSession.load(FILE, { backend: 'wasm', threads: 1, name });

let seed = 7;
function windows(n: number, from: number): ReadyWindow[] {
  return Array.from({ length: n }, (_, i) => {
    const k = from + i;
    const features = Float32Array.from({ length: 192 }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 3);
    return { device: `m${k % DEVICES}`, features, dims: [3, 64], startMs: k * 1000, endMs: k * 1000 + 400, messageKeys: [`k${k}`] };
  });
}

async function main(): Promise<void> {
  const shared = await load('shared');
  const own = await Promise.all(Array.from({ length: DEVICES }, (_, i) => load(`m${i}'s own`)));
  const rates = new Map<number, number[]>(ARMS.map((a) => [a, []]));
  for (let round = 0; round <= ROUNDS; round++) {
    for (const arm of round % 2 ? [...ARMS].reverse() : ARMS) {
      const devices = new DeviceVariants(card.output.tensor, DEVICES);
      for (let i = 0; i < arm; i++) devices.set({ device: `m${i}`, session: own[i], variant: 'int8', sha256: '0'.repeat(64), card, folder: DIR }, 1, (r) => console.error(r));
      let delivered = 0;
      const slot = new ModelSlot({ session: shared, variant: 'int8' }, card.output.tensor);
      const s = new Scheduler(slot, card, async (r) => void (delivered += r.length), { maxBatch: BATCH, maxWaitMs: 0, maxQueue: BATCH * BATCHES, devices });
      const work = windows(BATCH * BATCHES, round * BATCH * BATCHES);
      const t0 = performance.now();
      s.submit(work);
      await s.drain();
      const ms = performance.now() - t0;
      if (delivered !== work.length) throw new Error(`${delivered} of ${work.length} windows delivered`);
      // Round 0 warms every session up; it is not counted.
      if (round > 0) rates.get(arm)!.push(work.length / (ms / 1000));
    }
  }
  const base = median(rates.get(0)!);
  console.log(table(
    ['devices on their own variant (of 8)', 'runs per batch', 'windows/s (median of 5)', '× all shared'],
    ARMS.map((a) => [a, a === 0 ? 1 : a === DEVICES ? DEVICES : a + 1, int(median(rates.get(a)!)), fmt(median(rates.get(a)!) / base)]),
  ));
  console.log(`\n${machine()}; batches of ${BATCH} windows, ${BATCHES} batches per arm and round, vibration-anomaly int8 on wasm, 1 thread`);
  await Promise.all([shared, ...own].map((s) => s.dispose()));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
