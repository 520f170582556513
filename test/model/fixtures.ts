// Real model files for the model tests: small ONNX classifiers built with GraphBuilder, and
// cards that describe them, written into temp directories.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Dim } from '../../runtime/onnx';
import { DataType, GraphBuilder, encodeModel, floatTensor, int64Tensor, makeTensor } from '../../runtime/onnx';
import { CARD_METADATA_KEY, type ModelCardInput, type Precision } from '../../runtime/model';

export const CHANNELS = [
  { name: 'vib_x', unit: 'g' },
  { name: 'vib_y', unit: 'g' },
];
export const BINS = 16;
export const LABELS = ['normal', 'imbalance', 'bearing-wear'];

export interface CardOptions {
  id?: string;
  precision?: Precision;
  variant?: string;
  /** quantization.agreement.metricDelta; leave out for a quantized card without the figure. */
  metricDelta?: number;
}

/** A valid card for the classifier that `classifierModel` builds. */
export function makeCard(o: CardOptions = {}): ModelCardInput {
  const precision = o.precision ?? 'fp32';
  const quantized = precision !== 'fp32' && precision !== 'fp16';
  return {
    schema: 1,
    id: o.id ?? 'fault-classifier',
    ...(o.variant ? { variant: o.variant } : {}),
    version: '1.0.0',
    title: 'Bearing fault classifier',
    description: 'Tells normal running from imbalance and bearing wear on a motor.',
    task: 'classification',
    input: { tensor: 'features', channels: CHANNELS, sampleRate: 1000, window: 64, hop: 32, features: { transform: 'fft-magnitude', bins: BINS } },
    output: { tensor: 'probabilities', labels: LABELS, score: 'probability of each condition' },
    precision,
    ...(quantized
      ? {
          quantization: {
            method: 'static per-tensor',
            calibration: { source: 'simulator', windows: 256 },
            agreement: o.metricDelta === undefined ? { top1: 0.99 } : { top1: 0.99, metricDelta: o.metricDelta },
          },
        }
      : {}),
  };
}

export interface ModelOptions {
  /** Weights stored as float32 (default) or int8 behind a DequantizeLinear. */
  weights?: 'fp32' | 'int8';
  inputName?: string;
  outputName?: string;
  /** Declared input shape (default [batch, 2, 16]); the graph reshapes whatever comes to [-1, 32]. */
  inputShape?: Dim[];
  /** Declared output shape (default [batch, 3]). */
  outputShape?: Dim[];
  /** Extra bytes in the model's doc_string, to set file sizes apart. */
  padBytes?: number;
  /** A card to mirror in metadata_props, as the project writes models. */
  embeddedCard?: ModelCardInput | string;
}

/** A tiny real classifier: features [batch, 2, 16] → Gemm → Softmax → probabilities [batch, 3]. */
export function classifierModel(o: ModelOptions = {}): Uint8Array {
  const features = CHANNELS.length * BINS;
  const w = Array.from({ length: LABELS.length * features }, (_, i) => Math.sin(i * 0.7) * 0.5);
  const g = new GraphBuilder('fault_classifier');
  const x = g.input(o.inputName ?? 'features', 'float32', o.inputShape ?? ['batch', CHANNELS.length, BINS]);
  // GraphBuilder.int64() and .scalar() claim their name twice and throw, so constants go in as plain initializers.
  const flat = g.op1('Reshape', [x, g.initializer(int64Tensor('flat_shape', [2], [-1, features]))]);
  let weight: string;
  if (o.weights === 'int8') {
    const scale = Math.max(...w.map(Math.abs)) / 127;
    const quantized = g.initializer(makeTensor('w_q', DataType.INT8, [LABELS.length, features], Int8Array.from(w, (v) => Math.round(v / scale))));
    const zero = g.initializer(makeTensor('w_zero', DataType.INT8, [], new Int8Array(1)));
    weight = g.op1('DequantizeLinear', [quantized, g.initializer(floatTensor('w_scale', [], [scale])), zero]);
  } else {
    weight = g.weight('w', [LABELS.length, features], w);
  }
  const logits = g.op1('Gemm', [flat, weight, g.weight('b', [LABELS.length], [0.1, 0, -0.1])], { transB: 1 });
  g.output(g.op1('Softmax', [logits], { axis: -1 }), 'float32', o.outputShape ?? ['batch', LABELS.length], o.outputName ?? 'probabilities');
  const card = o.embeddedCard;
  return encodeModel(
    g.build({
      docString: o.padBytes ? 'x'.repeat(o.padBytes) : undefined,
      metadata: card === undefined ? undefined : { [CARD_METADATA_KEY]: typeof card === 'string' ? card : JSON.stringify(card) },
    }),
  );
}

export interface VariantFiles {
  model: string;
  card: string;
}

/** Writes `<stem>.onnx` and, unless `card` is null, `<stem>.model.json` (an object, or raw text). */
export async function writeVariant(dir: string, stem: string, card: ModelCardInput | string | null, model: ModelOptions = {}): Promise<VariantFiles> {
  const files = { model: path.join(dir, `${stem}.onnx`), card: path.join(dir, `${stem}.model.json`) };
  await fs.mkdir(dir, { recursive: true });
  if (card !== null) await fs.writeFile(files.card, typeof card === 'string' ? card : JSON.stringify(card, null, 2));
  await fs.writeFile(files.model, classifierModel({ weights: card && typeof card !== 'string' && card.precision === 'int8' ? 'int8' : 'fp32', ...model }));
  return files;
}

/** A fresh temp directory for one test; remove it with `removeDir`. */
export function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'edge-infer-model-'));
}

export function removeDir(dir: string): Promise<void> {
  return fs.rm(dir, { recursive: true, force: true });
}
