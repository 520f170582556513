// Plants: a set of simulated machines (built-in profiles, each with its own seed and faults) and
// how they publish to MQTT. The plant publisher, the demos and the broker tests run them; like
// profiles they are checked strictly and their errors name the file and the field.
import { z } from 'zod';
import { FaultSpecSchema } from './faults';
import { jsonCatalog } from './catalog';
import { type DeviceProfile, builtinProfiles } from './profile';

/** A device id is one topic level: no separators, no wildcards. */
const deviceId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'expected a device id: letters, digits, _ . -, starting with a letter or digit');
const streamName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'expected a stream name: letters, digits, _ . -, starting with a letter or _');

/** Placeholders a topic template may hold. */
export const PLANT_TOPIC_FIELDS = ['plant', 'device', 'profile', 'stream'] as const;

/** Keys of a JSON message beside the channels; a channel may not be called so. */
const JSON_META_KEYS = ['seq', 'timestamp', 'sampleRate'];

export const PlantMachineSchema = z
  .object({
    /** Device id: the {device} level of its topics. */
    device: deviceId,
    /** A built-in device profile id (pump-motor, fan, compressor). */
    profile: z.string().min(1),
    /** Everything random about the machine follows from it. */
    seed: z.number().int().min(0),
    /** Faults that appear (and grow) at given times. */
    faults: z.array(FaultSpecSchema).optional(),
  })
  .strict();

export const PlantPublishSchema = z
  .object({
    /** Topic per device and stream; {plant}, {device}, {profile} and {stream} are filled in. */
    topic: z
      .string()
      .min(1)
      .default('plant/{device}/{stream}')
      .superRefine((t, ctx) => {
        if (/[+#\u0000]/.test(t)) ctx.addIssue({ code: 'custom', message: `a topic to publish on cannot hold + # or NUL, got "${t}"` });
        for (const m of t.matchAll(/\{([^}]*)\}/g)) {
          if (!(PLANT_TOPIC_FIELDS as readonly string[]).includes(m[1])) {
            ctx.addIssue({ code: 'custom', message: `unknown placeholder {${m[1]}}; known: ${PLANT_TOPIC_FIELDS.map((f) => `{${f}}`).join(' ')}` });
          }
        }
        if (!t.includes('{device}')) ctx.addIssue({ code: 'custom', message: `the topic must hold {device} so that every machine has its own topics, got "${t}"` });
      }),
    /** Streams to publish, by name; default every stream of each machine's profile. */
    streams: z.array(streamName).min(1).optional(),
    /**
     * How block streams are encoded: float32 (little-endian, interleaved, after the 16-byte
     * edge-infer header) or json. Per-sample streams always go as one small JSON object each.
     */
    encoding: z.enum(['float32', 'json']).default('float32'),
    qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(1),
  })
  .strict();

export const PlantSchema = z
  .object({
    /** Plant id, used on the command line and in topics. */
    id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'expected lowercase letters, digits and -'),
    title: z.string().min(1).max(80),
    description: z.string().min(1),
    machines: z.array(PlantMachineSchema).min(1),
    publish: PlantPublishSchema,
  })
  .strict()
  .superRefine((plant, ctx) => {
    const profiles = new Map(builtinProfiles().map((p) => [p.id, p]));
    const devices = new Map<string, number>();
    plant.machines.forEach((m, i) => {
      if (devices.has(m.device)) ctx.addIssue({ code: 'custom', path: ['machines', i, 'device'], message: `device '${m.device}' is already used by machines[${devices.get(m.device)}]` });
      else devices.set(m.device, i);
      const profile = profiles.get(m.profile);
      if (!profile) {
        ctx.addIssue({ code: 'custom', path: ['machines', i, 'profile'], message: `unknown device profile '${m.profile}'; known profiles: ${[...profiles.keys()].join(', ')}` });
        return;
      }
      (plant.publish.streams ?? []).forEach((s, j) => {
        if (!profile.streams.some((ps) => ps.name === s)) {
          ctx.addIssue({
            code: 'custom',
            path: ['publish', 'streams', j],
            message: `stream '${s}' is not a stream of profile '${profile.id}' (machines[${i}], '${m.device}'); it has ${profile.streams.map((ps) => ps.name).join(', ')}`,
          });
        }
      });
      for (const s of publishedStreams(profile, plant.publish.streams)) {
        // A per-sample message puts the channels beside seq and timestamp.
        const clash = s.publish.mode === 'sample' ? s.channels.find((c) => JSON_META_KEYS.includes(c.name)) : undefined;
        if (clash) ctx.addIssue({ code: 'custom', path: ['machines', i, 'profile'], message: `channel '${clash.name}' of profile '${profile.id}' would clash with a JSON message field (${JSON_META_KEYS.join(', ')})` });
      }
    });
    const streamCount = new Set(plant.machines.flatMap((m) => (profiles.has(m.profile) ? publishedStreams(profiles.get(m.profile) as DeviceProfile, plant.publish.streams).map((s) => s.name) : []))).size;
    if (streamCount > 1 && !plant.publish.topic.includes('{stream}')) {
      ctx.addIssue({ code: 'custom', path: ['publish', 'topic'], message: `the topic must hold {stream} when more than one stream is published, got "${plant.publish.topic}"` });
    }
  });

export type Plant = z.infer<typeof PlantSchema>;
export type PlantMachine = z.infer<typeof PlantMachineSchema>;
/** A plant as written in a file, before defaults are filled in. */
export type PlantInput = z.input<typeof PlantSchema>;

/** The streams of a profile that a plant publishes, in profile order. */
export function publishedStreams(profile: DeviceProfile, streams: readonly string[] | undefined): DeviceProfile['streams'] {
  return streams ? profile.streams.filter((s) => streams.includes(s.name)) : profile.streams;
}

/** The topic of one device's stream. */
export function plantTopic(plant: Plant, machine: PlantMachine, stream: string): string {
  const values: Record<(typeof PLANT_TOPIC_FIELDS)[number], string> = { plant: plant.id, device: machine.device, profile: machine.profile, stream };
  return plant.publish.topic.replace(/\{(plant|device|profile|stream)\}/g, (_, k: keyof typeof values) => values[k]);
}

const plants = jsonCatalog({ schema: PlantSchema, kind: 'plant', plural: 'plants', folder: 'plants' });

/**
 * Validates a parsed plant. `source` names the file in messages. Throws E_DEVICE_PROFILE whose
 * message lists every problem as "file: field: expected ..., got ...".
 */
export const parsePlant: (value: unknown, source?: string) => Plant = plants.parse;
/** Parses plant JSON text; a JSON syntax error names the file too. */
export const parsePlantJson: (text: string, source?: string) => Plant = plants.parseJson;
/** Reads and validates a plant file. */
export const loadPlant: (file: string) => Promise<Plant> = plants.load;
/** The plants shipped in devices/plants/, sorted by id. Each call returns fresh copies. */
export const builtinPlants: () => Plant[] = plants.builtins;
/** A built-in plant by id. */
export const plantById: (id: string) => Plant = plants.byId;
