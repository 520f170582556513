// `edge-infer simulate`: samples of a simulated machine, with faults, as JSON lines or CSV.
import { promises as fs } from 'node:fs';
import type { Writable } from 'node:stream';
import { type Command, Option } from 'commander';
import { type FaultSpec, MACHINE_LABELS, MachineSimulator } from '../../devices';
import { EdgeInferError } from '../errors';
import { faultOption, resolveProfile } from './plant';
import { positiveNumber, wholeNumber } from './options';

interface SimulateOptions {
  profile: string;
  seed: number;
  seconds: number;
  stream: string;
  fault?: FaultSpec[];
  format: 'jsonl' | 'csv';
  output?: string;
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
    .addOption(new Option('--seconds <s>', 'how much signal to write').argParser(positiveNumber).default(10))
    .addOption(new Option('--stream <name>', "which of the profile's streams").default('vibration'))
    .addOption(new Option('--fault <spec>', 'inject a fault: type,onset=<s>,severity=<0..1>,ramp=<s>[,location=outer|inner|ball]; repeatable').argParser(faultOption))
    .addOption(new Option('--format <format>', 'jsonl: one line per published block; csv: one row per sample').choices(['jsonl', 'csv']).default('jsonl'))
    .addOption(new Option('-o, --output <file>', 'write to a file instead of stdout'))
    .action(async (opts: SimulateOptions) => {
      const profile = await resolveProfile(opts.profile);
      const stream = profile.streams.find((s) => s.name === opts.stream);
      if (!stream) throw new EdgeInferError('E_ARGUMENT', `profile '${profile.id}' has no stream '${opts.stream}' (it has ${profile.streams.map((s) => s.name).join(', ')})`);
      const sim = new MachineSimulator(profile, { seed: opts.seed, faults: opts.fault ?? [] });
      const total = Math.round(opts.seconds * stream.sampleRate);
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
