// Machine conditions: the labels the models learn, the faults that can be injected, and how a
// fault's severity develops over time (the ground truth every simulated sample carries).
import { z } from 'zod';

export const MACHINE_LABELS = ['normal', 'imbalance', 'misalignment', 'bearing', 'looseness'] as const;
export type MachineLabel = (typeof MACHINE_LABELS)[number];
export type FaultType = Exclude<MachineLabel, 'normal'>;
export const FAULT_TYPES = ['imbalance', 'misalignment', 'bearing', 'looseness'] as const satisfies readonly FaultType[];
export const BEARING_LOCATIONS = ['outer', 'inner', 'ball'] as const;
export type BearingLocation = (typeof BEARING_LOCATIONS)[number];

export interface FaultSpec {
  type: FaultType;
  /** Seconds after the simulation starts when the fault appears. */
  onsetS: number;
  /** Severity reached at full growth, 0..1 (0.3 ≈ "moderate", 1 ≈ severe). */
  severity: number;
  /** Seconds from onset to full severity (severity grows linearly); 0 = step. Default 0. */
  rampS?: number;
  /** Bearing faults only; default 'outer'. */
  location?: BearingLocation;
}

/** Severity (0..1) of each fault mechanism at one instant; bearing faults per defect location. */
export interface FaultLevels {
  imbalance: number;
  misalignment: number;
  looseness: number;
  outer: number;
  inner: number;
  ball: number;
}

export function noFaults(): FaultLevels {
  return { imbalance: 0, misalignment: 0, looseness: 0, outer: 0, inner: 0, ball: 0 };
}

/** The machine's condition over time, as the signal models read it. */
export interface Condition {
  /** Writes the fault levels at time t into `out`. */
  levelsAt(t: number, out: FaultLevels): void;
  /** The ground-truth label and severity at time t. */
  labelAt(t: number): { label: MachineLabel; severity: number; fault?: FaultSpec };
}

export const FaultSpecSchema = z
  .object({
    type: z.enum(FAULT_TYPES),
    onsetS: z.number().min(0),
    severity: z.number().min(0).max(1),
    rampS: z.number().min(0).optional(),
    location: z.enum(BEARING_LOCATIONS).optional(),
  })
  .strict()
  .superRefine((f, ctx) => {
    if (f.location !== undefined && f.type !== 'bearing') {
      ctx.addIssue({ code: 'custom', path: ['location'], message: `only a bearing fault has a location, not ${f.type}` });
    }
  });

function severityOf(f: FaultSpec, t: number): number {
  if (t < f.onsetS) return 0;
  const ramp = f.rampS ?? 0;
  if (ramp <= 0 || t >= f.onsetS + ramp) return f.severity;
  return (f.severity * (t - f.onsetS)) / ramp;
}

function addLevel(out: FaultLevels, f: FaultSpec, s: number): void {
  switch (f.type) {
    case 'imbalance': out.imbalance = Math.min(1, out.imbalance + s); break;
    case 'misalignment': out.misalignment = Math.min(1, out.misalignment + s); break;
    case 'looseness': out.looseness = Math.min(1, out.looseness + s); break;
    case 'bearing': {
      const loc = f.location ?? 'outer';
      out[loc] = Math.min(1, out[loc] + s);
      break;
    }
  }
}

/**
 * Faults injected at given times. Several faults can be active together and all of them act on
 * the signals; the label is the present fault with the highest current severity (the first one
 * listed on a tie), so a fault is labelled from its onset even while it is still growing.
 */
export class FaultTimeline implements Condition {
  constructor(readonly faults: readonly FaultSpec[]) {}

  levelsAt(t: number, out: FaultLevels): void {
    out.imbalance = out.misalignment = out.looseness = out.outer = out.inner = out.ball = 0;
    for (const f of this.faults) {
      if (t >= f.onsetS) addLevel(out, f, severityOf(f, t));
    }
  }

  labelAt(t: number): { label: MachineLabel; severity: number; fault?: FaultSpec } {
    let best: FaultSpec | undefined;
    let bestSeverity = -1;
    for (const f of this.faults) {
      if (t < f.onsetS) continue;
      const s = severityOf(f, t);
      if (s > bestSeverity) {
        best = f;
        bestSeverity = s;
      }
    }
    return best ? { label: best.type, severity: bestSeverity, fault: best } : { label: 'normal', severity: 0 };
  }
}

/** One fault at a constant severity, or none: the condition of a rendered window. */
export class ConstantCondition implements Condition {
  private readonly levels = noFaults();
  private readonly spec?: FaultSpec;

  constructor(fault?: { type: FaultType; severity: number; location?: BearingLocation }) {
    if (fault) {
      this.spec = { type: fault.type, onsetS: 0, severity: fault.severity, ...(fault.location ? { location: fault.location } : {}) };
      addLevel(this.levels, this.spec, fault.severity);
    }
  }

  levelsAt(_t: number, out: FaultLevels): void {
    Object.assign(out, this.levels);
  }

  labelAt(_t: number): { label: MachineLabel; severity: number; fault?: FaultSpec } {
    return this.spec ? { label: this.spec.type, severity: this.spec.severity, fault: this.spec } : { label: 'normal', severity: 0 };
  }
}

/** Index of a label in MACHINE_LABELS (what SampleBlock.labels holds). */
export function labelIndex(label: MachineLabel): number {
  return MACHINE_LABELS.indexOf(label);
}
