// The three example models: their cards, their networks and their ONNX graphs.
import * as tf from '@tensorflow/tfjs-core';
import { MACHINE_LABELS } from '../../devices';
import type { ModelCard, ModelCardInput } from '../../runtime/model/card';
import { GraphBuilder, type ModelProto } from '../../runtime/onnx';
import { Dense, Dropout, EncoderBlock, Init, type Layer, LayerNorm, Relu, Sequential, TokenDense } from './nn';

const VIBRATION_CHANNELS = [
  { name: 'vib_x', unit: 'g' },
  { name: 'vib_y', unit: 'g' },
  { name: 'vib_z', unit: 'g' },
];

/** 3-axis vibration at 5.12 kHz, 0.4 s windows, averaged into 256 bands of 10 Hz up to 2.56 kHz. */
export const SPECTRUM_INPUT: ModelCardInput['input'] = {
  tensor: 'spectrum',
  channels: VIBRATION_CHANNELS,
  sampleRate: 5120,
  window: 2048,
  hop: 1024,
  features: { transform: 'fft-magnitude', bins: 256, scale: 'log' },
  normalization: { kind: 'none' },
};

/**
 * Coarser spectrum for anomaly detection: 64 bands of 40 Hz. Averaging more FFT bins per band
 * steadies healthy spectra, so the one band a fault lifts stands out from the noise.
 */
export const COARSE_SPECTRUM_INPUT: ModelCardInput['input'] = {
  ...SPECTRUM_INPUT,
  features: { transform: 'fft-magnitude', bins: 64, scale: 'log' },
};

/** 3-axis raw vibration at 5.12 kHz, 0.2 s windows. */
export const RAW_INPUT: ModelCardInput['input'] = {
  tensor: 'vibration',
  channels: VIBRATION_CHANNELS,
  sampleRate: 5120,
  window: 1024,
  hop: 512,
  features: { transform: 'raw' },
  normalization: { kind: 'none' },
};

/** Mean and standard deviation of each feature element, from the training windows. */
export interface FeatureStats {
  mean: Float32Array;
  std: Float32Array;
}

export interface ExampleModel {
  card: ModelCardInput;
  /** Shape of one window's features. */
  shape: number[];
  net: Layer;
  /**
   * 'graph': the ONNX graph standardizes each feature element itself (its first nodes), so the
   * card says none; 'card': one mean and std per channel in the card, applied by the runtime.
   */
  normalization: 'graph' | 'card';
  /** The ONNX graph of the trained net; `stats` are the training features' (for 'graph'). */
  toOnnx(card: ModelCard, stats: FeatureStats): ModelProto;
}

const LABELS = [...MACHINE_LABELS];

function flatten(g: GraphBuilder, x: string): string {
  return g.op1('Flatten', [x], { axis: 1 });
}

/** (x − mean) / std per feature element: the first nodes of the spectrum models. */
function standardize(g: GraphBuilder, x: string, shape: number[], stats: FeatureStats): string {
  const centred = g.op1('Sub', [x, g.weight('feature_mean', shape, stats.mean)], {}, { name: 'centre' });
  return g.op1('Div', [centred, g.weight('feature_std', shape, stats.std)], {}, { name: 'scale' });
}

/**
 * Autoencoder on the coarse spectrum. The score is the largest squared reconstruction error over
 * the bands: a fault lifts a few bands (1x, 2x, the bearing resonance), and a mean over all 192
 * would dilute them among the healthy ones. The narrow bottleneck (8) keeps the network from
 * learning to reconstruct faults too.
 */
export function anomalyModel(seed: number): ExampleModel {
  const init = new Init(seed);
  const bins = 64;
  const d = 3 * bins;
  const net = new Sequential([
    new Dense(init, 'encoder.1', d, 512), new Relu(),
    new Dense(init, 'encoder.2', 512, 8), new Relu(),
    new Dense(init, 'decoder.1', 8, 512), new Relu(),
    new Dense(init, 'decoder.2', 512, d),
  ]);
  const flat: Layer = {
    variables: net.variables,
    forward: (x, training) => net.forward(tf.reshape(x, [x.shape[0], d]), training),
    export: (g, x) => net.export(g, x),
  };
  return {
    shape: [3, bins],
    net: flat,
    normalization: 'graph',
    card: {
      schema: 1,
      id: 'vibration-anomaly',
      version: '1.0.0',
      title: 'Vibration anomaly detector',
      description: 'Flags a rotating machine whose 3-axis vibration spectrum departs from how healthy pumps, fans and compressors sound: an autoencoder learns healthy spectra and scores each window by how badly it reconstructs it.',
      task: 'anomaly',
      input: COARSE_SPECTRUM_INPUT,
      output: { tensor: 'score', score: 'largest squared reconstruction error over the 192 normalized spectral bands: how far the band that departs most from a healthy spectrum departs; higher is more unusual', threshold: 0 },
      precision: 'fp32',
    },
    toOnnx(card, stats) {
      const g = new GraphBuilder('vibration-anomaly');
      const x = flatten(g, standardize(g, g.input('spectrum', 'float32', ['batch', 3, bins]), [3, bins], stats));
      const recon = net.export(g, x);
      const err = g.op1('Sub', [recon, x]);
      const score = g.op1('ReduceMax', [g.op1('Mul', [err, err])], { axes: [1], keepdims: 0 }, { name: 'reconstruction_error' });
      g.output(score, 'float32', ['batch'], 'score');
      return g.build({ metadata: { 'edge-infer.card': JSON.stringify(card) } });
    },
  };
}

/** MLP on the spectrum: normal / imbalance / misalignment / bearing / looseness. */
export function classifierModel(seed: number): ExampleModel {
  const init = new Init(seed);
  const d = 3 * 256;
  const net = new Sequential([
    new Dense(init, 'fc1', d, 384), new Relu(), new Dropout(0.2),
    new Dense(init, 'fc2', 384, 96), new Relu(), new Dropout(0.1),
    new Dense(init, 'logits', 96, LABELS.length),
  ]);
  const flat: Layer = {
    variables: net.variables,
    forward: (x, training) => net.forward(tf.reshape(x, [x.shape[0], d]), training),
    export: (g, x) => net.export(g, x),
  };
  return {
    shape: [3, 256],
    net: flat,
    normalization: 'graph',
    card: {
      schema: 1,
      id: 'fault-classifier',
      version: '1.0.0',
      title: 'Rotating machine fault classifier',
      description: 'Names the fault a rotating machine is developing from its 3-axis vibration spectrum: imbalance (1x radial), misalignment (2x and axial), rolling bearing defects (impacts exciting the structure), or mechanical looseness (harmonics and half-harmonics).',
      task: 'classification',
      input: SPECTRUM_INPUT,
      output: { tensor: 'probabilities', labels: LABELS, score: 'probability of each condition; the label is the most probable', threshold: 0.5 },
      precision: 'fp32',
    },
    toOnnx(card, stats) {
      const g = new GraphBuilder('fault-classifier');
      const logits = net.export(g, flatten(g, standardize(g, g.input('spectrum', 'float32', ['batch', 3, 256]), [3, 256], stats)));
      g.output(g.op1('Softmax', [logits], { axis: -1 }), 'float32', ['batch', LABELS.length], 'probabilities');
      return g.build({ metadata: { 'edge-infer.card': JSON.stringify(card) } });
    },
  };
}

/**
 * A small transformer encoder on the raw window: the window is cut into 16 patches of 64
 * samples × 3 axes (tokens), embedded, given learned positions, passed through two pre-norm
 * encoder blocks (4-head self-attention, GELU feed-forward), averaged and classified.
 */
export function transformerModel(seed: number): ExampleModel {
  const init = new Init(seed);
  const channels = 3;
  const window = 1024;
  const patch = 64;
  const tokens = window / patch;
  const dim = 128;
  const embed = new TokenDense(init, 'patch_embed', channels * patch, dim);
  const position = init.glorot('position', tokens, dim, [tokens, dim]);
  const blocks = [new EncoderBlock(init, 'block1', dim, 4, 256, 0.1), new EncoderBlock(init, 'block2', dim, 4, 256, 0.1)];
  const norm = new LayerNorm(init, 'final_norm', dim);
  const head = new Dense(init, 'head', dim, LABELS.length);
  const toTokens = (x: tf.Tensor): tf.Tensor => {
    const b = x.shape[0];
    // [b, 3, 1024] → [b, 3, 16, 64] → [b, 16 tokens, 3, 64] → [b, 16, 192]
    return tf.reshape(tf.transpose(tf.reshape(x, [b, channels, tokens, patch]), [0, 2, 1, 3]), [b, tokens, channels * patch]);
  };
  const net: Layer = {
    variables: [...embed.variables, position, ...blocks.flatMap((b) => b.variables), ...norm.variables, ...head.variables],
    forward(x, training) {
      let h = tf.add(embed.forward(toTokens(x)), position);
      for (const block of blocks) h = block.forward(h, training);
      return head.forward(tf.mean(norm.forward(h), 1));
    },
    export() {
      throw new Error('the transformer exports as a whole graph (toOnnx)');
    },
  };
  return {
    shape: [channels, window],
    net,
    normalization: 'card',
    card: {
      schema: 1,
      id: 'fault-transformer',
      version: '1.0.0',
      title: 'Transformer fault classifier (raw vibration)',
      description: 'Classifies rotating machine faults straight from the raw 3-axis vibration, without hand-made spectral features: a two-layer transformer encoder (self-attention, layer normalization, GELU) over 16 patches of the window. The architecture of large models, made small enough for a gateway.',
      task: 'classification',
      input: RAW_INPUT,
      output: { tensor: 'probabilities', labels: LABELS, score: 'probability of each condition; the label is the most probable', threshold: 0.5 },
      precision: 'fp32',
    },
    toOnnx(card) {
      const g = new GraphBuilder('fault-transformer');
      const x = g.input('vibration', 'float32', ['batch', channels, window]);
      const patches = g.op1('Reshape', [x, g.int64('patch_shape', [0, channels, tokens, patch])]);
      const tokenized = g.op1('Reshape', [g.op1('Transpose', [patches], { perm: [0, 2, 1, 3] }), g.int64('token_shape', [0, tokens, channels * patch])]);
      let h = g.op1('Add', [embed.export(g, tokenized), g.weight('position', [tokens, dim], position.dataSync())], {}, { name: 'add_position' });
      for (const block of blocks) h = block.export(g, h);
      const pooled = g.op1('ReduceMean', [norm.export(g, h)], { axes: [1], keepdims: 0 }, { name: 'mean_pool' });
      const logits = head.export(g, pooled);
      g.output(g.op1('Softmax', [logits], { axis: -1 }), 'float32', ['batch', LABELS.length], 'probabilities');
      return g.build({ metadata: { 'edge-infer.card': JSON.stringify(card) } });
    },
  };
}
