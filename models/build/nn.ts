// Layers that train in TensorFlow.js and write themselves out as the same ONNX operators, so
// the exported graph computes exactly what was trained (the build checks that it does).
import * as tf from '@tensorflow/tfjs-core';
import { type GraphBuilder, float } from '../../runtime/onnx';

export interface Layer {
  /** Forward pass in TensorFlow.js; `training` turns dropout on. */
  forward(x: tf.Tensor, training: boolean): tf.Tensor;
  /** Emits the layer's ONNX nodes reading `x` and returns the output value name. */
  export(g: GraphBuilder, x: string): string;
  /** Trainable variables. */
  readonly variables: tf.Variable[];
}

/** Deterministic weight initialisation: Glorot-uniform from a seeded generator. */
export class Init {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 1;
  }
  next(): number {
    // mulberry32
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  glorot(name: string, fanIn: number, fanOut: number, shape: number[]): tf.Variable {
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    const n = shape.reduce((a, b) => a * b, 1);
    const v = Float32Array.from({ length: n }, () => (this.next() * 2 - 1) * limit);
    return tf.variable(tf.tensor(v, shape), true, name);
  }
  constant(name: string, shape: number[], value: number): tf.Variable {
    return tf.variable(tf.fill(shape, value), true, name);
  }
}

const values = (v: tf.Variable): Float32Array => v.dataSync() as Float32Array;

/** y = x·W + b on the last axis: Gemm for 2-D inputs, MatMul + Add for token sequences. */
export class Dense implements Layer {
  readonly w: tf.Variable;
  readonly b: tf.Variable;
  constructor(init: Init, readonly name: string, readonly inDim: number, readonly outDim: number) {
    this.w = init.glorot(`${name}.weight`, inDim, outDim, [inDim, outDim]);
    this.b = init.constant(`${name}.bias`, [outDim], 0);
  }
  get variables(): tf.Variable[] {
    return [this.w, this.b];
  }
  forward(x: tf.Tensor): tf.Tensor {
    if (x.rank === 2) return tf.add(tf.matMul(x as tf.Tensor2D, this.w as tf.Tensor2D), this.b);
    const lead = x.shape.slice(0, -1);
    const flat = tf.reshape(x, [-1, this.inDim]) as tf.Tensor2D;
    return tf.reshape(tf.add(tf.matMul(flat, this.w as tf.Tensor2D), this.b), [...lead, this.outDim]);
  }
  export(g: GraphBuilder, x: string, rank = 2): string {
    const w = g.weight(`${this.name}.weight`, [this.inDim, this.outDim], values(this.w));
    const b = g.weight(`${this.name}.bias`, [this.outDim], values(this.b));
    if (rank === 2) return g.op1('Gemm', [x, w, b], {}, { name: this.name });
    return g.op1('Add', [g.op1('MatMul', [x, w], {}, { name: `${this.name}.matmul` }), b], {}, { name: `${this.name}.add` });
  }
}

/** A Dense layer applied to every token of a [batch, tokens, features] sequence. */
export class TokenDense extends Dense {
  override export(g: GraphBuilder, x: string): string {
    return super.export(g, x, 3);
  }
}

export class Relu implements Layer {
  readonly variables: tf.Variable[] = [];
  forward(x: tf.Tensor): tf.Tensor {
    return tf.relu(x);
  }
  export(g: GraphBuilder, x: string): string {
    return g.op1('Relu', [x]);
  }
}

/** GELU in its exact, Erf-based form, exported as PyTorch exporters write it. */
export class Gelu implements Layer {
  readonly variables: tf.Variable[] = [];
  forward(x: tf.Tensor): tf.Tensor {
    return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));
  }
  export(g: GraphBuilder, x: string): string {
    const erf = g.op1('Erf', [g.op1('Div', [x, g.scalar('sqrt2', Math.SQRT2)])]);
    const onePlus = g.op1('Add', [erf, g.scalar('one', 1)]);
    return g.op1('Mul', [g.op1('Mul', [x, onePlus]), g.scalar('half', 0.5)], {}, { name: 'gelu' });
  }
}

export class Dropout implements Layer {
  readonly variables: tf.Variable[] = [];
  constructor(readonly rate: number) {}
  forward(x: tf.Tensor, training: boolean): tf.Tensor {
    return training && this.rate > 0 ? tf.dropout(x, this.rate) : x;
  }
  export(_g: GraphBuilder, x: string): string {
    return x;
  }
}

/** Layer normalization over the last axis (ONNX LayerNormalization, opset 17). */
export class LayerNorm implements Layer {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  constructor(init: Init, readonly name: string, readonly dim: number, readonly epsilon = 1e-5) {
    this.gamma = init.constant(`${name}.weight`, [dim], 1);
    this.beta = init.constant(`${name}.bias`, [dim], 0);
  }
  get variables(): tf.Variable[] {
    return [this.gamma, this.beta];
  }
  forward(x: tf.Tensor): tf.Tensor {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, this.epsilon))), this.gamma), this.beta);
  }
  export(g: GraphBuilder, x: string): string {
    return g.op1('LayerNormalization', [x, g.weight(`${this.name}.weight`, [this.dim], values(this.gamma)), g.weight(`${this.name}.bias`, [this.dim], values(this.beta))], { axis: -1, epsilon: float(this.epsilon) }, { name: this.name });
  }
}

/** Multi-head self-attention over [batch, tokens, dim]. */
export class SelfAttention implements Layer {
  readonly q: TokenDense;
  readonly k: TokenDense;
  readonly v: TokenDense;
  readonly o: TokenDense;
  readonly headDim: number;
  constructor(init: Init, readonly name: string, readonly dim: number, readonly heads: number) {
    this.headDim = dim / heads;
    this.q = new TokenDense(init, `${name}.q`, dim, dim);
    this.k = new TokenDense(init, `${name}.k`, dim, dim);
    this.v = new TokenDense(init, `${name}.v`, dim, dim);
    this.o = new TokenDense(init, `${name}.out`, dim, dim);
  }
  get variables(): tf.Variable[] {
    return [...this.q.variables, ...this.k.variables, ...this.v.variables, ...this.o.variables];
  }
  private split(x: tf.Tensor): tf.Tensor {
    const [b, t] = x.shape;
    return tf.transpose(tf.reshape(x, [b, t, this.heads, this.headDim]), [0, 2, 1, 3]);
  }
  forward(x: tf.Tensor): tf.Tensor {
    const [b, t] = x.shape;
    const q = this.split(this.q.forward(x));
    const k = this.split(this.k.forward(x));
    const v = this.split(this.v.forward(x));
    const scores = tf.mul(tf.matMul(q as tf.Tensor4D, k as tf.Tensor4D, false, true), 1 / Math.sqrt(this.headDim));
    const ctx = tf.matMul(tf.softmax(scores, -1) as tf.Tensor4D, v as tf.Tensor4D);
    return this.o.forward(tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [b, t, this.dim]));
  }
  export(g: GraphBuilder, x: string): string {
    const heads = g.int64(`${this.name}.heads_shape`, [0, 0, this.heads, this.headDim]);
    const merged = g.int64(`${this.name}.merged_shape`, [0, 0, this.dim]);
    const split = (t: string, perm: number[]): string => g.op1('Transpose', [g.op1('Reshape', [t, heads])], { perm });
    const q = split(this.q.export(g, x), [0, 2, 1, 3]);
    const kT = split(this.k.export(g, x), [0, 2, 3, 1]);
    const v = split(this.v.export(g, x), [0, 2, 1, 3]);
    const scores = g.op1('Mul', [g.op1('MatMul', [q, kT], {}, { name: `${this.name}.scores` }), g.scalar(`${this.name}.scale`, 1 / Math.sqrt(this.headDim))]);
    const ctx = g.op1('MatMul', [g.op1('Softmax', [scores], { axis: -1 }), v], {}, { name: `${this.name}.context` });
    return this.o.export(g, g.op1('Reshape', [g.op1('Transpose', [ctx], { perm: [0, 2, 1, 3] }), merged]));
  }
}

/** Pre-norm transformer encoder block: x + attention(LN(x)), then x + FFN(LN(x)) with GELU. */
export class EncoderBlock implements Layer {
  readonly ln1: LayerNorm;
  readonly attention: SelfAttention;
  readonly ln2: LayerNorm;
  readonly ff1: TokenDense;
  readonly gelu = new Gelu();
  readonly ff2: TokenDense;
  readonly dropout: Dropout;
  constructor(init: Init, readonly name: string, dim: number, heads: number, ffDim: number, dropout = 0) {
    this.ln1 = new LayerNorm(init, `${name}.ln1`, dim);
    this.attention = new SelfAttention(init, `${name}.attention`, dim, heads);
    this.ln2 = new LayerNorm(init, `${name}.ln2`, dim);
    this.ff1 = new TokenDense(init, `${name}.ff1`, dim, ffDim);
    this.ff2 = new TokenDense(init, `${name}.ff2`, ffDim, dim);
    this.dropout = new Dropout(dropout);
  }
  get variables(): tf.Variable[] {
    return [...this.ln1.variables, ...this.attention.variables, ...this.ln2.variables, ...this.ff1.variables, ...this.ff2.variables];
  }
  forward(x: tf.Tensor, training: boolean): tf.Tensor {
    const a = tf.add(x, this.dropout.forward(this.attention.forward(this.ln1.forward(x)), training));
    return tf.add(a, this.dropout.forward(this.ff2.forward(this.gelu.forward(this.ff1.forward(this.ln2.forward(a)))), training));
  }
  export(g: GraphBuilder, x: string): string {
    const a = g.op1('Add', [x, this.attention.export(g, this.ln1.export(g, x))], {}, { name: `${this.name}.residual1` });
    const f = this.ff2.export(g, this.gelu.export(g, this.ff1.export(g, this.ln2.export(g, a))));
    return g.op1('Add', [a, f], {}, { name: `${this.name}.residual2` });
  }
}

/** Layers applied in order. */
export class Sequential implements Layer {
  constructor(readonly layers: Layer[]) {}
  get variables(): tf.Variable[] {
    return this.layers.flatMap((l) => l.variables);
  }
  forward(x: tf.Tensor, training: boolean): tf.Tensor {
    return this.layers.reduce((h, l) => l.forward(h, training), x);
  }
  export(g: GraphBuilder, x: string): string {
    return this.layers.reduce((h, l) => l.export(g, h), x);
  }
}

/** Number of trainable parameters. */
export function parameterCount(layer: Layer): number {
  return layer.variables.reduce((n, v) => n + v.size, 0);
}
