import { describe, expect, it } from 'vitest';
import { type BearingLocation, MACHINE_LABELS, type FaultType, profileById, renderWindow, Random } from '../../devices';
import { isEdgeInferError } from '../../runtime/errors';
import { computeFeatures } from '../../runtime/stream';
import { trainSoftmax } from './helpers';

const pump = profileById('pump-motor');

describe('renderWindow', () => {
  it('should be deterministic in the profile and the spec', () => {
    const spec = { seed: 12, length: 1024, fault: { type: 'bearing' as const, severity: 0.3, location: 'inner' as const } };
    expect(renderWindow(pump, spec)).toEqual(renderWindow(pump, spec));
    expect(renderWindow(pump, { ...spec, seed: 13 }).channels.vib_y).not.toEqual(renderWindow(pump, spec).channels.vib_y);
  });

  it('should label every sample with the constant fault and its severity', () => {
    const w = renderWindow(pump, { seed: 1, length: 500, fault: { type: 'looseness', severity: 0.4 } });
    expect(w.labels.every((l) => MACHINE_LABELS[l] === 'looseness')).toBe(true);
    expect(w.severity.every((s) => Math.abs(s - 0.4) < 1e-6)).toBe(true);
    const n = renderWindow(pump, { seed: 1, length: 500 });
    expect(n.labels.every((l) => l === 0)).toBe(true);
    expect(n.severity.every((s) => s === 0)).toBe(true);
    expect(Object.keys(n.channels)).toEqual(['vib_x', 'vib_y', 'vib_z']);
    expect(n.channels.vib_x.length).toBe(500);
  });

  it('should start at the asked time, or at one drawn from the seed', () => {
    expect(renderWindow(pump, { seed: 1, length: 8, t0: 12.5 }).t0).toBe(12.5);
    const a = renderWindow(pump, { seed: 1, length: 8 }).t0;
    expect(a).toBe(renderWindow(pump, { seed: 1, length: 8 }).t0);
    expect(a).not.toBe(renderWindow(pump, { seed: 2, length: 8 }).t0);
    expect(renderWindow(pump, { seed: 1, length: 8, t0: 1 }).channels.vib_x).not.toEqual(renderWindow(pump, { seed: 1, length: 8, t0: 2 }).channels.vib_x);
  });

  it('should render the other streams of the profile too', () => {
    const cur = renderWindow(pump, { seed: 1, length: 400, stream: 'current' });
    expect(cur.sampleRate).toBe(2000);
    expect(Math.max(...cur.channels.current)).toBeGreaterThan(2);
    const temp = renderWindow(pump, { seed: 1, length: 10, stream: 'temperature' });
    expect(temp.channels.temperature.every((t) => t > pump.machine.thermal.ambientC && t < 100)).toBe(true);
  });

  it('should name the spec field that is wrong', () => {
    const message = (spec: unknown): string => {
      try {
        renderWindow(pump, spec as never);
      } catch (err) {
        expect(isEdgeInferError(err, 'E_ARGUMENT')).toBe(true);
        return (err as Error).message;
      }
      throw new Error('expected an error');
    };
    expect(message({ seed: 1, length: 0 })).toBe('invalid spec: spec.length: expected number to be >=1, got 0');
    expect(message({ seed: 1, length: 8, fault: { type: 'bearing', severity: 2 } })).toContain('spec.fault.severity');
    expect(message({ seed: 1, length: 8, fault: { type: 'rust', severity: 0.2 } })).toContain('spec.fault.type: expected one of "imbalance"|"misalignment"|"bearing"|"looseness", got "rust"');
    expect(message({ seed: 1, length: 8, stream: 'pressure' })).toBe("spec.stream: device profile 'pump-motor' has no stream 'pressure'; its streams: vibration, current, temperature");
  });

  it('should make moderate faults separable from varied normal machines by a linear classifier (≥ 95 %)', () => {
    // What the model builders do: windows of many machines, speeds and moments; FFT-magnitude
    // features of the three axes as the card's transform computes them; held-out machines.
    const length = 2048;
    const input = {
      tensor: 'x',
      channels: ['vib_x', 'vib_y', 'vib_z'].map((name) => ({ name, unit: 'g' })),
      sampleRate: 5120,
      window: length,
      hop: length,
      features: { transform: 'fft-magnitude' as const, bins: 64, scale: 'log' as const },
      normalization: { kind: 'none' as const },
    };
    const rng = new Random(2024, 'dataset');
    const make = (count: number, seed0: number): { X: Float32Array[]; Y: number[] } => {
      const X: Float32Array[] = [];
      const Y: number[] = [];
      for (let i = 0; i < count; i++) {
        const y = i % MACHINE_LABELS.length;
        const label = MACHINE_LABELS[y];
        const location = (['outer', 'inner', 'ball'] as BearingLocation[])[rng.int(3)];
        const fault = label === 'normal' ? undefined : { type: label as FaultType, severity: rng.uniform(0.25, 0.4), ...(label === 'bearing' ? { location } : {}) };
        const w = renderWindow(pump, { seed: seed0 + i, length, fault });
        X.push(computeFeatures(input, [w.channels.vib_x, w.channels.vib_y, w.channels.vib_z]));
        Y.push(y);
      }
      return { X, Y };
    };
    const train = make(400, 1_000_000);
    const test = make(200, 2_000_000);
    const predict = trainSoftmax(train.X, train.Y, MACHINE_LABELS.length);
    const correct = test.X.filter((x, i) => predict(x) === test.Y[i]).length;
    expect(correct / test.X.length).toBeGreaterThanOrEqual(0.95);
  });
});
