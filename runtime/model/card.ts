// The model card: one JSON file per model variant, next to its .onnx file. The node, the
// pipeline and the dashboard configure themselves from it, so it is checked strictly and its
// errors name the file, the field and what was expected.
import { z } from 'zod';
import { EdgeInferError } from '../errors';

export const TASKS = ['anomaly', 'classification', 'regression'] as const;
export const PRECISIONS = ['fp32', 'fp16', 'int8', 'fp8-e4m3', 'fp8-e5m2'] as const;
export type Task = (typeof TASKS)[number];
export type Precision = (typeof PRECISIONS)[number];

/** Key under which the card is mirrored in the ONNX file's metadata_props. */
export const CARD_METADATA_KEY = 'edge-infer.card';

const name = z.string().min(1).max(128);

export const ChannelSchema = z
  .object({
    /** Channel name as devices publish it (vib_x, current, temperature). */
    name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'expected a channel name: letters, digits, _ . -, starting with a letter or _'),
    /** Unit of the samples (g, A, °C). */
    unit: z.string().min(1).max(32),
  })
  .strict();

/** What turns a window of raw samples into the model's input tensor. */
export const FeatureSchema = z.discriminatedUnion('transform', [
  /** The samples themselves: [channels, window]. */
  z.object({ transform: z.literal('raw') }).strict(),
  /** Root mean square per channel: [channels]. */
  z.object({ transform: z.literal('rms') }).strict(),
  /**
   * Magnitude spectrum per channel (Hann window, one-sided), averaged into `bins` equal bands
   * from 0 Hz up to `maxHz` (default: Nyquist): [channels, bins]. `scale: log` takes log1p.
   */
  z
    .object({
      transform: z.literal('fft-magnitude'),
      bins: z.number().int().min(1).max(8192),
      maxHz: z.number().positive().optional(),
      scale: z.enum(['linear', 'log']).default('linear'),
    })
    .strict(),
]);
export type FeatureSpec = z.infer<typeof FeatureSchema>;

export const NormalizationSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }).strict(),
  /** (x - mean) / std, with one value per channel or one per feature element. */
  z
    .object({
      kind: z.literal('standard'),
      mean: z.array(z.number()).min(1),
      std: z.array(z.number().positive()).min(1),
    })
    .strict(),
]);
export type Normalization = z.infer<typeof NormalizationSchema>;

export const CardInputSchema = z
  .object({
    /** Name of the ONNX input the features go into. */
    tensor: name,
    channels: z.array(ChannelSchema).min(1),
    /** Samples per second per channel. */
    sampleRate: z.number().positive(),
    /** Samples per channel in one window. */
    window: z.number().int().min(1),
    /** Samples between the starts of consecutive windows (hop = window: tumbling). */
    hop: z.number().int().min(1),
    /** Longest gap between samples, in seconds, before a window restarts (default: 10 sample periods). */
    maxGapS: z.number().positive().optional(),
    features: FeatureSchema,
    normalization: NormalizationSchema.default({ kind: 'none' }),
  })
  .strict();

export const CardOutputSchema = z
  .object({
    /** Name of the ONNX output that holds the score or the class probabilities. */
    tensor: name,
    /** Class labels in output order (classification). */
    labels: z.array(z.string().min(1)).min(2).optional(),
    /** What the score means, in the plant's words. */
    score: z.string().min(1).max(500),
    /** Anomaly: score at or above which a window is an anomaly. Classification: lowest confidence to report a non-normal label. */
    threshold: z.number().optional(),
    /** Regression: unit of the predicted value. */
    unit: z.string().optional(),
  })
  .strict();

export const AgreementSchema = z
  .object({
    /** Share of held-out windows with the same top-1 label as fp32 (0..1). */
    top1: z.number().min(0).max(1).optional(),
    /** Cosine similarity of the outputs with fp32's (−1..1). */
    cosine: z.number().min(-1).max(1).optional(),
    maxAbsError: z.number().min(0).optional(),
    meanAbsError: z.number().min(0).optional(),
    /** The task metric of this variant minus fp32's, in points (0.01 = 1 point). */
    metricDelta: z.number().optional(),
    windows: z.number().int().min(1).optional(),
  })
  .strict();

export const QuantizationSchema = z
  .object({
    method: z.string().min(1),
    calibration: z
      .object({
        source: z.string().min(1),
        windows: z.number().int().min(0),
        method: z.string().optional(),
      })
      .strict()
      .optional(),
    agreement: AgreementSchema.optional(),
  })
  .strict();

export const CardSchema = z
  .object({
    /** Card format version. */
    schema: z.literal(1),
    /** Model id: shared by every variant of one model. */
    id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'expected lowercase letters, digits and -'),
    /** Variant name, unique within the id (default: the precision). */
    variant: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'expected lowercase letters, digits and -').optional(),
    version: z.string().regex(/^\d+\.\d+\.\d+/, 'expected a semantic version such as 1.0.0'),
    title: z.string().min(1).max(80),
    description: z.string().min(1),
    task: z.enum(TASKS),
    input: CardInputSchema,
    output: CardOutputSchema,
    precision: z.enum(PRECISIONS),
    /** How a quantized variant was made. */
    quantization: QuantizationSchema.optional(),
    /** Held-out metrics: accuracy, rocAuc, f1, ... (0..1) and window counts. */
    metrics: z.record(z.string(), z.number()).default({}),
    /** How the model was trained, in a sentence or two, and with what command. */
    training: z.string().optional(),
    license: z.string().optional(),
  })
  .strict()
  .superRefine((card, ctx) => {
    if (card.input.hop > card.input.window) {
      ctx.addIssue({ code: 'custom', path: ['input', 'hop'], message: `hop (${card.input.hop}) cannot exceed the window (${card.input.window})` });
    }
    if (card.task === 'classification' && !card.output.labels) {
      ctx.addIssue({ code: 'custom', path: ['output', 'labels'], message: 'a classification model needs its labels' });
    }
    if (card.task === 'anomaly' && card.output.threshold === undefined) {
      ctx.addIssue({ code: 'custom', path: ['output', 'threshold'], message: 'an anomaly model needs its threshold' });
    }
    if (card.precision !== 'fp32' && card.precision !== 'fp16' && !card.quantization) {
      ctx.addIssue({ code: 'custom', path: ['quantization'], message: `a ${card.precision} variant needs to say how it was quantized` });
    }
    const n = card.input.normalization;
    if (n.kind === 'standard' && n.mean.length !== n.std.length) {
      ctx.addIssue({ code: 'custom', path: ['input', 'normalization', 'std'], message: `std has ${n.std.length} values, mean has ${n.mean.length}` });
    }
    const f = card.input.features;
    if (f.transform === 'fft-magnitude') {
      const nyquist = card.input.sampleRate / 2;
      if (f.maxHz !== undefined && f.maxHz > nyquist) {
        ctx.addIssue({ code: 'custom', path: ['input', 'features', 'maxHz'], message: `maxHz (${f.maxHz}) is above the Nyquist frequency (${nyquist} Hz)` });
      }
      if (f.bins > Math.floor(card.input.window / 2)) {
        ctx.addIssue({ code: 'custom', path: ['input', 'features', 'bins'], message: `${f.bins} bins need a window of at least ${f.bins * 2} samples, the window is ${card.input.window}` });
      }
    }
  });

export type ModelCard = z.infer<typeof CardSchema>;
/** A card as written in a file, before defaults are filled in. */
export type ModelCardInput = z.input<typeof CardSchema>;

/** The variant name of a card: its `variant`, or its precision. */
export function variantOf(card: ModelCard): string {
  return card.variant ?? card.precision;
}

/** The shape of one window's features, without the batch axis, as the card's transform makes it. */
export function featureShape(input: ModelCard['input']): number[] {
  const c = input.channels.length;
  switch (input.features.transform) {
    case 'raw': return [c, input.window];
    case 'rms': return [c];
    case 'fft-magnitude': return [c, input.features.bins];
  }
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

function valueAt(obj: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

/** `input.channels[2].unit` */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out || '(card)';
}

/**
 * Validates a parsed card. `source` names the file in messages. Throws E_CARD_INVALID whose
 * message lists every problem as "file: field: expected ..., got ...".
 */
export function parseCard(value: unknown, source = '<card>'): ModelCard {
  const result = CardSchema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const field = formatPath(issue.path);
    if (issue.code === 'unrecognized_keys') return `${field}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
    const got = issue.code === 'custom' ? '' : `, got ${describeValue(valueAt(value, issue.path))}`;
    return `${field}: ${issue.message.replace(/^Invalid (input|option): /, '')}${got}`;
  });
  throw new EdgeInferError('E_CARD_INVALID', `${source}: invalid model card: ${problems.join('; ')}`);
}

/** Parses card JSON text; a JSON syntax error names the file too. */
export function parseCardJson(text: string, source = '<card>'): ModelCard {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new EdgeInferError('E_CARD_INVALID', `${source}: not valid JSON (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  return parseCard(value, source);
}
