import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinPlants, loadPlant, parsePlant, parsePlantJson, plantById } from '../../devices';

describe('plants', () => {
  it('should ship the demo and line plants, each with machines on built-in profiles', () => {
    const ids = builtinPlants().map((p) => p.id);
    expect(ids).toEqual([...ids].sort());
    expect(ids).toEqual(expect.arrayContaining(['demo', 'line']));
    expect(plantById('demo').machines.length).toBeGreaterThan(0);
  });

  it('should give fresh copies, so a caller cannot change the shipped plant', () => {
    plantById('demo').machines.length = 0;
    expect(plantById('demo').machines.length).toBeGreaterThan(0);
  });

  it('should name the plants it knows when asked for one it does not', () => {
    expect(() => plantById('mill')).toThrow(/unknown plant 'mill'; known plants: .*demo/);
  });

  it('should call a document that is not an object a plant, not a profile', () => {
    expect(() => parsePlant(42, 'site.json')).toThrow(/site\.json: invalid plant: \(plant\): expected object, got 42/);
    expect(() => parsePlantJson('{ "id": ', 'site.json')).toThrow(/site\.json: not valid JSON/);
  });

  it('should read a plant file, and name a file it cannot read', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-plant-'));
    const file = path.join(dir, 'site.json');
    writeFileSync(file, JSON.stringify({ ...plantById('demo'), id: 'site' }));
    expect((await loadPlant(file)).id).toBe('site');
    await expect(loadPlant(path.join(dir, 'missing.json'))).rejects.toThrow(/missing\.json: cannot read the plant/);
  });
});
