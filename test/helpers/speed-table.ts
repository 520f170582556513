// A models folder for gateway suites that feed JSON and Sparkplug as well as float32 blocks: the
// bundled fault classifier (fp32), a tiny Gather model, one sample per window, that looks a
// speed up in a four-row table (speeds of 4 and more make onnxruntime refuse the run), and a
// tiny 3-channel model of the vibration's RMS whose windows can be as short as one block.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ModelCardInput } from '../../runtime/model';
import { bundledModelsDir } from '../../runtime/paths';
import { tempDir } from './gateway';
import { GraphBuilder, encodeModel } from '../../runtime/onnx';
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

export const VIBRATION_RMS_CARD: ModelCardInput = {
  schema: 1,
  id: 'vibration-rms',
  version: '1.0.0',
  title: 'Vibration RMS',
  description: 'The sum of the three axes\' RMS: a window as short as one block runs.',
  task: 'regression',
  input: {
    tensor: 'x',
    channels: [
      { name: 'vib_x', unit: 'g' },
      { name: 'vib_y', unit: 'g' },
      { name: 'vib_z', unit: 'g' },
    ],
    sampleRate: 5120,
    window: 16,
    hop: 16,
    features: { transform: 'rms' },
  },
  output: { tensor: 'y', score: 'sum of the axes\' RMS', unit: 'g' },
  precision: 'fp32',
};

/** x [batch, 3] → y [batch, 1]: the sum over the channels. */
function channelSumModel(): Uint8Array {
  const g = new GraphBuilder('channel-sum');
  const x = g.input('x', 'float32', ['batch', 3]);
  g.output(g.op1('ReduceSum', [x, g.int64('axes', [1])], { keepdims: 1 }), 'float32', ['batch', 1], 'y');
  return encodeModel(g.build());
}

/** A fresh models folder holding fault-classifier (fp32), speed-table and vibration-rms. */
export function speedTableModelsDir(): string {
  const dir = path.join(tempDir('edge-infer-models-'), 'models');
  mkdirSync(dir);
  for (const f of ['fault-classifier.fp32.onnx', 'fault-classifier.fp32.model.json']) symlinkSync(path.join(bundledModelsDir(), 'fault-classifier', f), path.join(dir, f));
  writeFileSync(path.join(dir, 'speed-table.fp32.onnx'), gatherModel());
  writeFileSync(path.join(dir, 'speed-table.fp32.model.json'), JSON.stringify(SPEED_TABLE_CARD));
  writeFileSync(path.join(dir, 'vibration-rms.fp32.onnx'), channelSumModel());
  writeFileSync(path.join(dir, 'vibration-rms.fp32.model.json'), JSON.stringify(VIBRATION_RMS_CARD));
  return dir;
}
