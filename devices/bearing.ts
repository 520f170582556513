// Rolling-bearing defect frequencies from the bearing's kinematics (outer race fixed, inner race
// turning with the shaft, no slip): where a vibration analyst looks in the envelope spectrum.
import type { BearingGeometry } from './profile';

export interface BearingFrequencies {
  /** Ball pass frequency, outer race: a ball rolls over an outer-race defect. */
  bpfo: number;
  /** Ball pass frequency, inner race: a ball rolls over an inner-race defect. */
  bpfi: number;
  /** Ball spin frequency: one turn of a ball about its own axis (a ball defect hits at 2 × BSF). */
  bsf: number;
  /** Fundamental train (cage) frequency. */
  ftf: number;
}

/** Defect frequencies in Hz for a shaft speed in Hz. */
export function bearingFrequencies(bearing: BearingGeometry, shaftHz: number): BearingFrequencies {
  const ratio = (bearing.ballDiameterMm / bearing.pitchDiameterMm) * Math.cos(((bearing.contactAngleDeg ?? 0) * Math.PI) / 180);
  const n = bearing.balls;
  return {
    bpfo: (n / 2) * shaftHz * (1 - ratio),
    bpfi: (n / 2) * shaftHz * (1 + ratio),
    bsf: (bearing.pitchDiameterMm / (2 * bearing.ballDiameterMm)) * shaftHz * (1 - ratio * ratio),
    ftf: (shaftHz / 2) * (1 - ratio),
  };
}
