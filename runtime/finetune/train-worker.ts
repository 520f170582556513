// The fine-tune's training, on a worker thread so the gateway's event loop keeps its MQTT and
// SQLite work going: TensorFlow.js (WASM backend, one thread) trains the autoencoder's layers
// from the shipped weights on the device's windows, in mini-batches (one batch's tensors at a
// time, never the whole set as one tensor), with Adam and a cosine-decayed learning rate.
// The gradients are written out here (a chain of Dense layers with ReLUs and a squared error
// needs four lines of backpropagation) rather than taken from tfjs-core's gradient registry:
// that registry ships only as extensionless ES modules, which Node cannot load outside a bundler.
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import type { TrainReply, TrainRequest } from './protocol';
import { seeded } from './seeded';

const tfReady = (async () => {
  // One core: the other serves the gateway's inference.
  setThreadsCount(1);
  await tf.setBackend('wasm');
  await tf.ready();
})();

async function train(req: TrainRequest, post: (r: TrainReply) => void): Promise<void> {
  await tfReady;
  const { width, batchSize } = req;
  // The layers see standardized features, as in the graph.
  for (const x of [req.train, req.heldOut]) for (let i = 0; i < x.length; i++) x[i] = (x[i] - req.mean[i % width]) / req.std[i % width];
  const vars = req.layers.map((l, i) => ({ w: tf.variable(tf.tensor2d(l.w, [l.inDim, l.outDim]), true, `finetune.${i}.w`), b: tf.variable(tf.tensor1d(l.b), true, `finetune.${i}.b`), relu: l.relu }));
  const forward = (x: tf.Tensor2D): tf.Tensor2D =>
    vars.reduce((h, v) => {
      const y = tf.add(tf.matMul(h, v.w), v.b) as tf.Tensor2D;
      return v.relu ? tf.relu(y) : y;
    }, x);
  const batchOf = (data: Float32Array, idx: ArrayLike<number>): tf.Tensor2D => {
    const xs = new Float32Array(idx.length * width);
    for (let i = 0; i < idx.length; i++) xs.set(data.subarray(idx[i] * width, (idx[i] + 1) * width), i * width);
    return tf.tensor2d(xs, [idx.length, width]);
  };
  /** Mean squared reconstruction error over a set, in batches. */
  const lossOf = (data: Float32Array): number => {
    const count = data.length / width;
    let total = 0;
    for (let s = 0; s < count; s += batchSize) {
      const idx = Int32Array.from({ length: Math.min(batchSize, count - s) }, (_, i) => s + i);
      total += tf.tidy(() => {
        const x = batchOf(data, idx);
        return tf.sum(tf.square(tf.sub(forward(x), x))).dataSync()[0];
      });
    }
    return total / data.length;
  };
  const lossBefore = lossOf(req.train);
  const heldOutLossBefore = lossOf(req.heldOut);
  post({ type: 'progress', phase: 'train', epoch: 0, epochs: req.epochs, loss: lossBefore });
  const random = seeded(req.seed);
  const count = req.train.length / width;
  const order = Int32Array.from({ length: count }, (_, i) => i);
  const optimizer = tf.train.adam(req.learningRate);
  const variables: tf.Variable[] = vars.flatMap((v) => [v.w, v.b]);
  let loss = lossBefore;
  for (let epoch = 0; epoch < req.epochs; epoch++) {
    (optimizer as unknown as { learningRate: number }).learningRate = req.learningRate * 0.5 * (1 + Math.cos((Math.PI * epoch) / req.epochs));
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let total = 0;
    let batches = 0;
    for (let s = 0; s < count; s += batchSize) {
      const x = batchOf(req.train, order.subarray(s, Math.min(count, s + batchSize)));
      const { grads, loss: l } = tf.tidy(() => {
        // Forward, keeping each layer's input and output.
        const inputs: tf.Tensor2D[] = [];
        const outputs: tf.Tensor2D[] = [];
        let h = x;
        for (const v of vars) {
          inputs.push(h);
          const z = tf.add(tf.matMul(h, v.w), v.b) as tf.Tensor2D;
          h = v.relu ? tf.relu(z) : z;
          outputs.push(h);
        }
        const diff = tf.sub(h, x);
        // loss = mean(diff²): its gradient 2·diff / n; then back through each layer.
        let dh = tf.mul(diff, 2 / diff.size) as tf.Tensor2D;
        const g: Record<string, tf.Tensor> = {};
        for (let k = vars.length - 1; k >= 0; k--) {
          const v = vars[k];
          const dz = v.relu ? (tf.mul(dh, tf.cast(tf.greater(outputs[k], 0), 'float32')) as tf.Tensor2D) : dh;
          g[v.w.name] = tf.matMul(inputs[k], dz, true, false);
          g[v.b.name] = tf.sum(dz, 0);
          if (k > 0) dh = tf.matMul(dz, v.w, false, true);
        }
        return { grads: g, loss: tf.mean(tf.square(diff)) };
      });
      optimizer.applyGradients(grads as Parameters<typeof optimizer.applyGradients>[0]);
      total += l.dataSync()[0];
      batches++;
      tf.dispose([x, l, ...Object.values(grads)]);
    }
    loss = total / batches;
    if (!Number.isFinite(loss)) throw new Error(`the training loss became ${loss} in epoch ${epoch + 1}`);
    post({ type: 'progress', phase: 'train', epoch: epoch + 1, epochs: req.epochs, loss });
  }
  optimizer.dispose();
  const lossAfter = lossOf(req.train);
  const heldOutLossAfter = lossOf(req.heldOut);
  const layers = vars.map((v) => ({ w: v.w.dataSync() as Float32Array, b: v.b.dataSync() as Float32Array }));
  tf.dispose(variables);
  post({ type: 'done', layers, lossBefore, lossAfter, heldOutLossBefore, heldOutLossAfter, backend: tf.getBackend() });
}

const port = parentPort!;
const post = (r: TrainReply): void => port.postMessage(r, r.type === 'done' ? r.layers.flatMap((l) => [l.w.buffer as ArrayBuffer, l.b.buffer as ArrayBuffer]) : []);
train(workerData as TrainRequest, post).catch((err: unknown) => post({ type: 'error', message: err instanceof Error ? err.message : String(err) }));
