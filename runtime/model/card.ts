// The model card: one JSON file per model variant, next to its .onnx file. The node, the
// pipeline and the dashboard configure themselves from it, so it is checked strictly and its
// errors name the file, the field and what was expected.
import { z } from 'zod';
import { EdgeInferError } from '../errors';
import { count, describeValue, formatPath as pathOf, valueAt } from '../issues';

const formatPath = (path: readonly PropertyKey[]): string => pathOf(path, '(card)');

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

/** Where a model fine-tuned on a device's own windows came from (runtime/finetune). */
export const ProvenanceSchema = z
  .object({
    /** The device whose healthy windows it learned. */
    device: z.string().min(1),
    /** Windows it was trained on, and held out to set and check its threshold. */
    windows: z.number().int().min(1),
    heldOutWindows: z.number().int().min(1),
    /** Data time of the first and last window, ISO 8601. */
    firstWindow: z.string().min(1),
    lastWindow: z.string().min(1),
    /** The model it was fine-tuned from: id, variant and the sha256 of its .onnx file. */
    baseModel: z.object({ id: z.string().min(1), variant: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 hex digits') }).strict(),
    /** When it was fine-tuned, ISO 8601. */
    date: z.string().min(1),
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
    /** A fine-tuned model's origin: device, windows, dates, base model. */
    provenance: ProvenanceSchema.optional(),
    license: z.string().optional(),
  })
  .strict()
  .superRefine((card, ctx) => {
    // Messages read "expected ..., got ..." like the schema's own, with the numbers that clash.
    // A window that already failed its own check would only add echoes of that problem here.
    const windowOk = Number.isInteger(card.input.window) && card.input.window >= 1;
    if (windowOk && card.input.hop > card.input.window) {
      ctx.addIssue({ code: 'custom', path: ['input', 'hop'], message: `expected at most the window (${card.input.window}), got ${card.input.hop}` });
    }
    if (card.task === 'classification' && !card.output.labels) {
      ctx.addIssue({ code: 'custom', path: ['output', 'labels'], message: 'expected the class labels of a classification model, got nothing' });
    }
    if (card.task === 'anomaly' && card.output.threshold === undefined) {
      ctx.addIssue({ code: 'custom', path: ['output', 'threshold'], message: 'expected the score threshold of an anomaly model, got nothing' });
    }
    if (card.precision !== 'fp32' && card.precision !== 'fp16' && !card.quantization) {
      ctx.addIssue({ code: 'custom', path: ['quantization'], message: `expected how the ${card.precision} variant was quantized (method, calibration, agreement), got nothing` });
    }
    const n = card.input.normalization;
    if (n.kind === 'standard' && n.mean.length !== n.std.length) {
      ctx.addIssue({ code: 'custom', path: ['input', 'normalization', 'std'], message: `expected as many values as mean (${n.mean.length}), got ${n.std.length}` });
    }
    const f = card.input.features;
    if (f.transform === 'fft-magnitude') {
      const nyquist = card.input.sampleRate / 2;
      if (f.maxHz !== undefined && f.maxHz > nyquist) {
        ctx.addIssue({ code: 'custom', path: ['input', 'features', 'maxHz'], message: `expected at most the Nyquist frequency (${nyquist} Hz), got ${f.maxHz}` });
      }
      if (windowOk && f.bins > Math.floor(card.input.window / 2)) {
        ctx.addIssue({ code: 'custom', path: ['input', 'features', 'bins'], message: `expected at most half the window (${Math.floor(card.input.window / 2)} bins for ${card.input.window} samples), got ${f.bins}` });
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

/** One window's features as the model's input: the tensor the card names, in featureShape. */
export function windowFeeds(input: ModelCard['input'], features: Float32Array): Record<string, { type: 'float32'; data: Float32Array; dims: number[] }> {
  return { [input.tensor]: { type: 'float32', data: features, dims: featureShape(input) } };
}

/** The parts of a zod schema that `knownFields` walks; zod 4 keeps them under `_zod.def`. */
interface SchemaNode {
  _zod: { def: { type: string; innerType?: SchemaNode; element?: SchemaNode; valueType?: SchemaNode; options?: SchemaNode[]; discriminator?: string; values?: unknown[]; shape?: Record<string, SchemaNode> } };
}

/** The fields the card allows for the object at `path` in `value`, so an unknown field can say what was expected. */
function knownFields(node: SchemaNode, value: unknown, path: readonly PropertyKey[]): string[] {
  const def = node._zod.def;
  if (def.innerType) return knownFields(def.innerType, value, path); // optional, default
  if (def.type === 'union' && def.discriminator) {
    const tag = (value as Record<string, unknown> | null | undefined)?.[def.discriminator];
    const option = def.options?.find((o) => o._zod.def.shape?.[def.discriminator as string]?._zod.def.values?.includes(tag));
    return option ? knownFields(option, value, path) : [];
  }
  if (path.length === 0) return Object.keys(def.shape ?? {});
  const [key, ...rest] = path;
  const child = def.type === 'object' ? def.shape?.[String(key)] : (def.element ?? def.valueType);
  return child ? knownFields(child, valueAt(value, [key]), rest) : [];
}

/** "expected number to be >=1" in words: "expected a number ≥ 1", "expected at least 2 items". */
function describeBound(issue: z.core.$ZodIssue): string | undefined {
  if (issue.code !== 'too_small' && issue.code !== 'too_big') return undefined;
  const small = issue.code === 'too_small';
  const limit = Number(small ? issue.minimum : issue.maximum);
  const strict = issue.inclusive === false;
  if (issue.origin === 'array' || issue.origin === 'string') {
    const n = strict ? limit + (small ? 1 : -1) : limit;
    return `expected ${small ? 'at least' : 'at most'} ${count(n, issue.origin === 'array' ? 'item' : 'character')}`;
  }
  return `expected a number ${small ? (strict ? '>' : '≥') : strict ? '<' : '≤'} ${limit}`;
}

/** One problem as "field: expected ..., got ...". */
function describeIssue(issue: z.core.$ZodIssue, value: unknown): string {
  const field = formatPath(issue.path);
  const got = describeValue(valueAt(value, issue.path));
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys
        .map((k) => `${formatPath([...issue.path, k])}: unknown field, expected one of ${knownFields(CardSchema as unknown as SchemaNode, value, issue.path).join(', ')}`)
        .join('; ');
    case 'invalid_type': {
      const expected = issue.expected === 'int' ? 'a whole number' : issue.expected;
      return got === 'nothing' ? `${field}: missing, expected ${expected}` : `${field}: expected ${expected}, got ${got}`;
    }
    case 'invalid_union': {
      const options = (issue as { options?: unknown[] }).options;
      if (options) return `${field}: expected one of ${options.map((o) => JSON.stringify(o)).join('|')}, got ${got}`;
      break;
    }
    case 'custom':
      return `${field}: ${issue.message}`;
  }
  const message = describeBound(issue) ?? issue.message.replace(/^Invalid (input|option): /, '');
  return `${field}: ${message}, got ${got}`;
}

/**
 * Validates a parsed card. `source` names the file in messages. Throws E_CARD_INVALID whose
 * message lists every problem as "file: field: expected ..., got ...".
 */
export function parseCard(value: unknown, source = '<card>'): ModelCard {
  const result = CardSchema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => describeIssue(issue, value));
  throw new EdgeInferError('E_CARD_INVALID', `${source}: invalid model card: ${problems.join('; ')}`);
}

/** Parses card JSON text; a JSON syntax error names the file too. */
export function parseCardJson(text: string, source = '<card>'): ModelCard {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new EdgeInferError('E_CARD_INVALID', `${source}: expected a model card as JSON, got text that is not valid JSON (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  return parseCard(value, source);
}
