import { describe, expect, it } from 'vitest';
import { profileById } from '../../devices';
import { WanderingDrive } from '../../devices/drive';
import { machineTraits } from '../../devices/machine';

const pump = profileById('pump-motor');
const traits = machineTraits(pump, 3);

describe('WanderingDrive', () => {
  it('should hold a bounded number of knots however long the machine runs', () => {
    const drive = new WanderingDrive(pump, traits, 3);
    // Six simulated hours, asked forward a second at a time as streams do.
    for (let t = 0; t <= 6 * 3600; t += 1) drive.revolutions(t);
    expect(drive.knotsHeld).toBeLessThanOrEqual(2 * WanderingDrive.KEPT_KNOTS + 2);
  });

  it('should give the same shaft angle, speed and load as a drive that kept every knot', () => {
    const long = new WanderingDrive(pump, traits, 5);
    const fresh = new WanderingDrive(pump, traits, 5);
    for (let t = 0; t <= 3 * 3600; t += 0.5) long.revolutions(t);
    // `fresh` jumps straight to the same time: its knots were never dropped.
    const t = 3 * 3600 - 10.25;
    expect(long.revolutions(t)).toBe(fresh.revolutions(t));
    expect(long.shaftHz(t)).toBe(fresh.shaftHz(t));
    expect(long.load(t)).toBe(fresh.load(t));
  });

  it('should say so when asked for a time it has dropped', () => {
    const drive = new WanderingDrive(pump, traits, 7);
    for (let t = 0; t <= 3 * 3600; t += 1) drive.load(t);
    expect(() => drive.load(10)).toThrow(/more than 3600 s behind/);
  });
});
