// What the quantizer tests share: the methods under test, windows stacked into feeds, runs on a
// backend, and the tolerances a quantized model must meet against its fp32 original.
import { type BackendName, ModelSession, type TensorMap } from '../../runtime/engine';
import { outputAgreement } from '../../runtime/eval';
import { type ModelProto, type NodeProto, type TensorProto, DataType, encodeModel } from '../../runtime/onnx';
import { type CalibrationMethod, type QuantizeOutcome, quantizeDynamic, quantizeStatic, quantizeWeightsOnly } from '../../runtime/quant';
import { type ExporterFixture, fixtureWindows } from '../helpers/exporter-fixtures';

/**
 * Cosine with the fp32 outputs for int8 and FP8 E4M3: both keep 7–8 significant bits per weight
 * (≤ 0.4 % rounding, uint8 activations ≤ range/510), which over the 2–4 layers of a fixture
 * leaves the output direction within a few tenths of a percent.
 */
export const COSINE_8BIT = 0.99;
/** E5M2 keeps 2 mantissa bits (up to 6.25 % rounding per weight), so its outputs drift further. */
export const COSINE_E5M2 = 0.98;
/** Block size for block-wise FP8 scales: below most fixtures' reduction axes (12–128), above a few (2, 3). */
export const BLOCK_SIZE = 8;
/**
 * Calibration and held-out windows, from different seeds, never the same windows. Calibration
 * needs enough windows for their extremes to cover the held-out ones: with 32, MinMax missed a
 * third of gelu-erf's held-out range (a GELU product reached 8.7 against a calibrated 5.9) and the
 * clipped outputs fell to cosine 0.986. 256 windows of these small models still calibrate in a
 * few runs; held out, few, so the suite stays fast.
 */
export const CALIBRATION_WINDOWS = 256;
export const HELD_OUT_WINDOWS = 32;
export const BACKENDS: readonly BackendName[] = ['wasm', 'native'];

export type MethodFamily = 'weight-only' | 'dynamic' | 'static';

export interface Method {
  id: string;
  family: MethodFamily;
  /** The cosine it must reach. */
  cosine: number;
  quantize(model: ModelProto, fixture: ExporterFixture): Promise<QuantizeOutcome>;
}

const staticMethod = (method: CalibrationMethod): Method => ({
  id: `static int8 (${method})`,
  family: 'static',
  cosine: COSINE_8BIT,
  quantize: (model, f) => quantizeStatic(model, { windows: calibrationWindows(f), method }),
});

export const WEIGHT_ONLY_METHODS: Method[] = [
  { id: 'weight-only int8', family: 'weight-only', cosine: COSINE_8BIT, quantize: async (m) => quantizeWeightsOnly(m, { format: 'int8' }) },
  { id: 'fp8 e4m3 per channel', family: 'weight-only', cosine: COSINE_8BIT, quantize: async (m) => quantizeWeightsOnly(m, { format: 'e4m3fn' }) },
  { id: `fp8 e4m3 blocks of ${BLOCK_SIZE}`, family: 'weight-only', cosine: COSINE_8BIT, quantize: async (m) => quantizeWeightsOnly(m, { format: 'e4m3fn', blockSize: BLOCK_SIZE }) },
  { id: 'fp8 e5m2 per channel', family: 'weight-only', cosine: COSINE_E5M2, quantize: async (m) => quantizeWeightsOnly(m, { format: 'e5m2' }) },
  { id: 'dynamic int8', family: 'dynamic', cosine: COSINE_8BIT, quantize: async (m) => quantizeDynamic(m) },
];

export const STATIC_METHODS: Method[] = [staticMethod('minmax'), staticMethod('percentile'), staticMethod('entropy')];

export function calibrationWindows(f: ExporterFixture): TensorMap[] {
  return fixtureWindows(f, CALIBRATION_WINDOWS, 11);
}

export function heldOutWindows(f: ExporterFixture): TensorMap[] {
  return fixtureWindows(f, HELD_OUT_WINDOWS, 99);
}

/** Windows stacked along a new batch axis into one feeds map. */
export function stackWindows(windows: readonly TensorMap[]): TensorMap {
  const feeds: TensorMap = {};
  for (const name of Object.keys(windows[0])) {
    const first = windows[0][name];
    const data = new Float32Array(first.data.length * windows.length);
    windows.forEach((w, i) => data.set(w[name].data as Float32Array, i * first.data.length));
    feeds[name] = { type: 'float32', data, dims: [windows.length, ...first.dims] };
  }
  return feeds;
}

/** Every output of one run of `bytes` on `backend`, flattened to float32. */
export async function runOn(bytes: Uint8Array, backend: BackendName, feeds: TensorMap, name: string = backend): Promise<Record<string, Float32Array>> {
  const session = await ModelSession.load(bytes, { backend, name, warmupRuns: 0, threads: 1 });
  try {
    const { outputs } = await session.run(feeds);
    return Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, t.data as Float32Array]));
  } finally {
    await session.dispose();
  }
}

/** The smallest cosine over the outputs of two runs (every output must agree, not just the first). */
export function worstCosine(ref: Record<string, Float32Array>, got: Record<string, Float32Array>): number {
  let worst = 1;
  for (const [name, values] of Object.entries(ref)) {
    if (!got[name]) throw new Error(`output '${name}' is missing`);
    worst = Math.min(worst, outputAgreement(values, got[name]).cosine);
  }
  return worst;
}

const WEIGHT_OPS = new Set(['MatMul', 'Gemm', 'Conv']);

/**
 * MatMul / Gemm / Conv nodes that still read a float32 constant weight of rank ≥ 2 (from an
 * initializer or a Constant node): what a quantizer left in fp32 and must say so.
 */
export function fp32WeightReaders(model: ModelProto): NodeProto[] {
  const graph = model.graph ?? {};
  const constants = new Map<string, { data_type?: number; dims?: unknown[] }>();
  for (const t of graph.initializer ?? []) if (t.name) constants.set(t.name, t);
  for (const n of graph.node ?? []) {
    const value = n.op_type === 'Constant' ? n.attribute?.find((a) => a.name === 'value')?.t : undefined;
    if (value && n.output?.[0]) constants.set(n.output[0], value);
  }
  return (graph.node ?? []).filter((n) => {
    if (!WEIGHT_OPS.has(n.op_type ?? '') || (n.domain && n.domain !== 'ai.onnx')) return false;
    const w = constants.get(n.input?.[1] ?? '');
    return w !== undefined && w.data_type === DataType.FLOAT && (w.dims?.length ?? 0) >= 2;
  });
}

/**
 * The constant behind a tensor: its initializer, or the initializer a Cast widens into it (the
 * quantizer stores scales and norms as fp16, bias codes as int16); `storedAs` is the type in the
 * file, `dataType` the one the graph reads.
 */
export function constantBehind(model: ModelProto, tensor: string): { tensor: TensorProto; storedAs: DataType; dataType: DataType } | undefined {
  const graph = model.graph ?? {};
  const init = (name: string): TensorProto | undefined => (graph.initializer ?? []).find((t) => t.name === name);
  const own = init(tensor);
  if (own) return { tensor: own, storedAs: own.data_type!, dataType: own.data_type! };
  const cast = (graph.node ?? []).find((n) => n.op_type === 'Cast' && n.output?.[0] === tensor);
  const stored = cast ? init(cast.input![0]) : undefined;
  const to = Number(cast?.attribute?.find((a) => a.name === 'to')?.i ?? 0);
  return stored ? { tensor: stored, storedAs: stored.data_type!, dataType: to } : undefined;
}

/** Op types of a model, in order of first appearance. */
export function opTypes(model: ModelProto): string[] {
  return [...new Set((model.graph?.node ?? []).map((n) => n.op_type ?? '?'))];
}

/** Quantizes a fixture: the outcome, the encoded bytes, and whether the input model changed. */
export async function quantizeFixture(method: Method, model: ModelProto, fixture: ExporterFixture): Promise<{ outcome: QuantizeOutcome; bytes: Uint8Array; inputChanged: boolean }> {
  const before = encodeModel(model);
  const outcome = await method.quantize(model, fixture);
  const after = encodeModel(model);
  return { outcome, bytes: encodeModel(outcome.model), inputChanged: Buffer.compare(before, after) !== 0 };
}
