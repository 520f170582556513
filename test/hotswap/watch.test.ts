// The models directory watcher: a file is taken once its card is there and both stayed the same
// over two looks; what was there at start is not an update; a rewrite is taken again.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DropWatcher } from '../../runtime/hotswap';
import { tempDir } from '../helpers/gateway';

describe('DropWatcher', () => {
  it('should take only complete files, once per change', async () => {
    const dir = tempDir('edge-infer-watch-');
    mkdirSync(path.join(dir, 'm'));
    const at = (name: string) => path.join(dir, 'm', name);
    writeFileSync(at('m.fp32.onnx'), 'a');
    writeFileSync(at('m.fp32.model.json'), '{}');
    const taken: string[] = [];
    const errors: unknown[] = [];
    // A long poll: the test looks by hand.
    const w = new DropWatcher(dir, 60_000, (f) => taken.push(path.basename(f.file)), (e) => errors.push(e));
    await w.start();
    await w.look();
    expect(taken).toEqual([]); // there at start

    writeFileSync(at('m.int8.onnx'), 'b');
    await w.look();
    await w.look();
    expect(taken).toEqual([]); // no card yet
    writeFileSync(at('m.int8.model.json'), '{}');
    await w.look();
    expect(taken).toEqual([]); // seen once: may still be growing
    await w.look();
    expect(taken).toEqual(['m.int8.onnx']);
    await w.look();
    expect(taken).toEqual(['m.int8.onnx']); // unchanged: not again

    writeFileSync(at('m.int8.onnx'), 'bb');
    await w.look();
    writeFileSync(at('m.int8.onnx'), 'bbb'); // still being written
    await w.look();
    await w.look();
    expect(taken).toEqual(['m.int8.onnx', 'm.int8.onnx']);
    writeFileSync(at('.hidden.onnx'), 'x');
    writeFileSync(at('.hidden.model.json'), '{}');
    await w.look();
    await w.look();
    expect(taken).toHaveLength(2);
    await w.stop();
    expect(errors).toEqual([]);
  });
});
