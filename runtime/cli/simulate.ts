// `edge-infer simulate`: samples of a simulated machine, with faults, as JSON lines or CSV; or,
// with --broker, a whole simulated plant published to an MQTT broker.
import { promises as fs } from 'node:fs';
import type { Writable } from 'node:stream';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { type FaultSpec, MACHINE_LABELS, MachineSimulator, type Plant, builtinPlants } from '../../devices';
import { EdgeInferError } from '../errors';
import { PlantPublisher, type PublishStats } from '../stream/plant-publisher';
import { faultOption, resolvePlant, resolveProfile } from './plant';
import { positiveNumber, wholeNumber } from './options';
import { bytes, print, thousands } from './output';

interface SimulateOptions {
  profile: string;
  seed: number;
  seconds?: number;
  stream: string;
  fault?: FaultSpec[];
  format: 'jsonl' | 'csv';
  output?: string;
  broker?: string;
  plant?: string;
  qos?: 0 | 1 | 2;
  speed?: number;
  maxMessages?: number;
}

/** Simulated seconds written to a file or stdout when --seconds is not given. */
const DEFAULT_FILE_SECONDS = 10;

/** Options of the file mode that a plant replaces: the plant says which machines and streams. */
const FILE_ONLY = ['profile', 'seed', 'stream', 'fault', 'format', 'output'];
/** Options that only mean something when publishing. */
const BROKER_ONLY = [
  ['plant', '--plant <id|file>'],
  ['qos', '--qos <n>'],
  ['speed', '--speed <x>'],
  ['maxMessages', '--max-messages <n>'],
] as const;

function speedNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number ≥ 0 (1 = real time, 0 = as fast as the broker takes it)');
  return n;
}

/** Ids of the built-in plants for help and messages; a broken install must not break every command. */
function plantIds(): string {
  try {
    return builtinPlants()
      .map((p) => p.id)
      .join(', ');
  } catch {
    return 'none found';
  }
}

/** A built-in plant id, or a plant JSON file. */
function summary(plant: Plant, url: string, stats: PublishStats, stopped: boolean): string {
  const topics = Object.keys(stats.perTopic).length;
  const rate = stats.wallSeconds > 0 ? stats.messages / stats.wallSeconds : 0;
  const unacked = stats.unacknowledged > 0 ? `, ${thousands(stats.unacknowledged)} not acknowledged` : '';
  return (
    `${stopped ? 'stopped: ' : ''}published ${thousands(stats.messages)} messages (${bytes(stats.bytes)}) on ${topics} topic${topics === 1 ? '' : 's'} ` +
    `of plant '${plant.id}' to ${url}: ${stats.simulatedSeconds.toFixed(1)} s simulated in ${stats.wallSeconds.toFixed(1)} s, ${thousands(rate)} msg/s${unacked}`
  );
}

/** Publishes a plant until --seconds / --max-messages, or until Ctrl-C (a second Ctrl-C quits at once). */
async function publishPlant(opts: SimulateOptions & { broker: string; plant: string }, seconds: number | undefined): Promise<void> {
  const plant = await resolvePlant(opts.plant);
  const publisher = new PlantPublisher(plant, { url: opts.broker, qos: opts.qos, speed: opts.speed ?? 1, seconds, maxMessages: opts.maxMessages });
  await publisher.start();
  let stopped = false;
  const onSignal = (): void => {
    stopped = true;
    void publisher.stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let stats: PublishStats;
  try {
    stats = await publisher.run();
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await publisher.stop();
  }
  print(summary(plant, opts.broker, stats, stopped));
}

async function write(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await new Promise((resolve) => out.once('drain', resolve));
}

/** A file to write to; a path that cannot be written fails here, naming it, before any work. */
async function openOutput(file: string): Promise<Writable> {
  try {
    return (await fs.open(file, 'w')).createWriteStream();
  } catch (err) {
    throw new EdgeInferError('E_ARGUMENT', `${file}: cannot write (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
}

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description('write simulated samples of a machine (vibration, current, temperature) with injected faults')
    .addOption(new Option('--profile <id|file>', 'built-in device profile (pump-motor, fan, compressor) or a profile JSON file').default('pump-motor'))
    .addOption(new Option('--seed <n>', 'the same seed gives the same samples').argParser(wholeNumber(0)).default(1))
    .addOption(new Option('--seconds <s>', `how much signal to write (default ${DEFAULT_FILE_SECONDS}); with --broker, simulated seconds to publish (default: until Ctrl-C)`).argParser(positiveNumber))
    .addOption(new Option('--stream <name>', "which of the profile's streams").default('vibration'))
    .addOption(new Option('--fault <spec>', 'inject a fault: type,onset=<s>,severity=<0..1>,ramp=<s>[,location=outer|inner|ball]; repeatable').argParser(faultOption))
    .addOption(new Option('--format <format>', 'jsonl: one line per published block; csv: one row per sample').choices(['jsonl', 'csv']).default('jsonl'))
    .addOption(new Option('-o, --output <file>', 'write to a file instead of stdout'))
    .addOption(new Option('--broker <url>', 'publish a plant to this MQTT broker (mqtt://host:1883) instead of writing samples').conflicts(FILE_ONLY))
    .addOption(new Option('--plant <id|file>', `with --broker: built-in plant (${plantIds()}) or a plant JSON file`))
    .addOption(new Option('--qos <n>', "with --broker: QoS of every message (default: the plant's)").argParser(wholeNumber(0, 2)))
    .addOption(new Option('--speed <x>', 'with --broker: 1 real time, 10 ten times faster, 0 as fast as the broker acknowledges (default 1)').argParser(speedNumber))
    .addOption(new Option('--max-messages <n>', 'with --broker: stop after this many messages').argParser(wholeNumber(1)))
    .action(async (opts: SimulateOptions, cmd: Command) => {
      if (opts.broker !== undefined) {
        if (opts.plant === undefined) cmd.error(`error: option '--broker <url>' needs --plant <id|file>: the plant says which machines publish (built-in: ${plantIds()})`);
        await publishPlant({ ...opts, broker: opts.broker, plant: opts.plant as string }, opts.seconds);
        return;
      }
      const brokerOnly = BROKER_ONLY.find(([key]) => opts[key] !== undefined);
      if (brokerOnly) cmd.error(`error: option '${brokerOnly[1]}' needs --broker <url>: without a broker, simulate writes the samples of one machine (--profile)`);
      const seconds = opts.seconds ?? DEFAULT_FILE_SECONDS;
      const profile = await resolveProfile(opts.profile);
      const stream = profile.streams.find((s) => s.name === opts.stream);
      if (!stream) throw new EdgeInferError('E_ARGUMENT', `profile '${profile.id}' has no stream '${opts.stream}' (it has ${profile.streams.map((s) => s.name).join(', ')})`);
      const sim = new MachineSimulator(profile, { seed: opts.seed, faults: opts.fault ?? [] });
      const total = Math.round(seconds * stream.sampleRate);
      const block = stream.publish.mode === 'block' ? stream.publish.blockSize : 1;
      const out: Writable = opts.output ? await openOutput(opts.output) : process.stdout;
      const names = stream.channels.map((c) => c.name);
      if (opts.format === 'csv') await write(out, `t,label,severity,${names.join(',')}\n`);
      for (let done = 0; done < total; done += block) {
        const b = sim.next(stream.name, Math.min(block, total - done));
        if (opts.format === 'csv') {
          let text = '';
          for (let i = 0; i < b.labels.length; i++) {
            text += `${(b.t0 + i / b.sampleRate).toFixed(6)},${MACHINE_LABELS[b.labels[i]]},${b.severity[i].toFixed(3)},${names.map((n) => b.channels[n][i].toPrecision(6)).join(',')}\n`;
          }
          await write(out, text);
        } else {
          const mid = Math.floor(b.labels.length / 2);
          await write(out, `${JSON.stringify({
            device: profile.id,
            stream: stream.name,
            t0: Number(b.t0.toFixed(6)),
            sampleRate: b.sampleRate,
            label: MACHINE_LABELS[b.labels[mid]],
            severity: Number(b.severity[mid].toFixed(3)),
            channels: Object.fromEntries(names.map((n) => [n, Array.from(b.channels[n], (v) => Number(v.toPrecision(6)))])),
          })}\n`);
        }
      }
      if (opts.output) await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    });
}
