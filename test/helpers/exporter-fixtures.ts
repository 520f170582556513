// Small real ONNX models with the graph patterns that PyTorch's and TensorFlow's exporters write
// and that our own builder-made example models do not: Gemm with transB, weights in Constant
// nodes, decomposed layer norms and GELUs, dynamic-shape chains, attention, Keras-style CNNs,
// NHWC transposes. Weights are random but seeded, so every run builds the same bytes.
import { type Dim, GraphBuilder, type ModelProto, encodeModel, float, floatTensor, int64Tensor } from '../../runtime/onnx';

export interface FixtureInput {
  name: string;
  /** Dims of one window: the model's shape without its leading batch axis (a length to feed where the model's is dynamic). */
  dims: number[];
}

export interface ExporterFixture {
  name: string;
  /** What exporter writes this pattern, in a few words. */
  pattern: string;
  bytes(): Uint8Array;
  inputs: FixtureInput[];
}

/**
 * Seeded standard normal values (mulberry32 + Box–Muller). Its own generator, not devices/random:
 * the fixtures' weights, and with them the quantizers' measured agreement, stay as they were.
 */
export function gaussian(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Weights drawn like a freshly trained layer's: N(0, 1/fanIn), so activations stay near 1. */
class Weights {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = gaussian(seed);
  }
  values(dims: readonly number[], fanIn: number): Float32Array {
    const n = dims.reduce((a, b) => a * b, 1);
    const sd = 1 / Math.sqrt(fanIn);
    return Float32Array.from({ length: n }, () => this.next() * sd);
  }
  /** Biases and norm shifts: small. */
  small(n: number, sd = 0.1): Float32Array {
    return Float32Array.from({ length: n }, () => this.next() * sd);
  }
  /** Norm scales: around 1. */
  aroundOne(n: number): Float32Array {
    return Float32Array.from({ length: n }, () => 1 + this.next() * 0.1);
  }
}

const B = 'batch';
const shape = (dims: readonly number[]): Dim[] => [B, ...dims];

function pytorch(g: GraphBuilder, opset: number): ModelProto {
  return g.build({ opsets: { '': opset }, producerName: 'pytorch', producerVersion: '2.3.0' });
}

function tf2onnx(g: GraphBuilder, opset: number): ModelProto {
  return g.build({ opsets: { '': opset }, producerName: 'tf2onnx', producerVersion: '1.16.1 15c810' });
}

/** PyTorch nn.Linear: Gemm(x, W[out, in], b, transB=1), alpha and beta left at their defaults. */
function linear(g: GraphBuilder, w: Weights, x: string, name: string, inF: number, outF: number, attrs: Record<string, number | { float: number }> = {}): string {
  const weight = g.weight(`${name}.weight`, [outF, inF], w.values([outF, inF], inF));
  const bias = g.weight(`${name}.bias`, [outF], w.small(outF));
  return g.op1('Gemm', [x, weight, bias], { transB: 1, ...attrs }, { name: `/${name}/Gemm` });
}

/** TF Dense: MatMul(x, W[in, out]) then Add(bias); tf2onnx never writes Gemm for these. */
function dense(g: GraphBuilder, w: Weights, x: string, name: string, inF: number, outF: number): string {
  const kernel = g.weight(`${name}/kernel`, [inF, outF], w.values([inF, outF], inF));
  const bias = g.weight(`${name}/bias`, [outF], w.small(outF));
  return g.op1('Add', [g.op1('MatMul', [x, kernel], {}, { name: `${name}/MatMul` }), bias], {}, { name: `${name}/BiasAdd` });
}

/** A float scalar as a Constant node, the way the PyTorch exporter writes literals. */
function constantScalar(g: GraphBuilder, name: string, value: number): string {
  return g.op1('Constant', [], { value: floatTensor(name, [], [value]) }, { name: `/${name}/Constant` });
}

/** 1. PyTorch MLP: Linear layers as Gemm(transB=1); one Gemm with alpha ≠ 1 (torch.addmm(alpha=…)). */
function pytorchLinear(): ModelProto {
  const g = new GraphBuilder('torch_mlp');
  const w = new Weights(101);
  const x = g.input('input', 'float32', shape([20]));
  let h = g.op1('Relu', [linear(g, w, x, 'fc1', 20, 32)]);
  h = g.op1('Relu', [linear(g, w, h, 'fc2', 32, 16, { alpha: float(0.5) })]);
  g.output(linear(g, w, h, 'fc3', 16, 4), 'float32', shape([4]), 'logits');
  return pytorch(g, 17);
}

/**
 * 2. Weights in Constant nodes (value attribute tensors) instead of initializers, as PyTorch writes
 * tensors created inside forward() and scripted buffers, and Constant shapes for view().
 */
function pytorchConstantWeights(): ModelProto {
  const g = new GraphBuilder('torch_constants');
  const w = new Weights(202);
  const x = g.input('input', 'float32', shape([24]));
  const w1 = g.op1('Constant', [], { value: floatTensor('w1', [24, 16], w.values([24, 16], 24)) }, { name: '/Constant' });
  const b1 = g.op1('Constant', [], { value: floatTensor('b1', [16], w.small(16)) }, { name: '/Constant_1' });
  let h = g.op1('Relu', [g.op1('Add', [g.op1('MatMul', [x, w1]), b1])]);
  const grid = g.op1('Constant', [], { value: int64Tensor('shape', [3], [0, 4, 4]) }, { name: '/Constant_2' });
  const flat = g.op1('Constant', [], { value: int64Tensor('shape', [2], [0, 16]) }, { name: '/Constant_3' });
  h = g.op1('Reshape', [g.op1('Transpose', [g.op1('Reshape', [h, grid])], { perm: [0, 2, 1] }), flat]);
  const w2 = g.op1('Constant', [], { value: floatTensor('w2', [8, 16], w.values([8, 16], 16)) }, { name: '/Constant_4' });
  const b2 = g.op1('Constant', [], { value: floatTensor('b2', [8], w.small(8)) }, { name: '/Constant_5' });
  g.output(g.op1('Gemm', [h, w2, b2], { transB: 1 }), 'float32', shape([8]), 'output');
  return pytorch(g, 14);
}

/**
 * LayerNorm over the last axis as PyTorch exports it below opset 17 (and TF always):
 * ReduceMean → Sub → Pow(2) → ReduceMean → Add(eps) → Sqrt → Div → Mul(γ) → Add(β), with
 * ReduceMean's axes as an attribute (opset 13–17).
 */
function decomposedLayerNorm(g: GraphBuilder, w: Weights, x: string, name: string, features: number): string {
  const mean = g.op1('ReduceMean', [x], { axes: [-1], keepdims: 1 }, { name: `/${name}/ReduceMean` });
  const centered = g.op1('Sub', [x, mean], {}, { name: `/${name}/Sub` });
  const squared = g.op1('Pow', [centered, constantScalar(g, `${name}.two`, 2)], {}, { name: `/${name}/Pow` });
  const variance = g.op1('ReduceMean', [squared], { axes: [-1], keepdims: 1 }, { name: `/${name}/ReduceMean_1` });
  const std = g.op1('Sqrt', [g.op1('Add', [variance, constantScalar(g, `${name}.eps`, 1e-5)], {}, { name: `/${name}/Add` })], {}, { name: `/${name}/Sqrt` });
  const normed = g.op1('Div', [centered, std], {}, { name: `/${name}/Div` });
  const scaled = g.op1('Mul', [normed, g.weight(`${name}.weight`, [features], w.aroundOne(features))], {}, { name: `/${name}/Mul` });
  return g.op1('Add', [scaled, g.weight(`${name}.bias`, [features], w.small(features))], {}, { name: `/${name}/Add_1` });
}

/** 3. Token mixer with a decomposed LayerNorm, opset 13: x [6, 16] → MatMul → LN → MatMul. */
function layerNormDecomposed(): ModelProto {
  const g = new GraphBuilder('torch_layernorm_decomposed');
  const w = new Weights(303);
  const x = g.input('tokens', 'float32', shape([6, 16]));
  let h = g.op1('Add', [g.op1('MatMul', [x, g.weight('proj.weight', [16, 16], w.values([16, 16], 16))]), g.weight('proj.bias', [16], w.small(16))]);
  h = decomposedLayerNorm(g, w, h, 'norm', 16);
  h = g.op1('Add', [g.op1('MatMul', [h, g.weight('head.weight', [16, 12], w.values([16, 12], 16))]), g.weight('head.bias', [12], w.small(12))]);
  g.output(h, 'float32', shape([6, 12]), 'features');
  return pytorch(g, 13);
}

/** 4. The same with the fused LayerNormalization op (opset 17). */
function layerNormFused(): ModelProto {
  const g = new GraphBuilder('torch_layernorm_fused');
  const w = new Weights(404);
  const x = g.input('tokens', 'float32', shape([6, 16]));
  let h = g.op1('Add', [g.op1('MatMul', [x, g.weight('proj.weight', [16, 16], w.values([16, 16], 16))]), g.weight('proj.bias', [16], w.small(16))]);
  h = g.op1('LayerNormalization', [h, g.weight('norm.weight', [16], w.aroundOne(16)), g.weight('norm.bias', [16], w.small(16))], { axis: -1, epsilon: float(1e-5) });
  h = g.op1('Add', [g.op1('MatMul', [h, g.weight('head.weight', [16, 12], w.values([16, 12], 16))]), g.weight('head.bias', [12], w.small(12))]);
  g.output(h, 'float32', shape([6, 12]), 'features');
  return pytorch(g, 17);
}

/** 5. PyTorch nn.GELU(): x · 0.5 · (1 + erf(x / √2)), between two Linear layers. */
function geluErf(): ModelProto {
  const g = new GraphBuilder('torch_gelu');
  const w = new Weights(505);
  const x = g.input('input', 'float32', shape([16]));
  const h = linear(g, w, x, 'fc1', 16, 32);
  const erf = g.op1('Erf', [g.op1('Div', [h, constantScalar(g, 'sqrt2', Math.SQRT2)])]);
  const gelu = g.op1('Mul', [g.op1('Mul', [h, g.op1('Add', [erf, constantScalar(g, 'one', 1)])]), constantScalar(g, 'half', 0.5)]);
  g.output(linear(g, w, gelu, 'fc2', 32, 8), 'float32', shape([8]), 'output');
  return pytorch(g, 17);
}

/** 6. TF/Keras gelu(approximate=True) between Dense layers: 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))). */
function geluTanhTf(): ModelProto {
  const g = new GraphBuilder('tf_gelu_tanh');
  const w = new Weights(606);
  const x = g.input('input_1', 'float32', shape([16]));
  const h = dense(g, w, x, 'dense', 16, 32);
  const cube = g.op1('Pow', [h, g.scalar('three', 3)]);
  const inner = g.op1('Mul', [g.op1('Add', [h, g.op1('Mul', [cube, g.scalar('c', 0.044715)])]), g.scalar('sqrt_2_over_pi', Math.sqrt(2 / Math.PI))]);
  const gate = g.op1('Mul', [g.op1('Add', [g.op1('Tanh', [inner]), g.scalar('one', 1)]), g.scalar('half', 0.5)]);
  const gelu = g.op1('Mul', [h, gate]);
  g.output(dense(g, w, gelu, 'dense_1', 32, 8), 'float32', shape([8]), 'dense_1');
  return tf2onnx(g, 13);
}

/**
 * 7. PyTorch `x.view(x.size(0), -1)` at opset 12: Shape → Gather(0) → Unsqueeze(axes attribute)
 * → Concat(-1) → Reshape, so the flatten works for any batch; before it a MatMul of a 3-D
 * activation with a 2-D weight (nn.Linear on [batch, seq, features] exports as MatMul + Add).
 */
function pytorchFlattenView(): ModelProto {
  const g = new GraphBuilder('torch_flatten_view');
  const w = new Weights(707);
  const x = g.input('input', 'float32', shape([4, 10]));
  const h = g.op1('Relu', [g.op1('Add', [g.op1('MatMul', [x, g.weight('embed.weight', [10, 12], w.values([10, 12], 10))]), g.weight('embed.bias', [12], w.small(12))])]);
  const size0 = g.op1('Gather', [g.op1('Shape', [h]), g.op1('Constant', [], { value: int64Tensor('index', [], [0]) })], { axis: 0 });
  const target = g.op1('Concat', [g.op1('Unsqueeze', [size0], { axes: [0] }), g.op1('Constant', [], { value: int64Tensor('minus_one', [1], [-1]) })], { axis: 0 });
  const flat = g.op1('Reshape', [h, target]);
  g.output(linear(g, w, flat, 'classifier', 48, 6), 'float32', shape([6]), 'output');
  return pytorch(g, 12);
}

/**
 * 8. One self-attention head: Q, K, V projections (3-D activation × 2-D weight), scores as a
 * batched MatMul of two activations, Softmax, and the output projection.
 */
function attention(): ModelProto {
  const g = new GraphBuilder('torch_attention');
  const w = new Weights(808);
  const x = g.input('tokens', 'float32', shape([6, 16]));
  const proj = (name: string, h: string): string => g.op1('MatMul', [h, g.weight(`${name}.weight`, [16, 16], w.values([16, 16], 16))], {}, { name: `/${name}/MatMul` });
  const q = proj('q_proj', x);
  const k = proj('k_proj', x);
  const v = proj('v_proj', x);
  const scores = g.op1('Div', [g.op1('MatMul', [q, g.op1('Transpose', [k], { perm: [0, 2, 1] })], {}, { name: '/attn/MatMul' }), constantScalar(g, 'scale', 4)]);
  const context = g.op1('MatMul', [g.op1('Softmax', [scores], { axis: -1 }), v], {}, { name: '/attn/MatMul_1' });
  const out = g.op1('Add', [proj('out_proj', context), g.weight('out_proj.bias', [16], w.small(16))]);
  g.output(out, 'float32', shape([6, 16]), 'output');
  return pytorch(g, 17);
}

/** 9. Keras-style 1-D CNN on [batch, channels, length]: Conv+bias → Relu → MaxPool, Conv → Relu → GlobalAveragePool → Flatten → Gemm. */
function cnn1d(): ModelProto {
  const g = new GraphBuilder('keras_cnn1d');
  const w = new Weights(909);
  const x = g.input('signal', 'float32', shape([3, 32]));
  const conv = (h: string, name: string, out: number, inC: number, k: number): string =>
    g.op1('Relu', [g.op1('Conv', [h, g.weight(`${name}/kernel`, [out, inC, k], w.values([out, inC, k], inC * k)), g.weight(`${name}/bias`, [out], w.small(out))], { kernel_shape: [k], pads: [k >> 1, k >> 1] }, { name })]);
  let h = g.op1('MaxPool', [conv(x, 'conv1d', 12, 3, 5)], { kernel_shape: [2], strides: [2] });
  h = g.op1('Flatten', [g.op1('GlobalAveragePool', [conv(h, 'conv1d_1', 16, 12, 3)])], { axis: 1 });
  g.output(linear(g, w, h, 'dense', 16, 4), 'float32', shape([4]), 'dense');
  return tf2onnx(g, 13);
}

/** 10. The same in 2-D on [batch, channels, height, width]. */
function cnn2d(): ModelProto {
  const g = new GraphBuilder('torch_cnn2d');
  const w = new Weights(1010);
  const x = g.input('image', 'float32', shape([2, 8, 8]));
  const conv = (h: string, name: string, out: number, inC: number): string =>
    g.op1('Relu', [g.op1('Conv', [h, g.weight(`${name}.weight`, [out, inC, 3, 3], w.values([out, inC, 3, 3], inC * 9)), g.weight(`${name}.bias`, [out], w.small(out))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: `/${name}/Conv` })]);
  let h = g.op1('MaxPool', [conv(x, 'conv1', 10, 2)], { kernel_shape: [2, 2], strides: [2, 2] });
  h = g.op1('Flatten', [g.op1('GlobalAveragePool', [conv(h, 'conv2', 12, 10)])], { axis: 1 });
  g.output(linear(g, w, h, 'fc', 12, 5), 'float32', shape([5]), 'logits');
  return pytorch(g, 17);
}

/**
 * 11. What tf2onnx makes of a Keras model at opset 13: NHWC input transposed to NCHW for the Conv
 * and back, a Reshape to flatten, Dense layers as MatMul + Add (no Gemm), Softmax at the end.
 */
function tfNhwcDense(): ModelProto {
  const g = new GraphBuilder('tf_keras_nhwc');
  const w = new Weights(1111);
  const x = g.input('input_1', 'float32', shape([4, 4, 3]));
  const nchw = g.op1('Transpose', [x], { perm: [0, 3, 1, 2] }, { name: 'sequential/conv2d/Conv2D__6' });
  const conv = g.op1('Conv', [nchw, g.weight('sequential/conv2d/Conv2D/ReadVariableOp:0', [8, 3, 3, 3], w.values([8, 3, 3, 3], 27)), g.weight('sequential/conv2d/BiasAdd/ReadVariableOp:0', [8], w.small(8))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'sequential/conv2d/BiasAdd' });
  const nhwc = g.op1('Transpose', [g.op1('Relu', [conv])], { perm: [0, 2, 3, 1] }, { name: 'sequential/conv2d/Relu__8' });
  const flat = g.op1('Reshape', [nhwc, g.int64('const_fold_opt__12', [-1, 128])], {}, { name: 'sequential/flatten/Reshape' });
  const h = g.op1('Relu', [dense(g, w, flat, 'sequential/dense', 128, 16)]);
  g.output(g.op1('Softmax', [dense(g, w, h, 'sequential/dense_1', 16, 5)], { axis: -1 }), 'float32', shape([5]), 'dense_1');
  return tf2onnx(g, 13);
}

/** 12. No float weights at all: the sum of two inputs. A quantizer has nothing to do here. */
function noWeights(): ModelProto {
  const g = new GraphBuilder('no_weights');
  const a = g.input('a', 'float32', shape([8]));
  const b = g.input('b', 'float32', shape([8]));
  g.output(g.op1('Add', [a, b]), 'float32', shape([8]), 'sum');
  return pytorch(g, 17);
}

/**
 * 13. A PyTorch 1-D CNN on [batch, 6 channels, 128 samples]: three Conv1d (the first followed by a
 * BatchNorm1d, as exported with do_constant_folding off), MaxPool, AdaptiveAvgPool1d(1) as
 * GlobalAveragePool, Flatten, two Linear layers as Gemm(transB=1). Conv weights dominate.
 */
function pytorchCnn1d(): ModelProto {
  const g = new GraphBuilder('torch_cnn1d');
  const w = new Weights(1313);
  const x = g.input('input', 'float32', shape([6, 128]));
  const conv = (h: string, name: string, out: number, inC: number, k: number): string =>
    g.op1('Conv', [h, g.weight(`${name}.weight`, [out, inC, k], w.values([out, inC, k], inC * k)), g.weight(`${name}.bias`, [out], w.small(out))], { dilations: [1], group: 1, kernel_shape: [k], pads: [k >> 1, k >> 1], strides: [1] }, { name: `/${name}/Conv` });
  const bn = g.op1('BatchNormalization', [conv(x, 'conv1', 32, 6, 5), g.weight('bn1.weight', [32], w.aroundOne(32)), g.weight('bn1.bias', [32], w.small(32)), g.weight('bn1.running_mean', [32], w.small(32)), g.weight('bn1.running_var', [32], w.aroundOne(32))], { epsilon: float(1e-5), momentum: float(0.9) }, { name: '/bn1/BatchNormalization' });
  let h = g.op1('MaxPool', [g.op1('Relu', [bn], {}, { name: '/relu/Relu' })], { kernel_shape: [2], strides: [2] }, { name: '/pool/MaxPool' });
  h = g.op1('MaxPool', [g.op1('Relu', [conv(h, 'conv2', 64, 32, 5)])], { kernel_shape: [2], strides: [2] }, { name: '/pool_1/MaxPool' });
  h = g.op1('Relu', [conv(h, 'conv3', 64, 64, 3)]);
  h = g.op1('Flatten', [g.op1('GlobalAveragePool', [h], {}, { name: '/gap/GlobalAveragePool' })], { axis: 1 }, { name: '/Flatten' });
  h = g.op1('Relu', [linear(g, w, h, 'fc1', 64, 32)]);
  g.output(linear(g, w, h, 'fc2', 32, 8), 'float32', shape([8]), 'logits');
  return pytorch(g, 17);
}

/**
 * 14. A PyTorch nn.TransformerEncoder (2 layers, d_model 64, 4 heads, feed-forward 128, GELU,
 * post-norm) over 16 steps of 12 sensor features: input Linear, learned positions through
 * nn.Embedding (Gather of arange), fused in_proj MatMul split into Q, K, V, heads by Reshape and
 * Transpose, LayerNormalization (opset 17), mean over time, a Linear head.
 */
function pytorchTransformer(): ModelProto {
  const g = new GraphBuilder('torch_transformer_encoder');
  const w = new Weights(1414);
  const [seq, d, heads, ffn] = [16, 64, 4, 128];
  const x = g.input('features', 'float32', shape([seq, 12]));
  const mm = (h: string, name: string, inF: number, outF: number): string =>
    g.op1('Add', [g.op1('MatMul', [h, g.weight(`${name}.weight`, [inF, outF], w.values([inF, outF], inF))], {}, { name: `/${name}/MatMul` }), g.weight(`${name}.bias`, [outF], w.small(outF))], {}, { name: `/${name}/Add` });
  const positions = g.op1('Gather', [g.weight('pos_embedding.weight', [32, d], w.values([32, d], 4)), g.int64('positions', Array.from({ length: seq }, (_, i) => i))], { axis: 0 }, { name: '/pos_embedding/Gather' });
  let h = g.op1('Add', [mm(x, 'input_proj', 12, d), positions], {}, { name: '/Add' });
  for (let l = 0; l < 2; l++) {
    const p = `layers.${l}`;
    const qkv = mm(h, `${p}.self_attn.in_proj`, d, 3 * d);
    const [q, k, v] = g.op('Split', [qkv, g.int64('split', [d, d, d])], { axis: -1 }, { outputs: 3, name: `/${p}/self_attn/Split` });
    const split = (t: string, perm: number[]): string => g.op1('Transpose', [g.op1('Reshape', [t, g.int64('heads_shape', [0, seq, heads, d / heads])])], { perm });
    const scores = g.op1('Mul', [g.op1('MatMul', [split(q, [0, 2, 1, 3]), split(k, [0, 2, 3, 1])], {}, { name: `/${p}/self_attn/MatMul` }), constantScalar(g, `${p}.scale`, 1 / Math.sqrt(d / heads))]);
    const context = g.op1('MatMul', [g.op1('Softmax', [scores], { axis: -1 }), split(v, [0, 2, 1, 3])], {}, { name: `/${p}/self_attn/MatMul_1` });
    const merged = g.op1('Reshape', [g.op1('Transpose', [context], { perm: [0, 2, 1, 3] }), g.int64('model_shape', [0, seq, d])]);
    const norm = (t: string, name: string): string => g.op1('LayerNormalization', [t, g.weight(`${name}.weight`, [d], w.aroundOne(d)), g.weight(`${name}.bias`, [d], w.small(d))], { axis: -1, epsilon: float(1e-5) }, { name: `/${name}/LayerNormalization` });
    h = norm(g.op1('Add', [h, mm(merged, `${p}.self_attn.out_proj`, d, d)]), `${p}.norm1`);
    const up = mm(h, `${p}.linear1`, d, ffn);
    const gelu = g.op1('Mul', [g.op1('Mul', [up, g.op1('Add', [g.op1('Erf', [g.op1('Div', [up, constantScalar(g, `${p}.sqrt2`, Math.SQRT2)])]), constantScalar(g, `${p}.one`, 1)])]), constantScalar(g, `${p}.half`, 0.5)]);
    h = norm(g.op1('Add', [h, mm(gelu, `${p}.linear2`, ffn, d)]), `${p}.norm2`);
  }
  const pooled = g.op1('ReduceMean', [h], { axes: [1], keepdims: 0 }, { name: '/ReduceMean' });
  g.output(linear(g, w, pooled, 'head', d, 5), 'float32', shape([5]), 'logits');
  return pytorch(g, 17);
}

/**
 * 15. A Keras CNN through tf2onnx (opset 13) on an NHWC image [batch, 16, 16, 3]: Transpose to
 * NCHW, three Conv2D with bias and ReLU (two with stride 2), Transpose back, GlobalAveragePooling2D
 * as ReduceMean over H and W, a Dense head as MatMul + Add and Softmax. Conv weights dominate.
 */
function tfConv(): ModelProto {
  const g = new GraphBuilder('tf_keras_conv');
  const w = new Weights(1515);
  const x = g.input('input_1', 'float32', shape([16, 16, 3]));
  let h = g.op1('Transpose', [x], { perm: [0, 3, 1, 2] }, { name: 'sequential/conv2d/Conv2D__6' });
  const conv = (t: string, name: string, out: number, inC: number, stride: number): string =>
    g.op1('Relu', [g.op1('Conv', [t, g.weight(`${name}/Conv2D/ReadVariableOp:0`, [out, inC, 3, 3], w.values([out, inC, 3, 3], inC * 9)), g.weight(`${name}/BiasAdd/ReadVariableOp:0`, [out], w.small(out))], { dilations: [1, 1], kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [stride, stride] }, { name: `${name}/BiasAdd` })], {}, { name: `${name}/Relu` });
  h = conv(h, 'sequential/conv2d', 32, 3, 1);
  h = conv(h, 'sequential/conv2d_1', 64, 32, 2);
  h = conv(h, 'sequential/conv2d_2', 64, 64, 2);
  h = g.op1('Transpose', [h], { perm: [0, 2, 3, 1] }, { name: 'sequential/conv2d_2/Relu__20' });
  h = g.op1('ReduceMean', [h], { axes: [1, 2], keepdims: 0 }, { name: 'sequential/global_average_pooling2d/Mean' });
  g.output(g.op1('Softmax', [dense(g, w, h, 'sequential/dense', 64, 10)], { axis: -1 }), 'float32', shape([10]), 'dense');
  return tf2onnx(g, 13);
}

/** Hann-windowed DFT rows, cosines then sines, for bins 0 … bins-1 of frames of `n` samples: a Conv1d weight [2·bins, 1, n]. */
function dftWeight(bins: number, n: number): Float32Array {
  const out = new Float32Array(2 * bins * n);
  for (let k = 0; k < bins; k++) {
    for (let t = 0; t < n; t++) {
      const hann = 0.5 - 0.5 * Math.cos((2 * Math.PI * t) / n);
      out[k * n + t] = hann * Math.cos((2 * Math.PI * k * t) / n);
      out[(bins + k) * n + t] = -hann * Math.sin((2 * Math.PI * k * t) / n);
    }
  }
  return out;
}

/** Triangular filters spread evenly over `bins` spectrum bins: a [bins, filters] MatMul weight (a mel matrix with a linear scale). */
function filterBank(bins: number, filters: number): Float32Array {
  const out = new Float32Array(bins * filters);
  const step = bins / (filters + 1);
  for (let f = 0; f < filters; f++) {
    for (let b = 0; b < bins; b++) out[b * filters + f] = Math.max(0, 1 - Math.abs(b - (f + 1) * step) / step);
  }
  return out;
}

/**
 * 16. A third-party log-mel front end with a dynamic input length, `[batch, samples]`: Unsqueeze to
 * one channel, framing and a Hann-windowed DFT as one Conv1d (frames of 256, hop 128), power as
 * Mul → Reshape → ReduceSum of the cosine and sine halves, a filter-bank MatMul, Log, the
 * per-bin normalization, mean over frames and a two-Linear head. Any length ≥ 256 runs; the
 * quantizer must be told one (its windows below feed 4000 samples).
 */
function melFrontEnd(): ModelProto {
  const g = new GraphBuilder('torch_logmel_classifier');
  const w = new Weights(1616);
  const [n, hop, bins, filters] = [256, 128, 64, 32];
  const x = g.input('audio', 'float32', [B, 'samples']);
  const framed = g.op1('Conv', [g.op1('Unsqueeze', [x, g.int64('channel_axis', [1])], {}, { name: '/Unsqueeze' }), g.weight('stft.weight', [2 * bins, 1, n], dftWeight(bins, n))], { kernel_shape: [n], strides: [hop] }, { name: '/stft/Conv' });
  const squared = g.op1('Mul', [framed, framed], {}, { name: '/Mul' });
  const power = g.op1('ReduceSum', [g.op1('Reshape', [squared, g.int64('re_im_shape', [0, 2, bins, -1])], {}, { name: '/Reshape' }), g.int64('re_im_axis', [1])], { keepdims: 0 }, { name: '/ReduceSum' });
  const mel = g.op1('MatMul', [g.op1('Transpose', [power], { perm: [0, 2, 1] }, { name: '/Transpose' }), g.weight('mel.weight', [bins, filters], filterBank(bins, filters))], {}, { name: '/mel/MatMul' });
  const logMel = g.op1('Log', [g.op1('Add', [mel, constantScalar(g, 'log_eps', 1e-6)], {}, { name: '/Add' })], {}, { name: '/Log' });
  const normed = g.op1('Mul', [g.op1('Sub', [logMel, g.weight('norm.mean', [filters], Float32Array.from({ length: filters }, () => 5.5))], {}, { name: '/norm/Sub' }), g.weight('norm.inv_std', [filters], w.aroundOne(filters))], {}, { name: '/norm/Mul' });
  let h = g.op1('ReduceMean', [normed], { axes: [1], keepdims: 0 }, { name: '/ReduceMean' });
  h = g.op1('Relu', [linear(g, w, h, 'fc1', filters, 64)]);
  g.output(linear(g, w, h, 'fc2', 64, 10), 'float32', [B, 10], 'logits');
  return pytorch(g, 17);
}

const fixture = (name: string, pattern: string, build: () => ModelProto, inputs: FixtureInput[]): ExporterFixture => ({
  name,
  pattern,
  bytes: () => encodeModel(build()),
  inputs,
});

/** Every exporter fixture, the weightless one last. */
export const FIXTURES: ExporterFixture[] = [
  fixture('pytorch-linear', 'Gemm transB=1 with bias; one Gemm with alpha 0.5', pytorchLinear, [{ name: 'input', dims: [20] }]),
  fixture('pytorch-constant-weights', 'weights and shapes in Constant nodes', pytorchConstantWeights, [{ name: 'input', dims: [24] }]),
  fixture('layernorm-decomposed', 'ReduceMean…Div…Mul…Add layer norm, opset 13', layerNormDecomposed, [{ name: 'tokens', dims: [6, 16] }]),
  fixture('layernorm-fused', 'LayerNormalization op, opset 17', layerNormFused, [{ name: 'tokens', dims: [6, 16] }]),
  fixture('gelu-erf', 'PyTorch GELU: Div √2 → Erf → Add 1 → Mul x → Mul 0.5', geluErf, [{ name: 'input', dims: [16] }]),
  fixture('gelu-tanh-tf', 'TF GELU: Pow 3, Tanh; Dense as MatMul + Add', geluTanhTf, [{ name: 'input_1', dims: [16] }]),
  fixture('pytorch-flatten-view', 'Shape → Gather → Unsqueeze → Concat → Reshape at opset 12; 3-D × 2-D MatMul', pytorchFlattenView, [{ name: 'input', dims: [4, 10] }]),
  fixture('attention', 'Q/K/V MatMuls, activation × activation MatMul, Softmax', attention, [{ name: 'tokens', dims: [6, 16] }]),
  fixture('cnn1d-keras', 'Conv1d+bias → Relu → MaxPool → GlobalAveragePool → Flatten → Gemm', cnn1d, [{ name: 'signal', dims: [3, 32] }]),
  fixture('cnn2d', 'Conv2d+bias → Relu → MaxPool → GlobalAveragePool → Flatten → Gemm', cnn2d, [{ name: 'image', dims: [2, 8, 8] }]),
  fixture('tf-nhwc-dense', 'opset 13, NHWC Transposes, MatMul + Add dense layers, Softmax', tfNhwcDense, [{ name: 'input_1', dims: [4, 4, 3] }]),
  fixture('no-weights', 'Add of two inputs, nothing to quantize', noWeights, [{ name: 'a', dims: [8] }, { name: 'b', dims: [8] }]),
];

/**
 * Models as a new user brings them, exported by PyTorch and tf2onnx rather than written by the
 * project: bigger than FIXTURES (tens of thousands of weights, so file sizes mean something), and
 * one with a dynamic input length. The "quantize any exported model" goal is measured on these.
 */
export const ANY_MODEL_FIXTURES: ExporterFixture[] = [
  fixture('pytorch-cnn1d', 'Conv1d ×3 with BatchNorm1d, MaxPool, GlobalAveragePool, Gemm head', pytorchCnn1d, [{ name: 'input', dims: [6, 128] }]),
  fixture('pytorch-transformer', 'TransformerEncoder ×2: Gather positions, in_proj Split, heads, LayerNormalization, GELU', pytorchTransformer, [{ name: 'features', dims: [16, 12] }]),
  fixture('tf-conv', 'tf2onnx Keras CNN: NHWC Transposes, Conv2D+bias+ReLU ×3, ReduceMean, Dense as MatMul + Add, Softmax', tfConv, [{ name: 'input_1', dims: [16, 16, 3] }]),
  fixture('mel-dynamic-length', '[batch, samples] input; DFT framing Conv1d, power, filter-bank MatMul, Log, Gemm head', melFrontEnd, [{ name: 'audio', dims: [4000] }]),
];

/** A fixture by name; throws for a name not in FIXTURES, so a typo fails loudly. */
export function fixtureNamed(name: string): ExporterFixture {
  const all = [...FIXTURES, ...ANY_MODEL_FIXTURES];
  const f = all.find((x) => x.name === name);
  if (!f) throw new Error(`no exporter fixture '${name}' (have ${all.map((x) => x.name).join(', ')})`);
  return f;
}

/** `count` windows of standard normal inputs (no batch axis), seeded. */
export function fixtureWindows(f: ExporterFixture, count: number, seed: number): Array<Record<string, { type: 'float32'; data: Float32Array; dims: number[] }>> {
  const next = gaussian(seed);
  return Array.from({ length: count }, () => {
    const w: Record<string, { type: 'float32'; data: Float32Array; dims: number[] }> = {};
    for (const i of f.inputs) w[i.name] = { type: 'float32', data: Float32Array.from({ length: i.dims.reduce((a, b) => a * b, 1) }, next), dims: [...i.dims] };
    return w;
  });
}
