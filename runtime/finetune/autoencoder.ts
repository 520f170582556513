// The anomaly autoencoder as the fine-tune sees it: the shipped fp32 graph read back into its
// trainable parts (the in-graph standardization, then Gemm layers with or without a Relu), and
// the same graph written out again with new weights. Only the initializers change, so the
// fine-tuned model has the base model's exact shape, inputs, outputs and score.
import { EdgeInferError } from '../errors';
import { type ModelProto, type NodeProto, type TensorProto, floatTensor, floatValues, tensorDims } from '../onnx';

export interface DenseLayer {
  /** Initializer names of the Gemm's weight [in, out] and bias [out]. */
  weight: string;
  bias: string;
  inDim: number;
  outDim: number;
  w: Float32Array;
  b: Float32Array;
  /** Followed by a Relu. */
  relu: boolean;
}

export interface Autoencoder {
  /** Per feature element, the graph's own standardization: (x − mean) / std. */
  mean: Float32Array;
  std: Float32Array;
  layers: DenseLayer[];
}

const attr = (n: NodeProto, name: string): number | undefined => {
  const a = n.attribute?.find((x) => x.name === name);
  return a ? Number(a.i ?? a.f ?? 0) : undefined;
};

/** Reads the autoencoder out of an fp32 graph; `where` names the file in errors. */
export function readAutoencoder(model: ModelProto, where: string): Autoencoder {
  const g = model.graph;
  const nodes = g?.node ?? [];
  const inits = new Map((g?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const unsupported = (why: string): EdgeInferError => new EdgeInferError('E_MODEL_UNSUPPORTED', `${where}: not an autoencoder the fine-tune can train (${why})`);
  const init = (name: string | undefined | null, what: string): TensorProto => {
    const t = inits.get(name ?? '');
    if (!t) throw unsupported(`${what} '${name ?? ''}' is not a constant`);
    if (t.data_type !== 1) throw unsupported(`${what} '${name ?? ''}' is not float32: quantized models cannot be fine-tuned, give the fp32 variant`);
    return t;
  };
  const consumers = (value: string): NodeProto[] => nodes.filter((n) => (n.input ?? []).includes(value));
  const centre = nodes.find((n) => n.op_type === 'Sub' && inits.has(n.input?.[1] ?? ''));
  if (!centre) throw unsupported('no standardization Sub(input, mean) at its start');
  const scale = consumers(centre.output![0]).find((n) => n.op_type === 'Div');
  if (!scale) throw unsupported('no Div(centred, std) after the mean');
  const mean = floatValues(init(centre.input![1], 'mean'));
  const std = floatValues(init(scale.input![1], 'std'));
  let value = scale.output![0];
  const flatten = consumers(value).find((n) => n.op_type === 'Flatten');
  if (flatten) value = flatten.output![0];
  const input = value;
  const layers: DenseLayer[] = [];
  for (;;) {
    const gemm = consumers(value).find((n) => n.op_type === 'Gemm');
    if (!gemm) break;
    if ((attr(gemm, 'transA') ?? 0) !== 0 || (attr(gemm, 'transB') ?? 0) !== 0 || (attr(gemm, 'alpha') ?? 1) !== 1 || (attr(gemm, 'beta') ?? 1) !== 1) throw unsupported(`Gemm '${gemm.name ?? ''}' has transposes or scales`);
    const wt = init(gemm.input?.[1], 'weight');
    const bt = init(gemm.input?.[2], 'bias');
    const [inDim, outDim] = tensorDims(wt);
    if (tensorDims(wt).length !== 2 || tensorDims(bt).join() !== String(outDim)) throw unsupported(`Gemm '${gemm.name ?? ''}' weight ${tensorDims(wt).join('×')} and bias ${tensorDims(bt).join('×')} do not fit`);
    if (layers.length && layers[layers.length - 1].outDim !== inDim) throw unsupported(`Gemm '${gemm.name ?? ''}' takes ${inDim} values, the layer before gives ${layers[layers.length - 1].outDim}`);
    value = gemm.output![0];
    const relu = consumers(value).find((n) => n.op_type === 'Relu');
    if (relu) value = relu.output![0];
    layers.push({ weight: wt.name!, bias: bt.name!, inDim, outDim, w: floatValues(wt), b: floatValues(bt), relu: Boolean(relu) });
  }
  if (layers.length < 2) throw unsupported(`${layers.length} Gemm layer(s) after the standardization, expected an encoder and a decoder`);
  const width = layers[0].inDim;
  if (layers[layers.length - 1].outDim !== width || layers[layers.length - 1].relu) throw unsupported(`its last layer gives ${layers[layers.length - 1].outDim} values${layers[layers.length - 1].relu ? ' through a Relu' : ''}, not a reconstruction of the ${width} inputs`);
  // The score must compare the reconstruction with the standardized input the layers saw.
  if (!consumers(value).some((n) => n.op_type === 'Sub' && n.input?.includes(input))) throw unsupported('its score does not compare the reconstruction with the input');
  if (mean.length !== width || std.length !== width) throw unsupported(`mean and std hold ${mean.length} and ${std.length} values for ${width} inputs`);
  return { mean, std, layers };
}

/** A copy of the graph with the layers' new weights; everything else as it was. */
export function withWeights(model: ModelProto, layers: readonly Pick<DenseLayer, 'weight' | 'bias' | 'inDim' | 'outDim' | 'w' | 'b'>[]): ModelProto {
  const replaced = new Map<string, TensorProto>();
  for (const l of layers) {
    replaced.set(l.weight, floatTensor(l.weight, [l.inDim, l.outDim], l.w));
    replaced.set(l.bias, floatTensor(l.bias, [l.outDim], l.b));
  }
  const graph = { ...model.graph!, initializer: model.graph!.initializer!.map((t) => replaced.get(t.name ?? '') ?? t) };
  return { ...model, graph } as ModelProto;
}
