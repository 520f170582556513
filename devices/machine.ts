// One machine of a type: no two pumps of the same model vibrate alike. Their balance grade,
// mounting stiffness, structural resonance, noise floor and sensor calibration differ, and the
// models must learn the fault signatures across that spread, not one machine's fingerprint.
import type { DeviceProfile } from './profile';
import { Random } from './random';

type Axis = 'x' | 'y' | 'z';

export interface MachineTraits {
  /** Speed of this machine at nominal load minus the profile's (slip differs motor to motor), Hz. */
  speedOffsetHz: number;
  /** Residual 1x as a multiple of the profile's healthy level (the balance grade it left the shop with). */
  balanceGrade: number;
  /** Healthy 2x and 3x as fractions of the residual 1x (residual misalignment, bent shaft). */
  harmonic2: number;
  harmonic3: number;
  /** Healthy axial 1x as a fraction of the radial. */
  axialRatio: number;
  /** Vertical (y) over horizontal (x) response: the foundation is stiffer one way. */
  stiffnessRatio: number;
  /** Broadband noise floor, g RMS. */
  noiseG: number;
  /** RMS of the resonance-shaped background (flow, friction) that every running machine has, g. */
  structuralG: number;
  /** Structural resonance per axis, Hz. */
  resonanceHz: Record<Axis, number>;
  /** Damping ratio of the resonance. */
  damping: number;
  /** How strongly a bearing impact reaches each axis (the load zone is at the bottom: y). */
  impactGain: Record<Axis, number>;
  /** Magnetic vibration at twice the line frequency, g. */
  electricalG: number;
  /** Rotor eccentricity of a healthy motor: current sidebands at f_line ± f_r, fraction of the fundamental. */
  eccentricity: number;
  /** Phase in radians of a named component, fixed for the machine. */
  phase(name: string): number;
  /** Sensor gain of a named channel (calibration tolerance ±5 %). */
  gain(channel: string): number;
}

/**
 * The traits of the machine built from `seed`. Without `individual` every machine of the profile
 * is the nominal one (only its noise differs with the seed).
 */
export function machineTraits(profile: DeviceProfile, seed: number, individual = true): MachineTraits {
  const rng = new Random(seed, 'machine');
  const draw = (lo: number, hi: number, nominal: number): number => (individual ? rng.uniform(lo, hi) : nominal);
  const v = profile.machine.vibration;
  // Resonances stay in the band where bearing impacts ring on machines like these (1–2.2 kHz),
  // and below 0.4 × the slowest vibration stream's rate so that they never alias.
  const slowest = Math.min(...profile.streams.filter((s) => s.channels.some((c) => c.signal === 'vibration')).map((s) => s.sampleRate));
  const maxRes = Math.min(2200, 0.4 * (Number.isFinite(slowest) ? slowest : Infinity));
  const base = v.resonanceHz * draw(0.85, 1.15, 1);
  const resonance = (axisSpread: number): number => Math.max(Math.min(1000, maxRes), Math.min(maxRes, base * axisSpread));
  const phaseSeed = individual ? seed : 0;
  const phases = new Map<string, number>();
  const gains = new Map<string, number>();
  return {
    speedOffsetHz: individual ? rng.gaussian(0, 0.5 * profile.machine.shaftSpreadHz) : 0,
    balanceGrade: draw(0.5, 1.6, 1),
    harmonic2: draw(0.15, 0.45, 0.3),
    harmonic3: draw(0.05, 0.2, 0.12),
    axialRatio: draw(0.25, 0.5, 0.35),
    stiffnessRatio: draw(0.75, 1.25, 1),
    noiseG: v.noiseG * (individual ? Math.exp(rng.gaussian(0, 0.2)) : 1),
    structuralG: v.noiseG * draw(0.25, 0.5, 0.35),
    resonanceHz: { x: resonance(draw(0.94, 1.06, 1)), y: resonance(draw(0.94, 1.06, 1)), z: resonance(draw(0.94, 1.06, 1)) },
    damping: draw(0.03, 0.06, 0.045),
    impactGain: { x: draw(0.5, 0.8, 0.65), y: 1, z: draw(0.25, 0.5, 0.35) },
    electricalG: v.noiseG * draw(0.03, 0.12, 0.07),
    eccentricity: draw(0.001, 0.003, 0.002),
    phase(name) {
      let p = phases.get(name);
      if (p === undefined) phases.set(name, (p = new Random(phaseSeed, 'phase', name).phase()));
      return p;
    },
    gain(channel) {
      let g = gains.get(channel);
      if (g === undefined) gains.set(channel, (g = individual ? new Random(seed, 'gain', channel).uniform(0.95, 1.05) : 1));
      return g;
    },
  };
}
