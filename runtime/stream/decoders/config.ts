// Decoder configurations: one zod schema per payload format. createDecoder validates with these,
// so a typo in a flow's settings fails when the flow starts, naming the field, not on the first
// message.
import { z } from 'zod';
import { EdgeInferError } from '../../errors';
import { formatPath as pathOf, valueAt } from '../../issues';
import { describeValue } from './fail';

const channelName = z.string().min(1);

/** Channel names in order; duplicates would make two channels collide in DecodedSamples. */
const channelList = z
  .array(channelName)
  .min(1)
  .superRefine((names, ctx) => {
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice !== undefined) ctx.addIssue({ code: 'custom', input: names, message: `channel '${twice}' is named twice` });
  });

const dotPath = z
  .string()
  .min(1)
  .refine((p) => p.split('.').every((s) => s.length > 0), { message: 'expected a dot path like "payload.samples"' });

export const JSON_MAX_BYTES_DEFAULT = 1024 * 1024;

export const JsonDecoderConfigSchema = z.strictObject({
  kind: z.literal('json'),
  /** Dot path to the samples, e.g. 'payload.samples'; default: the whole document. */
  field: dotPath.optional(),
  /** Channel names: required for unnamed data (a number, an array of numbers, rows); selects channels of named data. */
  channels: channelList.optional(),
  /** Dot path (from the document root) to the time of the first sample: ms since the epoch, or an ISO 8601 string; within ±1e15 ms (timestamp.ts). */
  timestampField: dotPath.optional(),
  /** Dot path (from the document root) to the publisher's message number. */
  seqField: dotPath.optional(),
  /** Dot path (from the document root) to the sample rate in Hz. */
  sampleRateField: dotPath.optional(),
  /** Larger payloads are refused before parsing (default 1 MiB). */
  maxBytes: z.number().int().positive().default(JSON_MAX_BYTES_DEFAULT),
});

export const Float32DecoderConfigSchema = z.strictObject({
  kind: z.literal('float32'),
  /** Channel names in the order they appear in the block. */
  channels: channelList,
  /** 'interleaved' (x0 y0 z0 x1 ..., default) or 'planar' (all x, then all y, ...). */
  layout: z.enum(['interleaved', 'planar']).default('interleaved'),
  /** 'none' (default) or 'edge-infer': 16 bytes before the samples: 'EIF1', uint32 LE seq, float64 LE timestamp ms (within ±1e15). */
  header: z.enum(['none', 'edge-infer']).default('none'),
  /** When set, every block must hold exactly this many samples per channel. */
  samplesPerMessage: z.number().int().positive().optional(),
});

export const SparkplugDecoderConfigSchema = z.strictObject({
  kind: z.literal('sparkplug'),
  /** Metric name → channel name. When given, only these metrics become channels; default: every numeric metric, under its own name. */
  channels: z
    .record(z.string().min(1), channelName)
    .superRefine((map, ctx) => {
      const seen = new Map<string, string>();
      for (const [metric, channel] of Object.entries(map)) {
        const other = seen.get(channel);
        if (other !== undefined) ctx.addIssue({ code: 'custom', input: map, message: `metrics '${other}' and '${metric}' both map to channel '${channel}'` });
        seen.set(channel, metric);
      }
    })
    .optional(),
});

export const DecoderConfigSchema = z.discriminatedUnion('kind', [JsonDecoderConfigSchema, Float32DecoderConfigSchema, SparkplugDecoderConfigSchema]);

/** Configurations as written (defaults optional). */
export type JsonDecoderConfig = z.input<typeof JsonDecoderConfigSchema>;
export type Float32DecoderConfig = z.input<typeof Float32DecoderConfigSchema>;
export type SparkplugDecoderConfig = z.input<typeof SparkplugDecoderConfigSchema>;
export type DecoderConfig = JsonDecoderConfig | Float32DecoderConfig | SparkplugDecoderConfig;

/** Configurations after validation, defaults filled in. */
export type ResolvedJsonDecoderConfig = z.output<typeof JsonDecoderConfigSchema>;
export type ResolvedFloat32DecoderConfig = z.output<typeof Float32DecoderConfigSchema>;
export type ResolvedSparkplugDecoderConfig = z.output<typeof SparkplugDecoderConfigSchema>;
export type ResolvedDecoderConfig = z.output<typeof DecoderConfigSchema>;

const SCHEMAS = { json: JsonDecoderConfigSchema, float32: Float32DecoderConfigSchema, sparkplug: SparkplugDecoderConfigSchema } as const;

/** Validates a decoder configuration; E_ARGUMENT lists every problem as "field: expected ..., got ...". */
export function parseDecoderConfig(value: unknown): ResolvedDecoderConfig {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new EdgeInferError('E_ARGUMENT', `decoder config: expected an object like { kind: 'json' }, got ${describeValue(value)}`);
  }
  // The kind picks the schema; checked first so a wrong kind is one clear line, not a union dump.
  const kind = (value as { kind?: unknown }).kind;
  if (typeof kind !== 'string' || !Object.hasOwn(SCHEMAS, kind)) {
    throw new EdgeInferError('E_ARGUMENT', `decoder config: kind: expected one of ${Object.keys(SCHEMAS).map((k) => `'${k}'`).join(', ')}, got ${describeValue(kind)}`);
  }
  const schema = SCHEMAS[kind as keyof typeof SCHEMAS];
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => describeIssue(issue, value, Object.keys(schema.shape)));
  throw new EdgeInferError('E_ARGUMENT', `${kind} decoder config: ${problems.join('; ')}`);
}

/** `channels[1]`, `field` */
const formatPath = (path: readonly PropertyKey[]): string => pathOf(path, '(config)');

function describeIssue(issue: z.core.$ZodIssue, value: unknown, known: string[]): string {
  const field = formatPath(issue.path);
  const got = describeValue(valueAt(value, issue.path));
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => `${formatPath([...issue.path, k])}: unknown field, expected one of ${known.join(', ')}`).join('; ');
    case 'invalid_type':
      return got === 'nothing' ? `${field}: missing, expected ${issue.expected}` : `${field}: expected ${issue.expected === 'int' ? 'a whole number' : issue.expected}, got ${got}`;
    case 'invalid_value':
      return `${field}: expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${got}`;
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      if (issue.origin === 'string') return `${field}: expected a non-empty string, got ${got}`;
      if (issue.origin === 'array') return `${field}: expected at least one name, got an empty list`;
      return `${field}: expected a number ${small ? (issue.inclusive === false ? '>' : '≥') : issue.inclusive === false ? '<' : '≤'} ${Number(small ? issue.minimum : issue.maximum)}, got ${got}`;
    }
    case 'custom':
      return issue.message.startsWith('expected') ? `${field}: ${issue.message}, got ${got}` : `${field}: ${issue.message}`;
    default:
      return `${field}: ${issue.message}, got ${got}`;
  }
}
