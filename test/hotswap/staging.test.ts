// Staging: the update's bytes and card written by sha256, fsynced, and removed when refused.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256Hex, stageUpdate, unstage } from '../../runtime/hotswap';
import { tempDir } from '../helpers/gateway';

describe('stageUpdate and unstage', () => {
  it('should write the model and its card under the model and the sha256, and remove them again', async () => {
    const dir = tempDir('edge-infer-staging-');
    const onnx = Buffer.from('model bytes');
    const sha = sha256Hex(onnx);
    const s = await stageUpdate(dir, 'fault-classifier', sha, onnx, '{"card":1}');
    expect(s.file).toBe(path.join(dir, 'fault-classifier', `fault-classifier.${sha.slice(0, 12)}.onnx`));
    expect(s.cardFile).toBe(path.join(dir, 'fault-classifier', `fault-classifier.${sha.slice(0, 12)}.model.json`));
    expect(readFileSync(s.file).equals(onnx)).toBe(true);
    expect(readFileSync(s.cardFile, 'utf8')).toBe('{"card":1}');
    await unstage(s);
    expect(existsSync(s.file) || existsSync(s.cardFile)).toBe(false);
    await unstage(s); // gone already: fine
  });

  it('should stage the same update several times at once (a redelivery) without one write breaking another', async () => {
    const dir = tempDir('edge-infer-staging-');
    const onnx = Buffer.alloc(4 << 20, 7);
    const sha = sha256Hex(onnx);
    const all = await Promise.all(Array.from({ length: 5 }, () => stageUpdate(dir, 'm', sha, onnx, '{}')));
    expect(new Set(all.map((s) => s.file)).size).toBe(1);
    expect(sha256Hex(readFileSync(all[0].file))).toBe(sha);
  });

  it('should refuse with E_UPDATE naming the folder when it cannot be written', async () => {
    const file = path.join(tempDir('edge-infer-staging-'), 'a-file');
    writeFileSync(file, 'x');
    await expect(stageUpdate(file, 'm', 'ab'.repeat(32), Buffer.from('x'), '{}')).rejects.toThrow(new RegExp(`${file}/m: cannot stage the update \\((ENOTDIR|EEXIST)\\)`));
  });
});
