// The gateway's configuration file (YAML or JSON), checked field by field: a bad config stops
// the gateway with one line that names the file and the field.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { EdgeInferError } from '../errors';
import { formatPath } from '../issues';
import { bundledModelsDir } from '../paths';
import { parsePublicKey } from '../hotswap/signature';
import { parsePasswordHash } from '../serve/passwords';
import { DecoderConfigSchema } from '../stream/decoders';
import { parseTopicPattern } from '../stream/topic';

const qos = z.union([z.literal(0), z.literal(1), z.literal(2)]);
const port = z.number().int().min(0).max(65535);

const TopicSchema = z.string().min(1).superRefine((t, ctx) => {
  try {
    parseTopicPattern(t);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
  }
});

export const BrokerSchema = z
  .object({
    /** mqtt://host:1883, mqtts://host:8883; ignored when `embedded` is set. */
    url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\//, 'expected a broker URL such as mqtt://localhost:1883').default('mqtt://localhost:1883'),
    /** Start an aedes broker inside the gateway on this port (the one-command setup). */
    embedded: z.object({ port: port.default(1883), host: z.string().default('127.0.0.1') }).strict().optional(),
    protocol: z.union([z.literal(4), z.literal(5)]).default(5),
    clientId: z.string().min(1).max(128).default(`edge-infer-${os.hostname()}`),
    username: z.string().optional(),
    password: z.string().optional(),
    tls: z
      .object({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional(), rejectUnauthorized: z.boolean().default(true) })
      .strict()
      .optional(),
    /** Keep subscriptions and unacknowledged messages across disconnects. */
    persistentSession: z.boolean().default(true),
    sessionExpiryS: z.number().int().min(0).default(86_400),
    keepaliveS: z.number().int().min(1).max(65535).default(30),
    reconnectMs: z.number().int().min(10).default(1000),
  })
  .strict();

/** A dashboard user: the password hash is bcrypt (Node-RED's adminAuth format) or scrypt from `edge-infer hash-password`. */
export const UserSchema = z
  .object({
    user: z.string().min(1, 'expected a user name').max(64).regex(/^[^\s:;,]+$/, 'expected a user name without spaces, : ; or ,'),
    passwordHash: z.string().superRefine((h, ctx) => {
      try {
        parsePasswordHash(h);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
      }
    }),
  })
  .strict();

export const SchedulerSchema = z
  .object({
    maxBatch: z.number().int().min(1).max(1024).default(32),
    maxWaitMs: z.number().min(0).max(10_000).default(5),
    maxQueue: z.number().int().min(1).default(2048),
    /** pause: stop acknowledging so the broker holds the messages; shed-oldest: drop the oldest windows (as dead letters). */
    policy: z.enum(['pause', 'shed-oldest']).default('pause'),
  })
  .strict();

export const PipelineSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'expected letters, digits, _ . -'),
    /** Topic pattern; `{device}` marks the level holding the device id; may start with $share/<group>/. */
    topic: TopicSchema,
    qos: qos.default(1),
    decoder: DecoderConfigSchema,
    /** Model id in the models directory. */
    model: z.string().min(1),
    /** Variant name or policy: fp32, int8, fp8-e4m3, smallest, smallest-within:1, most-accurate. */
    variant: z.string().min(1).default('smallest-within:1'),
    window: z.number().int().min(1).optional(),
    hop: z.number().int().min(1).optional(),
    maxGapS: z.number().positive().optional(),
    results: z.string().min(1).default('edge-infer/results/{device}/{model}'),
    resultsQos: qos.default(1),
    alerts: z
      .object({
        topic: z.string().min(1).default('edge-infer/alerts/{device}/{model}'),
        // The model nodes' defaults too: on the demo plant, 3 windows raise no healthy machine.
        consecutive: z.number().int().min(1).default(3),
        cooldownS: z.number().min(0).default(300),
        /** Normal windows in a row that clear a raised alert (default: consecutive). */
        clearAfter: z.number().int().min(1).optional(),
        /** Longest gap between a device's windows, in data time, that its alert state survives (default 600 s). */
        maxGapS: z.number().positive().optional(),
        threshold: z.number().optional(),
      })
      .strict()
      .default({ topic: 'edge-infer/alerts/{device}/{model}', consecutive: 3, cooldownS: 300 }),
    /** This gateway handles the devices of partition `index` of `count` (per-sample streams across several gateways). */
    partition: z
      .object({
        index: z.number().int().min(0),
        count: z.number().int().min(1),
        /** Device id → partition index: these devices go where the map says, whatever their hash (the same map on every gateway). */
        devices: z.record(z.string(), z.number().int().min(0)).optional(),
      })
      .strict()
      .superRefine((p, ctx) => {
        if (p.index >= p.count) ctx.addIssue({ code: 'custom', path: ['index'], message: `expected a partition below count (${p.count}), got ${p.index}` });
        for (const [device, i] of Object.entries(p.devices ?? {})) {
          // A device id is one topic level: a name with '/' or a wildcard could never be matched.
          if (device === '' || /[/+#]/.test(device)) ctx.addIssue({ code: 'custom', path: ['devices', device], message: `device '${device}': expected a device id as the topic's {device} level holds it (not empty; no '/', '+' or '#')` });
          else if (i >= p.count) ctx.addIssue({ code: 'custom', path: ['devices', device], message: `device '${device}' is placed in partition ${i}; expected 0 to ${p.count - 1} (count is ${p.count})` });
        }
      })
      .optional(),
    /** Keep every n-th window for calibrating quantized models on this gateway's data (0: none; default 20, the 'sd' profile's 200). */
    recordEvery: z.number().int().min(0).optional(),
    scheduler: SchedulerSchema.optional(),
    /**
     * Most devices followed at once (a new one past it is a dead letter), how long a silent device
     * keeps its partial window, and how far ahead of this gateway's clock its samples may be dated.
     */
    devices: z
      .object({ max: z.number().int().min(1).default(10_000), idleS: z.number().positive().default(600), maxAheadS: z.number().positive().default(86_400) })
      .strict()
      .default({ max: 10_000, idleS: 600, maxAheadS: 86_400 }),
  })
  .strict();

/** An ed25519 public key as PEM (SPKI) or base64 (the 32 raw bytes, or SPKI DER), checked when the config is read. */
const PublicKeySchema = z.string().min(1).superRefine((k, ctx) => {
  try {
    parsePublicKey(k);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
  }
});

/** A topic template with one `{model}` level: the model id goes there. */
const ModelTopicSchema = z
  .string()
  .min(1)
  .refine((t) => t.split('/').filter((l) => l === '{model}').length === 1 && !/[+#]/.test(t) && !t.replace('{model}', '').includes('{'), 'expected a topic with one {model} level and no wildcards, such as edge-infer/models/{model}/update');

/** Model hot-swap: new variants from the models directory or from MQTT, checked, then swapped between batches. */
export const ModelUpdatesSchema = z
  .object({
    /** Where updates are pushed (`{model}`: the model id); false: no MQTT updates. */
    topic: z.union([ModelTopicSchema, z.literal(false)]).default('edge-infer/models/{model}/update'),
    qos: z.union([z.literal(1), z.literal(2)]).default(1),
    /** Where each update's state is published (retained). */
    status: ModelTopicSchema.default('edge-infer/models/{model}/status'),
    /** ed25519 public key: when set, unsigned or wrongly signed updates are refused. */
    publicKey: PublicKeySchema.optional(),
    /** Largest update: MQTT payload, or dropped model file (default 64 MiB). */
    maxBytes: z.number().int().min(1024).default(64 * 1024 * 1024),
    /** Watch the models directory for new or rewritten variants of the served models. */
    watch: z.boolean().default(true),
    /** How often the models directory is looked at; a file is taken once it is the same at two looks. */
    pollMs: z.number().int().min(50).max(60_000).default(500),
    /** Where updates are staged (default: model-updates/ beside the log). */
    staging: z.string().min(1).optional(),
    /** The new variant must agree with the serving one on the newest recorded windows. */
    agreement: z
      .object({
        windows: z.number().int().min(1).max(10_000).default(50),
        /** Fewer recorded windows than this: the update is refused (the check would say nothing). */
        minWindows: z.number().int().min(1).default(10),
        /** Share of windows with the same decision (top-1 label, anomaly verdict), 0..1. */
        minLabelAgreement: z.number().min(0).max(1).default(0.98),
        /** Largest score difference on any window (default: not checked). */
        maxScoreDelta: z.number().min(0).optional(),
      })
      .strict()
      .superRefine((a, ctx) => {
        if (a.minWindows > a.windows) ctx.addIssue({ code: 'custom', path: ['minWindows'], message: `expected at most windows (${a.windows}), got ${a.minWindows}` });
      })
      .default({ windows: 50, minWindows: 10, minLabelAgreement: 0.98 }),
    /** Batches the new variant must serve without throwing or non-finite outputs, else it is rolled back. */
    healthBatches: z.number().int().min(1).max(1000).default(3),
  })
  .strict();

export const GatewayConfigSchema = z
  .object({
    /**
     * How the log writes. 'default': a commit every few milliseconds, each message journaled
     * before its acknowledgement (lowest latency). 'sd': for SD cards and other flash that wears
     * out: one commit per second (storage.batchMs), acknowledgements held until then, and a
     * message journaled only when it is still unfinished a second later (see the README).
     */
    profile: z.enum(['default', 'sd']).default('default'),
    broker: BrokerSchema.default(BrokerSchema.parse({})),
    /** Models directory (default: the example models shipped with edge-infer). */
    models: z.string().min(1).default(bundledModelsDir()),
    engine: z
      .object({ backend: z.enum(['auto', 'wasm', 'native']).default('auto'), threads: z.number().int().min(1).max(64).default(1), weights: z.enum(['compact', 'fast']).default('fast') })
      .strict()
      .default({ backend: 'auto', threads: 1, weights: 'fast' }),
    storage: z
      .object({
        path: z.string().min(1).default('edge-infer.db'),
        sync: z.enum(['full', 'normal', 'off']).default('normal'),
        retention: z.object({ maxAgeDays: z.number().positive().optional(), maxBytes: z.number().int().positive().optional() }).strict().default({ maxAgeDays: 30 }),
        outboxLimit: z.number().int().min(1).default(1_000_000),
        /**
         * Results wait at most this long to share a transaction: the log's part of a result's
         * latency (default: 5 ms; the 'sd' profile's 1000 ms).
         */
        batchMs: z.number().int().min(0).max(10_000).optional(),
      })
      .strict()
      .default({ path: 'edge-infer.db', sync: 'normal', retention: { maxAgeDays: 30 }, outboxLimit: 1_000_000 }),
    /**
     * /health and /metrics. They answer anyone who reaches them, so by default only this machine
     * can (127.0.0.1); `host: 0.0.0.0` (every interface) or one address exposes them on purpose.
     */
    http: z
      .object({
        port: port.default(8080),
        host: z.string().min(1, 'expected an address to listen on, such as 127.0.0.1 or 0.0.0.0').default('127.0.0.1'),
        /**
         * Who may log in to the dashboard. Without users it is open on loopback and refused (403)
         * elsewhere; /health and /metrics answer either way.
         */
        users: z.array(UserSchema).optional(),
      })
      .strict()
      .superRefine((h, ctx) => {
        const names = new Set<string>();
        h.users?.forEach((u, i) => {
          if (names.has(u.user)) ctx.addIssue({ code: 'custom', path: ['users', i, 'user'], message: `user '${u.user}' is listed twice` });
          names.add(u.user);
        });
      })
      .default({ port: 8080, host: '127.0.0.1' }),
    scheduler: SchedulerSchema.default(SchedulerSchema.parse({})),
    /**
     * Worker threads for feature transforms and inference: a number, or 'auto' (one per core
     * but one, at least one). 0 (the default) keeps them on the main thread, beside MQTT and SQLite.
     */
    workers: z
      .union([z.literal('auto'), z.number().int('expected a whole number of threads, or auto').min(0, 'expected 0 (none), a number of threads, or auto').max(64, 'expected at most 64 threads')], {
        error: "expected a number of threads (0: none) or 'auto'",
      })
      .default(0),
    /**
     * Teach-in per device: the quantile of its healthy scores and the margin above it (a multiple
     * of quantile − median), the fewest windows a baseline takes and the most one teach-in keeps.
     */
    teachIn: z
      .object({
        quantile: z.number().gt(0).max(1).default(0.999),
        // Absent: each teach-in takes its rule's default (1 for single windows, 2 for runs of K: teachin/teach-in.ts).
        margin: z.number().min(0).finite().optional(),
        minWindows: z.number().int().min(1).default(100),
        maxWindows: z.number().int().min(1).max(10_000_000).default(100_000),
      })
      .strict()
      .refine((t) => t.maxWindows >= t.minWindows, { message: 'maxWindows must be at least minWindows', path: ['maxWindows'] })
      .default({ quantile: 0.999, minWindows: 100, maxWindows: 100_000 }),
    /**
     * Per-device model variants (a device's own model folder, set through the gateway's API): the
     * most devices one model may serve so (one session each), and the healthy batches a device
     * variant serves on probation.
     */
    deviceModels: z
      .object({
        max: z.number().int().min(1).max(1024).default(32),
        healthBatches: z.number().int().min(1).max(1000).default(3),
      })
      .strict()
      .default({ max: 32, healthBatches: 3 }),
    /** Model hot-swap (absent: the models served are the ones picked at start). */
    modelUpdates: ModelUpdatesSchema.optional(),
    pipelines: z.array(PipelineSchema).min(1, 'expected at least one pipeline'),
    /** Publish a simulated plant on the broker (the one-command demo). */
    simulate: z
      .object({ plant: z.string().default('demo'), speed: z.number().positive().default(1) })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    c.pipelines.forEach((p, i) => {
      if (names.has(p.name)) ctx.addIssue({ code: 'custom', path: ['pipelines', i, 'name'], message: `pipeline name '${p.name}' is used twice` });
      names.add(p.name);
    });
  });

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;

/** Most rows a batch of the 'sd' profile holds before it commits early (a burst): bounds its memory. */
export const SD_BATCH_ROWS = 20_000;

/** How the profile writes the log: the store options it sets. */
export function logWriting(c: Pick<GatewayConfig, 'profile' | 'storage'>): { store: { batchMs: number; batchRows?: number; journal: 'always' | 'when-needed' }; maxDelivering?: number; recordEvery: number } {
  // A pipeline's runs wait for their commit, two at most by default: with a commit a second
  // that would cap it at two batches a second. Here they may wait by the hundred; the writer's
  // batch rows still bound what waits in memory. Recorded windows (calibration data) are the
  // log's largest rows: one in 200 still gives a quantizer thousands a day.
  if (c.profile === 'sd') return { store: { batchMs: c.storage.batchMs ?? 1000, batchRows: SD_BATCH_ROWS, journal: 'when-needed' }, maxDelivering: 256, recordEvery: 200 };
  return { store: { batchMs: c.storage.batchMs ?? 5, journal: 'always' }, recordEvery: 20 };
}
export type PipelineConfig = z.infer<typeof PipelineSchema>;
export type ModelUpdatesConfig = z.infer<typeof ModelUpdatesSchema>;

const fieldPath = (p: readonly PropertyKey[]): string => formatPath(p, '(config)');

/** Validates a parsed config; E_ARGUMENT names the source, the field and what was expected. */
export function parseGatewayConfig(value: unknown, source = '<config>'): GatewayConfig {
  const r = GatewayConfigSchema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more)` : '';
  const msg = issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.map((k) => `'${k}'`).join(', ')}` : issue.message.replace(/^Invalid input: /, '');
  throw new EdgeInferError('E_ARGUMENT', `${source}: ${fieldPath(issue.path)}: ${msg}${more}`);
}

/** Reads a YAML or JSON config file; relative paths in it are taken from the file's folder. */
export async function loadGatewayConfig(file: string): Promise<GatewayConfig> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new EdgeInferError('E_ARGUMENT', `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  let value: unknown;
  try {
    value = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new EdgeInferError('E_ARGUMENT', `${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'} (${(err instanceof Error ? err.message : String(err)).split('\n')[0]})`, { cause: err });
  }
  const config = parseGatewayConfig(value, file);
  const dir = path.dirname(path.resolve(file));
  const resolve = (p: string): string => (path.isAbsolute(p) ? p : path.join(dir, p));
  const models = (value as { models?: unknown })?.models;
  // Certificates and a plant file are files too: a config moved with them keeps working wherever
  // the gateway is started from.
  const tls = config.broker.tls;
  const plant = config.simulate?.plant;
  return {
    ...config,
    broker: tls ? { ...config.broker, tls: { ...tls, ca: tls.ca && resolve(tls.ca), cert: tls.cert && resolve(tls.cert), key: tls.key && resolve(tls.key) } } : config.broker,
    models: typeof models === 'string' ? resolve(models) : config.models,
    storage: { ...config.storage, path: resolve(config.storage.path) },
    modelUpdates: config.modelUpdates?.staging ? { ...config.modelUpdates, staging: resolve(config.modelUpdates.staging) } : config.modelUpdates,
    simulate: config.simulate && plant?.endsWith('.json') ? { ...config.simulate, plant: resolve(plant) } : config.simulate,
  };
}
