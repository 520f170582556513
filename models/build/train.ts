// The training loop shared by the example models: seeded shuffles, Adam, mini-batches.
import * as tf from '@tensorflow/tfjs-core';
import { Init, type Layer } from './nn';

export interface Dataset {
  /** Features of every example, concatenated: [count, ...shape]. */
  x: Float32Array;
  shape: number[];
  count: number;
  /** Class index per example (classifiers). */
  y?: Int32Array;
}

export function stackDataset(features: readonly Float32Array[], shape: number[], labels?: readonly number[]): Dataset {
  const per = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(per * features.length);
  features.forEach((f, i) => x.set(f, i * per));
  return { x, shape, count: features.length, y: labels ? Int32Array.from(labels) : undefined };
}

export function batchOf(data: Dataset, idx: ArrayLike<number>): { x: tf.Tensor; y?: tf.Tensor1D } {
  const per = data.shape.reduce((a, b) => a * b, 1);
  const xs = new Float32Array(per * idx.length);
  const ys = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    xs.set(data.x.subarray(idx[i] * per, (idx[i] + 1) * per), i * per);
    if (data.y) ys[i] = data.y[idx[i]];
  }
  return { x: tf.tensor(xs, [idx.length, ...data.shape]), y: data.y ? tf.tensor1d(ys, 'int32') : undefined };
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** 'classes': softmax cross-entropy on logits against data.y; 'reconstruct': mean squared error against the input. */
  objective: 'classes' | 'reconstruct';
  classes?: number;
  /** Called after each epoch with the mean training loss; return false to stop early. */
  onEpoch?: (epoch: number, loss: number) => boolean | void;
}

/** Trains `net` on `data` in place. */
export async function trainNet(net: Layer, data: Dataset, opts: TrainOptions): Promise<void> {
  const rng = new Init(opts.seed);
  const order = Int32Array.from({ length: data.count }, (_, i) => i);
  const optimizer = tf.train.adam(opts.learningRate);
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    // Cosine decay of the learning rate: fast early progress, fine convergence at the end.
    const rate = opts.learningRate * 0.5 * (1 + Math.cos((Math.PI * epoch) / opts.epochs));
    (optimizer as unknown as { learningRate: number }).learningRate = rate;
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let total = 0;
    let batches = 0;
    for (let start = 0; start < data.count; start += opts.batchSize) {
      const idx = order.subarray(start, Math.min(data.count, start + opts.batchSize));
      const { x, y } = batchOf(data, idx);
      const loss = optimizer.minimize(() => {
        const out = net.forward(x, true);
        if (opts.objective === 'classes') return tf.losses.softmaxCrossEntropy(tf.oneHot(y!, opts.classes!), out) as tf.Scalar;
        return tf.mean(tf.square(tf.sub(out, tf.reshape(x, out.shape)))) as tf.Scalar;
      }, true, net.variables);
      total += (await loss!.data())[0];
      batches++;
      tf.dispose([x, ...(y ? [y] : []), loss!]);
    }
    if (opts.onEpoch?.(epoch, total / batches) === false) break;
  }
  optimizer.dispose();
}

/** Runs `net` in inference mode over a dataset, in batches; returns [count, ...] outputs flat. */
export function predict(net: Layer, data: Dataset, batchSize = 256): { values: Float32Array; width: number } {
  const chunks: Float32Array[] = [];
  let width = 0;
  for (let start = 0; start < data.count; start += batchSize) {
    const idx = Int32Array.from({ length: Math.min(batchSize, data.count - start) }, (_, i) => start + i);
    const out = tf.tidy(() => net.forward(batchOf(data, idx).x, false));
    width = out.size / idx.length;
    chunks.push(out.dataSync() as Float32Array);
    out.dispose();
  }
  const values = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    values.set(c, o);
    o += c.length;
  }
  return { values, width };
}
