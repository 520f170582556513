// Device profiles: one JSON file per machine type, saying what the machine is (speed, bearing,
// motor, vibration levels, thermal behaviour) and which streams of channels it publishes. The
// simulators, the MQTT publisher and the model builders all configure themselves from it, so it
// is checked strictly and its errors name the file, the field and what was expected.
import { z } from 'zod';
import { jsonCatalog } from './catalog';

const channelName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'expected a channel name: letters, digits, _ . -, starting with a letter or _');
const streamName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'expected a stream name: letters, digits, _ . -, starting with a letter or _');
const positive = z.number().positive();

/** One accelerometer axis: x and y radial (x horizontal, y vertical), z axial. */
const VibrationChannelSchema = z
  .object({
    name: channelName,
    signal: z.literal('vibration'),
    unit: z.enum(['g', 'm/s²']),
    axis: z.enum(['x', 'y', 'z']),
  })
  .strict();

/** Motor phase current (one phase), instantaneous value. */
const CurrentChannelSchema = z.object({ name: channelName, signal: z.literal('current'), unit: z.literal('A') }).strict();

/** Bearing housing temperature. */
const TemperatureChannelSchema = z.object({ name: channelName, signal: z.literal('temperature'), unit: z.literal('°C') }).strict();

/** Shaft speed from a tachometer or the drive. */
const SpeedChannelSchema = z.object({ name: channelName, signal: z.literal('speed'), unit: z.enum(['Hz', 'rpm']) }).strict();

export const ChannelSchema = z.discriminatedUnion('signal', [VibrationChannelSchema, CurrentChannelSchema, TemperatureChannelSchema, SpeedChannelSchema]);
export type DeviceChannel = z.infer<typeof ChannelSchema>;
export type SignalKind = DeviceChannel['signal'];

export const PublishSchema = z.discriminatedUnion('mode', [
  /** Blocks of `blockSize` samples per channel in one message (vibration, current). */
  z.object({ mode: z.literal('block'), blockSize: z.number().int().min(1).max(65536) }).strict(),
  /** One message per sample (slow signals such as temperature). */
  z.object({ mode: z.literal('sample') }).strict(),
]);

export const StreamSchema = z
  .object({
    name: streamName,
    /** Samples per second per channel. */
    sampleRate: positive.max(1_000_000),
    channels: z.array(ChannelSchema).min(1),
    publish: PublishSchema,
  })
  .strict();
export type DeviceStream = z.infer<typeof StreamSchema>;

export const BearingSchema = z
  .object({
    /** Catalogue designation, for people (6205, 6209 ...). */
    designation: z.string().min(1).max(40).optional(),
    /** Number of rolling elements. */
    balls: z.number().int().min(3).max(100),
    ballDiameterMm: positive,
    pitchDiameterMm: positive,
    /** 0 for deep-groove ball bearings. */
    contactAngleDeg: z.number().min(0).max(60).default(0),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.ballDiameterMm >= b.pitchDiameterMm) {
      ctx.addIssue({ code: 'custom', path: ['ballDiameterMm'], message: `the ball diameter (${b.ballDiameterMm} mm) must be smaller than the pitch diameter (${b.pitchDiameterMm} mm)` });
    }
  });
export type BearingGeometry = z.infer<typeof BearingSchema>;

export const ProcessToneSchema = z
  .object({
    /** What makes it, in the plant's words: "vane pass", "blade pass", "lobe pass". */
    name: z.string().min(1).max(40),
    /** Multiple of the shaft speed (impeller vanes, fan blades, rotor lobes). */
    order: positive.max(100),
    /** Peak amplitude in g on the radial axes. */
    amplitudeG: z.number().min(0).max(10),
  })
  .strict();

export const MachineSchema = z
  .object({
    /** Shaft speed at nominal load, Hz. */
    shaftHz: positive.max(500),
    /** Standard deviation of the shaft speed as the load moves (more load, more slip), Hz. */
    shaftSpreadHz: z.number().min(0).max(50),
    mainsHz: z.literal([50, 60]),
    /** Motor pole pairs: the synchronous speed is mainsHz / polePairs. */
    polePairs: z.number().int().min(1).max(12),
    /** Motor rated current, A RMS. */
    ratedCurrentA: positive.max(10_000),
    load: z
      .object({
        /** Typical load as a fraction of rated (0..1.2). */
        nominal: z.number().min(0.05).max(1.2),
        /** Standard deviation of the load around nominal. */
        spread: z.number().min(0).max(0.5),
        /** How quickly the load wanders (seconds; mean-reverting random walk). */
        timeConstantS: positive,
      })
      .strict(),
    bearing: BearingSchema,
    vibration: z
      .object({
        /** Healthy residual 1x vibration velocity, mm/s RMS (ISO 10816 zone A is below ~1.1 to 2.8). */
        healthyMmS: positive.max(50),
        /** 1x vibration velocity of a severe (severity 1) imbalance, mm/s RMS (ISO 10816 zone D). */
        severeMmS: positive.max(100),
        /** Broadband noise floor, g RMS. */
        noiseG: z.number().min(0).max(10),
        /** Structural resonance excited by bearing impacts, Hz (each machine differs by ±15 %). */
        resonanceHz: positive.max(20_000),
        /** Peak acceleration of one bearing-defect impact at severity 1, g. */
        bearingImpactG: z.number().min(0).max(100),
        /** The accelerometer axis that points along gravity (reads a 1 g offset), or none. */
        gravityAxis: z.enum(['x', 'y', 'z', 'none']).default('none'),
        /** Tones the process makes at fixed multiples of the shaft speed. */
        processTones: z.array(ProcessToneSchema).default([]),
      })
      .strict(),
    thermal: z
      .object({
        ambientC: z.number().min(-50).max(80),
        /** Temperature rise over ambient at rated load, °C (steady state). */
        riseAtRatedC: z.number().min(0).max(150),
        /** First-order thermal time constant, s. */
        timeConstantS: positive,
      })
      .strict(),
  })
  .strict()
  .superRefine((m, ctx) => {
    const syncHz = m.mainsHz / m.polePairs;
    if (m.shaftHz >= syncHz) {
      ctx.addIssue({ code: 'custom', path: ['shaftHz'], message: `a motor with ${m.polePairs} pole pair${m.polePairs > 1 ? 's' : ''} on ${m.mainsHz} Hz mains turns below ${round(syncHz)} Hz (its synchronous speed), got ${m.shaftHz}` });
    }
    if (m.vibration.severeMmS <= m.vibration.healthyMmS) {
      ctx.addIssue({ code: 'custom', path: ['vibration', 'severeMmS'], message: `the severe level (${m.vibration.severeMmS} mm/s) must be above the healthy level (${m.vibration.healthyMmS} mm/s)` });
    }
  });

export const DeviceProfileSchema = z
  .object({
    /** Profile id, used on the command line and in topics. */
    id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'expected lowercase letters, digits and -'),
    title: z.string().min(1).max(80),
    description: z.string().min(1),
    machine: MachineSchema,
    streams: z.array(StreamSchema).min(1),
  })
  .strict()
  .superRefine((p, ctx) => {
    const streams = new Map<string, number>();
    const channels = new Map<string, string>();
    p.streams.forEach((s, i) => {
      if (streams.has(s.name)) ctx.addIssue({ code: 'custom', path: ['streams', i, 'name'], message: `stream name '${s.name}' is already used by streams[${streams.get(s.name)}]` });
      else streams.set(s.name, i);
      s.channels.forEach((c, j) => {
        const where = `streams[${i}].channels[${j}]`;
        if (channels.has(c.name)) ctx.addIssue({ code: 'custom', path: ['streams', i, 'channels', j, 'name'], message: `channel name '${c.name}' is already used by ${channels.get(c.name)}` });
        else channels.set(c.name, where);
      });
      // A structural resonance above Nyquist would alias into the band and the bearing signature
      // with it, so a vibration stream must be fast enough to carry it.
      if (s.channels.some((c) => c.signal === 'vibration') && s.sampleRate < 2.5 * p.machine.vibration.resonanceHz) {
        ctx.addIssue({
          code: 'custom',
          path: ['streams', i, 'sampleRate'],
          message: `a vibration stream needs at least 2.5 × the structural resonance (${p.machine.vibration.resonanceHz} Hz), ${2.5 * p.machine.vibration.resonanceHz} samples/s, got ${s.sampleRate}`,
        });
      }
    });
  });

export type DeviceProfile = z.infer<typeof DeviceProfileSchema>;
/** A profile as written in a file, before defaults are filled in. */
export type DeviceProfileInput = z.input<typeof DeviceProfileSchema>;

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

const profiles = jsonCatalog({ schema: DeviceProfileSchema, kind: 'device profile', plural: 'profiles', folder: 'profiles' });

/**
 * Validates a parsed profile. `source` names the file in messages. Throws E_DEVICE_PROFILE whose
 * message lists every problem as "file: field: expected ..., got ...".
 */
export const parseProfile: (value: unknown, source?: string) => DeviceProfile = profiles.parse;
/** Parses profile JSON text; a JSON syntax error names the file too. */
export const parseProfileJson: (text: string, source?: string) => DeviceProfile = profiles.parseJson;
/** Reads and validates a profile file. */
export const loadProfile: (file: string) => Promise<DeviceProfile> = profiles.load;
/** The profiles shipped in devices/profiles/, sorted by id. Each call returns fresh copies. */
export const builtinProfiles: () => DeviceProfile[] = profiles.builtins;
/**
 * The machine types the shipped example models were trained and evaluated on. Any other built-in
 * profile (the mixer) is one they have never seen: it shows what teach-in and fine-tuning do for
 * a machine unlike the training data.
 */
export const TRAINING_PROFILE_IDS: readonly string[] = ['compressor', 'fan', 'pump-motor'];
/** The built-in profiles of TRAINING_PROFILE_IDS, sorted by id. */
export const trainingProfiles = (): DeviceProfile[] => builtinProfiles().filter((p) => TRAINING_PROFILE_IDS.includes(p.id));
/** A built-in profile by id. */
export const profileById: (id: string) => DeviceProfile = profiles.byId;
