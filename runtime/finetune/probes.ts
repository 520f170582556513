// Anomaly probes: a device's healthy windows with a few feature elements raised, as a fault
// raises bands of a spectrum. A fine-tune has only healthy windows, and an int8 model calibrated
// on them alone clips its activations at healthy levels, so a fault's score can never pass the
// threshold (measured: 0 % of moderate faults detected, BENCHMARKS.md fine-tune). The probes
// widen the calibration to anomalous levels and check that each variant still scores them as
// the fp32 model does.
import { seeded } from './seeded';

/** Raised by 3 to 12 times the graph's own spread per element: from a fault's first signs to a clear one. */
const RAISE = [3, 12] as const;

/** One probe per window: 1 to 3 elements each raised by RAISE × std of that element (seeded). */
export function anomalyProbes(windows: readonly Float32Array[], std: Float32Array, seed: number): Float32Array[] {
  const next = seeded(seed);
  return windows.map((w) => {
    const p = Float32Array.from(w);
    const count = 1 + Math.floor(next() * 3);
    for (let k = 0; k < count; k++) {
      const i = Math.floor(next() * p.length);
      p[i] += (RAISE[0] + (RAISE[1] - RAISE[0]) * next()) * std[i];
    }
    return p;
  });
}
