import { describe, expect, it } from 'vitest';
import { MACHINE_LABELS, MachineSimulator, type FaultSpec, type SampleBlock, profileById } from '../../devices';
import { isEdgeInferError } from '../../runtime/errors';
import { amplitudeAt, magnitudeSpectrum } from '../../runtime/stream';

const pump = profileById('pump-motor');

function concat(blocks: SampleBlock[]): SampleBlock {
  const n = blocks.reduce((s, b) => s + b.labels.length, 0);
  const channels: Record<string, Float32Array> = {};
  for (const name of Object.keys(blocks[0].channels)) {
    channels[name] = new Float32Array(n);
    let at = 0;
    for (const b of blocks) {
      channels[name].set(b.channels[name], at);
      at += b.channels[name].length;
    }
  }
  const labels = new Uint8Array(n);
  const severity = new Float32Array(n);
  let at = 0;
  for (const b of blocks) {
    labels.set(b.labels, at);
    severity.set(b.severity, at);
    at += b.labels.length;
  }
  return { ...blocks[0], channels, labels, severity };
}

describe('MachineSimulator: determinism', () => {
  const faults: FaultSpec[] = [
    { type: 'bearing', onsetS: 0.5, severity: 0.6, rampS: 1, location: 'inner' },
    { type: 'looseness', onsetS: 0.2, severity: 0.4 },
  ];

  it('should produce identical samples on every stream for the same seed', () => {
    const a = new MachineSimulator(pump, { seed: 7, faults });
    const b = new MachineSimulator(pump, { seed: 7, faults });
    for (const s of pump.streams) expect(a.next(s.name, 300)).toEqual(b.next(s.name, 300));
  });

  it('should produce different samples for a different seed', () => {
    const a = new MachineSimulator(pump, { seed: 7 }).next('vibration', 256);
    const b = new MachineSimulator(pump, { seed: 8 }).next('vibration', 256);
    expect(a.channels.vib_x).not.toEqual(b.channels.vib_x);
  });

  it('should be continuous across calls: next(100) twice equals next(200) once', () => {
    for (const s of pump.streams) {
      const split = new MachineSimulator(pump, { seed: 3, faults });
      const whole = new MachineSimulator(pump, { seed: 3, faults });
      const joined = concat([split.next(s.name, 100), split.next(s.name, 100)]);
      expect(joined.channels).toEqual(whole.next(s.name, 200).channels);
    }
  });

  it('should stay sample-for-sample continuous over seconds of faults, load changes and odd block sizes', () => {
    const split = new MachineSimulator(pump, { seed: 5, faults });
    const whole = new MachineSimulator(pump, { seed: 5, faults }).next('vibration', 12_800);
    const parts = [1, 511, 3000, 7, 9281].map((n) => split.next('vibration', n));
    const joined = concat(parts);
    expect(joined.channels).toEqual(whole.channels);
    expect(joined.labels).toEqual(whole.labels);
    expect(joined.severity).toEqual(whole.severity);
    expect(parts[2].t0).toBeCloseTo(512 / 5120, 12);
  });

  it('should advance each stream on its own clock', () => {
    const a = new MachineSimulator(pump, { seed: 9 });
    const b = new MachineSimulator(pump, { seed: 9 });
    a.next('current', 4000);
    a.next('temperature', 30);
    expect(a.next('vibration', 1024)).toEqual(b.next('vibration', 1024));
    const cur = a.next('current', 10);
    expect(cur.t0).toBe(2);
    expect(cur.sampleRate).toBe(2000);
    expect(cur.stream).toBe('current');
  });

  it('should make every machine the nominal one without individual spread', () => {
    const oneX = (seed: number, individual: boolean): number => {
      const b = new MachineSimulator(pump, { seed, individual }).next('vibration', 8192);
      const s = magnitudeSpectrum(b.channels.vib_x, 5120);
      return amplitudeAt(s, pump.machine.shaftHz, 1);
    };
    const nominal = [1, 2, 3, 4].map((s) => oneX(s, false));
    const spread = [1, 2, 3, 4].map((s) => oneX(s, true));
    const range = (xs: number[]): number => Math.max(...xs) / Math.min(...xs);
    expect(range(nominal)).toBeLessThan(1.2);
    expect(range(spread)).toBeGreaterThan(range(nominal));
  });
});

describe('MachineSimulator: ground truth', () => {
  it('should label samples normal before the onset and with the fault after it', () => {
    const sim = new MachineSimulator(pump, { seed: 1, faults: [{ type: 'misalignment', onsetS: 0.1, severity: 0.3 }] });
    const b = sim.next('vibration', 1024);
    const onset = Math.ceil(0.1 * 5120);
    expect(MACHINE_LABELS[b.labels[onset - 1]]).toBe('normal');
    expect(b.severity[onset - 1]).toBe(0);
    expect(MACHINE_LABELS[b.labels[onset]]).toBe('misalignment');
    expect(b.severity[onset]).toBeCloseTo(0.3, 6);
    expect(MACHINE_LABELS[b.labels[1023]]).toBe('misalignment');
  });

  it('should grow the severity linearly over rampS and hold it after', () => {
    const sim = new MachineSimulator(pump, { seed: 1, faults: [{ type: 'bearing', onsetS: 10, severity: 0.8, rampS: 20, location: 'ball' }] });
    const t = sim.next('temperature', 60);
    expect(t.severity[5]).toBe(0);
    expect(t.severity[15]).toBeCloseTo(0.2, 6);
    expect(t.severity[20]).toBeCloseTo(0.4, 6);
    expect(t.severity[30]).toBeCloseTo(0.8, 6);
    expect(t.severity[59]).toBeCloseTo(0.8, 6);
    for (let i = 11; i < 30; i++) expect(t.severity[i]).toBeGreaterThan(t.severity[i - 1]);
    expect(sim.labelAt(15)).toEqual({ label: 'bearing', severity: expect.closeTo(0.2, 6), fault: sim.labelAt(15).fault });
    expect(sim.labelAt(15).fault?.location).toBe('ball');
  });

  it('should agree with the block labels in labelAt', () => {
    const sim = new MachineSimulator(pump, { seed: 2, faults: [{ type: 'imbalance', onsetS: 0.3, severity: 0.5, rampS: 0.4 }] });
    const b = sim.next('current', 2000);
    for (let i = 0; i < 2000; i += 37) {
      const truth = sim.labelAt(b.t0 + i / b.sampleRate);
      expect(MACHINE_LABELS[b.labels[i]]).toBe(truth.label);
      expect(b.severity[i]).toBeCloseTo(truth.severity, 6);
    }
    expect(sim.labelAt(0)).toEqual({ label: 'normal', severity: 0 });
  });

  it('should label overlapping faults with the most severe one', () => {
    const sim = new MachineSimulator(pump, {
      seed: 2,
      faults: [
        { type: 'misalignment', onsetS: 0, severity: 0.3 },
        { type: 'bearing', onsetS: 10, severity: 0.9, rampS: 30 },
      ],
    });
    expect(sim.labelAt(5).label).toBe('misalignment');
    expect(sim.labelAt(15).label).toBe('misalignment');
    expect(sim.labelAt(30).label).toBe('bearing');
  });
});

describe('MachineSimulator: arguments', () => {
  function error(fn: () => unknown): Error {
    try {
      fn();
    } catch (err) {
      expect(isEdgeInferError(err, 'E_ARGUMENT')).toBe(true);
      return err as Error;
    }
    throw new Error('expected an error');
  }

  it('should name the fault field that is out of range', () => {
    expect(error(() => new MachineSimulator(pump, { seed: 1, faults: [{ type: 'bearing', onsetS: 0, severity: 1.5 }] })).message).toBe(
      'invalid options: options.faults[0].severity: expected number to be <=1, got 1.5',
    );
    expect(error(() => new MachineSimulator(pump, { seed: 1, faults: [{ type: 'imbalance', onsetS: 0, severity: 0.3, location: 'inner' }] })).message).toContain(
      'options.faults[0].location: only a bearing fault has a location',
    );
    expect(error(() => new MachineSimulator(pump, { seed: Number.NaN })).message).toContain('options.seed: expected number, got NaN');
  });

  it('should list the streams when asked for an unknown one, and refuse a bad count', () => {
    const sim = new MachineSimulator(pump, { seed: 1 });
    expect(error(() => sim.next('vib', 10)).message).toBe("unknown stream 'vib' of device profile 'pump-motor'; its streams: vibration, current, temperature");
    expect(error(() => sim.next('vibration', 1.5)).message).toContain('got 1.5');
    expect(sim.next('vibration', 0).channels.vib_x.length).toBe(0);
  });
});
