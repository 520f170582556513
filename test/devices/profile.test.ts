import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinProfiles, loadProfile, parseProfile, profileById, trainingProfiles } from '../../devices';
import { isEdgeInferError } from '../../runtime/errors';

const FILE = 'profiles/broken.json';

/** A copy of the pump profile as plain JSON, changed by `edit`. */
function pumpWith(edit: (p: any) => void): unknown {
  const p = JSON.parse(JSON.stringify(profileById('pump-motor')));
  edit(p);
  return p;
}

/** The message of the E_DEVICE_PROFILE error that parsing throws. */
function problem(value: unknown): string {
  try {
    parseProfile(value, FILE);
  } catch (err) {
    expect(isEdgeInferError(err, 'E_DEVICE_PROFILE')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected the profile to be rejected');
}

describe('device profiles', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-infer-profiles-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('should keep the unseen mixer out of the machine types the shipped models learned', () => {
    expect(trainingProfiles().map((p) => p.id)).toEqual(['compressor', 'fan', 'pump-motor']);
    const mixer = profileById('mixer');
    // Another speed, bearing, resonance and mains frequency than any machine type trained on.
    for (const p of trainingProfiles()) {
      expect(mixer.machine.shaftHz).not.toBe(p.machine.shaftHz);
      expect(mixer.machine.bearing.balls).not.toBe(p.machine.bearing.balls);
      expect(mixer.machine.vibration.resonanceHz).not.toBe(p.machine.vibration.resonanceHz);
    }
    expect(mixer.machine.mainsHz).toBe(60);
  });

  it('should parse every built-in profile', () => {
    const all = builtinProfiles();
    expect(all.map((p) => p.id)).toEqual(['compressor', 'fan', 'mixer', 'pump-motor']);
    for (const p of all) {
      expect(parseProfile(p, p.id)).toEqual(p);
      const vib = p.streams.find((s) => s.name === 'vibration')!;
      expect(vib.sampleRate).toBe(5120);
      expect(vib.channels.map((c) => (c.signal === 'vibration' ? `${c.axis}:${c.unit}` : c.signal))).toEqual(['x:g', 'y:g', 'z:g']);
      expect(p.streams.map((s) => s.name)).toEqual(['vibration', 'current', 'temperature']);
    }
  });

  it('should describe the machines the profiles are named after', () => {
    const pump = profileById('pump-motor').machine;
    expect(pump.shaftHz).toBeCloseTo(24.6, 5);
    expect(pump.polePairs).toBe(2);
    expect(profileById('fan').machine.shaftHz).toBeGreaterThan(15);
    expect(profileById('fan').machine.shaftHz).toBeLessThan(17);
    const compressor = profileById('compressor').machine;
    expect(compressor.polePairs).toBe(1);
    expect(Math.round(compressor.shaftHz)).toBe(49);
    expect(new Set(builtinProfiles().map((p) => p.machine.bearing.designation)).size).toBe(4);
  });

  it('should return fresh copies, so that changing one does not change the built-in', () => {
    profileById('fan').machine.shaftHz = 99;
    expect(profileById('fan').machine.shaftHz).toBeLessThan(17);
  });

  it('should name the file and the field of a wrong unit', () => {
    const msg = problem(pumpWith((p) => (p.streams[0].channels[1].unit = 'mm/s')));
    expect(msg).toContain(FILE);
    expect(msg).toContain('streams[0].channels[1].unit');
    expect(msg).toContain('"g"');
    expect(msg).toContain('got "mm/s"');
  });

  it('should name the field of a wrong axis, a wrong signal kind and a wrong publish mode', () => {
    expect(problem(pumpWith((p) => (p.streams[0].channels[2].axis = 'w')))).toMatch(/streams\[0\]\.channels\[2\]\.axis: expected one of "x"\|"y"\|"z", got "w"/);
    expect(problem(pumpWith((p) => (p.streams[1].channels[0].signal = 'voltage')))).toMatch(/streams\[1\]\.channels\[0\]\.signal: expected one of .*"current".*, got "voltage"/);
    expect(problem(pumpWith((p) => (p.streams[2].publish = { mode: 'burst' })))).toMatch(/streams\[2\]\.publish\.mode: .*got "burst"/);
  });

  it('should name a missing field and a field of the wrong type', () => {
    expect(problem(pumpWith((p) => delete p.machine.bearing.balls))).toMatch(/broken\.json: .*machine\.bearing\.balls: expected number, got nothing/);
    expect(problem(pumpWith((p) => (p.machine.shaftHz = '24.6')))).toMatch(/machine\.shaftHz: expected number, got "24\.6"/);
    expect(problem(pumpWith((p) => (p.streams[0].publish.blockSize = 12.5)))).toMatch(/streams\[0\]\.publish\.blockSize: expected int, got 12\.5/);
    expect(problem(pumpWith((p) => (p.machine.mainsHz = 55)))).toMatch(/machine\.mainsHz: .*got 55/);
  });

  it('should name unknown fields', () => {
    expect(problem(pumpWith((p) => (p.machine.vibration.noisG = 0.1)))).toMatch(/machine\.vibration: unknown field 'noisG'/);
  });

  it('should reject inconsistent machines with the reason', () => {
    expect(problem(pumpWith((p) => (p.machine.bearing.ballDiameterMm = 40)))).toMatch(/machine\.bearing\.ballDiameterMm: the ball diameter \(40 mm\) must be smaller than the pitch diameter/);
    expect(problem(pumpWith((p) => (p.machine.shaftHz = 26)))).toMatch(/machine\.shaftHz: .*2 pole pairs on 50 Hz mains turns below 25 Hz.*got 26/);
    expect(problem(pumpWith((p) => (p.streams[0].sampleRate = 2000)))).toMatch(/streams\[0\]\.sampleRate: a vibration stream needs .*got 2000/);
    expect(problem(pumpWith((p) => (p.streams[1].channels[0].name = 'vib_x')))).toMatch(/streams\[1\]\.channels\[0\]\.name: channel name 'vib_x' is already used by streams\[0\]\.channels\[0\]/);
    expect(problem(pumpWith((p) => (p.streams[2].name = 'current')))).toMatch(/streams\[2\]\.name: stream name 'current' is already used/);
  });

  it('should list every problem of a profile in one message', () => {
    const msg = problem(pumpWith((p) => {
      p.id = 'Pump Motor';
      p.streams[0].channels[0].unit = 'G';
    }));
    expect(msg).toContain('id: expected lowercase letters, digits and -, got "Pump Motor"');
    expect(msg).toContain('streams[0].channels[0].unit');
  });

  it('should load a profile file and name the file when it cannot be read or is not JSON', async () => {
    const good = path.join(dir, 'good.json');
    writeFileSync(good, JSON.stringify(profileById('fan')));
    expect((await loadProfile(good)).id).toBe('fan');

    const missing = path.join(dir, 'missing.json');
    await expect(loadProfile(missing)).rejects.toThrow(`${missing}: cannot read the device profile`);

    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, '{ "id": "fan", ');
    await expect(loadProfile(bad)).rejects.toThrow(`${bad}: not valid JSON`);

    const wrong = path.join(dir, 'wrong.json');
    writeFileSync(wrong, JSON.stringify(pumpWith((p) => (p.streams[0].channels[1].unit = 'mm'))));
    await expect(loadProfile(wrong)).rejects.toThrow(new RegExp(`${wrong.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid device profile: streams\\[0\\]\\.channels\\[1\\]\\.unit`));
  });

  it('should list the known profiles when asked for an unknown id', () => {
    expect(() => profileById('turbine')).toThrow("unknown device profile 'turbine'; known profiles: compressor, fan, mixer, pump-motor");
    try {
      profileById('turbine');
    } catch (err) {
      expect(isEdgeInferError(err, 'E_DEVICE_PROFILE')).toBe(true);
    }
  });
});
