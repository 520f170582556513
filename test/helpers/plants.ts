// Small simulated plants for the Node-RED tests: two pumps, pump-b unbalanced from the start.
import { parsePlant } from '../../devices';

/** Two pump motors on plant/{device}/vibration, pump-b with an imbalance from its first second. */
export function twoPumps(id: string): ReturnType<typeof parsePlant> {
  return parsePlant({
    id,
    title: 'two pumps',
    description: 'pump-b has an imbalance from the start',
    machines: [
      { device: 'pump-a', profile: 'pump-motor', seed: 8 },
      { device: 'pump-b', profile: 'pump-motor', seed: 9, faults: [{ type: 'imbalance', onsetS: 0, severity: 0.8 }] },
    ],
    publish: { topic: 'plant/{device}/{stream}', streams: ['vibration'], encoding: 'float32', qos: 1 },
  });
}
