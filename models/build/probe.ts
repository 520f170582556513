import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-wasm';
async function main() {
  const be = process.argv[2] ?? 'cpu';
  await tf.setBackend(be); await tf.ready();
  const w1 = tf.variable(tf.randomNormal([768, 64], 0, 0.05));
  const w2 = tf.variable(tf.randomNormal([64, 5], 0, 0.05));
  const x = tf.randomNormal([64, 768]);
  const y = tf.oneHot(tf.tensor1d(Array.from({length: 64}, (_, i) => i % 5), 'int32'), 5);
  const opt = tf.train.adam(1e-3);
  const t0 = performance.now();
  for (let i = 0; i < 50; i++) {
    opt.minimize(() => tf.losses.softmaxCrossEntropy(y, tf.matMul(tf.relu(tf.matMul(x, w1)), w2)) as tf.Scalar);
  }
  console.log(be, ((performance.now() - t0) / 50).toFixed(2), 'ms/step');
  // attention-ish batched matmul + erf grad check
  const a = tf.variable(tf.randomNormal([64, 4, 32, 8]));
  const t1 = performance.now();
  const opt2 = tf.train.adam(1e-3); for (let i = 0; i < 20; i++) opt2.minimize(() => tf.sum(tf.erf(tf.matMul(a, a, false, true))) as tf.Scalar);
  console.log(be, 'bmm+erf', ((performance.now() - t1) / 20).toFixed(2), 'ms/step');
}
main().catch(e => { console.error(e); process.exit(1); });
