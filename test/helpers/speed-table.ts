// A models folder for gateway suites that feed JSON and Sparkplug as well as float32 blocks: the
// bundled fault classifier (fp32) and a tiny Gather model, one sample per window, that looks a
// speed up in a four-row table (speeds of 4 and more make onnxruntime refuse the run).
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ModelCardInput } from '../../runtime/model';
import { bundledModelsDir } from '../../runtime/paths';
import { tempDir } from './gateway';
import { gatherModel } from './models';

export const SPEED_TABLE_CARD: ModelCardInput = {
  schema: 1,
  id: 'speed-table',
  version: '1.0.0',
  title: 'Speed table lookup',
  description: 'Looks a machine speed up in a four-row table; refuses speeds beyond the table.',
  task: 'regression',
  input: { tensor: 'x', channels: [{ name: 'speed', unit: 'krpm' }], sampleRate: 1, window: 1, hop: 1, features: { transform: 'rms' } },
  output: { tensor: 'y', score: 'first value of the table row', unit: '-' },
  precision: 'fp32',
};

/** A fresh models folder holding fault-classifier (fp32) and speed-table. */
export function speedTableModelsDir(): string {
  const dir = path.join(tempDir('edge-infer-models-'), 'models');
  mkdirSync(dir);
  for (const f of ['fault-classifier.fp32.onnx', 'fault-classifier.fp32.model.json']) symlinkSync(path.join(bundledModelsDir(), 'fault-classifier', f), path.join(dir, f));
  writeFileSync(path.join(dir, 'speed-table.fp32.onnx'), gatherModel());
  writeFileSync(path.join(dir, 'speed-table.fp32.model.json'), JSON.stringify(SPEED_TABLE_CARD));
  return dir;
}
