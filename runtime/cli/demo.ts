// `edge-infer demo` (what `npm start` runs): a simulated pump develops a fault while its vibration
// streams, in real time, through every example model; the results print as they come.
import { type Command, Option } from 'commander';
import { type DeviceProfile, type DeviceStream, type FaultSpec, MachineSimulator } from '../../devices';
import { type BackendChoice, ModelSession } from '../engine';
import { EdgeInferError } from '../errors';
import { type Interpretation, ModelRegistry, type VariantEntry, interpretOutputs, windowFeeds } from '../model';
import { bundledModelsDir } from '../paths';
import { SlidingWindow, computeFeatures } from '../stream';
import { backendOption, positiveNumber, threadsOption, wholeNumber } from './options';
import { print } from './output';
import { faultOption, resolveProfile } from './plant';

interface DemoOptions {
  seconds: number;
  speed: number;
  profile: string;
  seed: number;
  fault?: FaultSpec[];
  models: string;
  policy: string;
  every: number;
  backend: BackendChoice;
  threads: number;
}

interface LiveModel {
  variant: VariantEntry;
  session: ModelSession;
  slider: SlidingWindow;
  latest?: Interpretation;
  windows: number;
  alerts: number;
  firstAlertS?: number;
  totalMs: number;
}

const tty = process.stdout.isTTY;
const paint = (code: number, text: string): string => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function describe(m: LiveModel): string {
  const r = m.latest;
  if (!r) return `${m.variant.id} …`.padEnd(34);
  const text = m.variant.card.task === 'anomaly'
    ? `${m.variant.id} ${r.score.toFixed(2).padStart(6)} ${r.anomaly ? 'ALERT' : 'ok   '}`
    : `${m.variant.id} ${String(r.label).padEnd(12)} ${(r.score * 100).toFixed(0).padStart(3)} %`;
  return paint(r.anomaly ? 31 : 32, text.padEnd(34));
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('stream a simulated machine that develops a fault through the example models, live')
    .addOption(new Option('--seconds <s>', 'simulated time to run').argParser(positiveNumber).default(45))
    .addOption(new Option('--speed <x>', 'how much faster than real time').argParser(positiveNumber).default(1))
    .addOption(new Option('--profile <id|file>', 'device profile of the machine').default('pump-motor'))
    .addOption(new Option('--seed <n>', 'seed of the machine').argParser(wholeNumber(0)).default(7))
    .addOption(new Option('--fault <spec>', 'fault to inject: type,onset=<s>,severity=<0..1>,ramp=<s>[,location=...] (default: an outer-race bearing fault from 12 s)').argParser(faultOption))
    .addOption(new Option('--models <dir>', 'models directory').default(bundledModelsDir()))
    .addOption(new Option('--policy <policy>', 'which variant of each model: fp32, int8, smallest, smallest-within:<points>, ...').default('smallest-within:1'))
    .addOption(new Option('--every <s>', 'seconds between printed lines').argParser(positiveNumber).default(0.5))
    .addOption(backendOption())
    .addOption(threadsOption())
    .action(async (opts: DemoOptions) => {
      const profile = await resolveProfile(opts.profile);
      const faults = opts.fault ?? [{ type: 'bearing', location: 'outer', onsetS: 12, severity: 0.7, rampS: 20 }];
      const registry = await ModelRegistry.open(opts.models, { watch: false });
      const stream = profile.streams.find((s) => s.name === 'vibration') ?? profile.streams[0];
      const live: LiveModel[] = [];
      // Sessions already loaded are released whatever fails later, a load or the run itself.
      const release = async (): Promise<void> => {
        for (const m of live) await m.session.dispose();
      };
      try {
        for (const model of registry.models()) {
          const variant = registry.pick(model.id, opts.policy);
          const names = variant.card.input.channels.map((c) => c.name);
          // Only models that read this machine's vibration stream, at its sample rate, can follow it.
          if (!names.every((n) => stream.channels.some((c) => c.name === n)) || variant.card.input.sampleRate !== stream.sampleRate) continue;
          const session = await ModelSession.load(variant.file, { backend: opts.backend, threads: opts.threads });
          const { window, hop } = variant.card.input;
          live.push({ variant, session, slider: new SlidingWindow(names.length, window, hop), windows: 0, alerts: 0, totalMs: 0 });
        }
      } catch (err) {
        await release();
        throw err;
      } finally {
        await registry.close();
      }
      if (live.length === 0) throw new EdgeInferError('E_REGISTRY', `no model in ${opts.models} reads the '${stream.name}' stream of '${profile.id}'`);

      try {
        await run(opts, profile, stream, faults, live);
      } finally {
        await release();
      }
    });
}

/** Streams the machine through the live models and prints as it goes. */
async function run(opts: DemoOptions, profile: DeviceProfile, stream: DeviceStream, faults: FaultSpec[], live: LiveModel[]): Promise<void> {
    const sim = new MachineSimulator(profile, { seed: opts.seed, faults });
    const block = stream.publish.mode === 'block' ? stream.publish.blockSize : Math.round(stream.sampleRate / 10);
    print(`${profile.title} (${profile.id}) at ${stream.sampleRate} Hz, ${faults.map((f) => `${f.type}${f.location ? ` (${f.location} race)` : ''} from ${f.onsetS} s`).join(', ') || 'no fault'}`);
    print(`models: ${live.map((m) => `${m.variant.id} [${m.variant.variant}, ${m.session.backend}]`).join(', ')}\n`);
    const start = performance.now();
    let nextPrint = 0;
    for (let t = 0; t < opts.seconds; ) {
      const b = sim.next(stream.name, block);
      t = b.t0 + block / stream.sampleRate;
      for (const m of live) {
        const channels = m.variant.card.input.channels.map((c) => b.channels[c.name]);
        const windows = m.slider.push(channels);
        if (windows.length === 0) continue;
        const outcomes = await m.session.runWindows(windows.map((w) => windowFeeds(m.variant.card.input, computeFeatures(m.variant.card.input, w.channels))));
        for (const o of outcomes) {
          if (!o.ok) throw o.error;
          m.latest = interpretOutputs(m.variant.card, o.outputs);
          m.windows++;
          m.totalMs += o.ms / o.batch;
          if (m.latest.anomaly) {
            m.alerts++;
            m.firstAlertS ??= t;
          }
        }
      }
      if (t >= nextPrint) {
        nextPrint += opts.every;
        const truth = sim.labelAt(t);
        const truthText = truth.label === 'normal' ? 'normal' : `${truth.label} ${truth.severity.toFixed(2)}`;
        print(`${t.toFixed(1).padStart(6)} s  truth ${truthText.padEnd(16)} │ ${live.map(describe).join(' │ ')}`);
      }
      // Pace to the simulated clock so the stream arrives as a live machine's would.
      const ahead = (t * 1000) / opts.speed - (performance.now() - start);
      if (ahead > 0) await sleep(ahead);
    }
    print('');
    const onset = Math.min(...faults.map((f) => f.onsetS));
    for (const m of live) {
      const detected = m.firstAlertS === undefined ? 'never alerted' : `first alert at ${m.firstAlertS.toFixed(1)} s${Number.isFinite(onset) ? ` (${(m.firstAlertS - onset).toFixed(1)} s after onset)` : ''}`;
      print(`${m.variant.id}: ${m.windows} windows, ${(m.totalMs / Math.max(1, m.windows)).toFixed(2)} ms per window, ${m.alerts} alerts, ${detected}`);
    }
}
