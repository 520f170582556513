import { describe, expect, it } from 'vitest';
import { bearingFrequencies, profileById } from '../../devices';

// SKF 6205 as in the Case Western Reserve bearing data: 9 balls of 7.94 mm on a 39.04 mm pitch circle.
const bearing6205 = { balls: 9, ballDiameterMm: 7.94, pitchDiameterMm: 39.04, contactAngleDeg: 0 };

describe('bearing defect frequencies', () => {
  it('should match hand-computed values for a 6205 bearing at 24.6 Hz', () => {
    // d/D = 0.203381; BPFO = 4.5·24.6·(1 − 0.203381), BPFI = 4.5·24.6·(1 + 0.203381),
    // BSF = (39.04 / 15.88)·24.6·(1 − 0.203381²), FTF = 12.3·(1 − 0.203381).
    const f = bearingFrequencies(bearing6205, 24.6);
    expect(f.bpfo).toBeCloseTo(88.1857, 3);
    expect(f.bpfi).toBeCloseTo(133.2143, 3);
    expect(f.bsf).toBeCloseTo(57.9760, 3);
    expect(f.ftf).toBeCloseTo(9.7984, 3);
  });

  it('should give the published 6205 defect orders per unit of shaft speed', () => {
    const f = bearingFrequencies(bearing6205, 1);
    expect(f.bpfo).toBeCloseTo(3.5848, 4);
    expect(f.bpfi).toBeCloseTo(5.4152, 4);
    expect(2 * f.bsf).toBeCloseTo(4.7135, 4);
    expect(f.ftf).toBeCloseTo(0.3983, 4);
  });

  it('should take the contact angle of an angular-contact bearing into account', () => {
    // 12 balls of 7.938 mm on 38.5 mm at 40°, 50 Hz: d/D·cos φ = 0.157945.
    const f = bearingFrequencies({ balls: 12, ballDiameterMm: 7.938, pitchDiameterMm: 38.5, contactAngleDeg: 40 }, 50);
    expect(f.bpfo).toBeCloseTo(252.6167, 3);
    expect(f.bpfi).toBeCloseTo(347.3833, 3);
    expect(f.bsf).toBeCloseTo(118.2274, 3);
    expect(f.ftf).toBeCloseTo(21.0514, 3);
  });

  it('should scale in proportion to the shaft speed and keep BPFO + BPFI = n·f_r', () => {
    const a = bearingFrequencies(bearing6205, 10);
    const b = bearingFrequencies(bearing6205, 30);
    expect(b.bpfo / a.bpfo).toBeCloseTo(3, 10);
    expect(b.bsf / a.bsf).toBeCloseTo(3, 10);
    expect(a.bpfo + a.bpfi).toBeCloseTo(9 * 10, 10);
    expect(a.bpfo).toBeCloseTo(9 * a.ftf, 10);
  });

  it('should describe the pump profile bearing as a 6205', () => {
    const b = profileById('pump-motor').machine.bearing;
    expect(b.designation).toBe('6205');
    expect(bearingFrequencies(b, 24.6).bpfo).toBeCloseTo(88.1857, 3);
  });
});
