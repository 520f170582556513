// Teach-in on the demo plant: false alerts per healthy hour of each of its six machines with the
// card's threshold and with the machine's own threshold after a teach-in, and, for the three that
// develop a fault in the demo, how many windows after the fault's onset each threshold alerts.
// Each machine is its demo seed: taught on its first TEACH healthy windows, judged on the next
// EVAL_MIN minutes of its healthy run, and on a run of it with its demo fault (if any) from t = 0.
// The demo gateway's three vibration models as it picks them (default policy; the transformer at
// hop 1024 as the demo runs it), alerts as the gateway's default rule (3 windows in a row, 300 s
// cooldown), everything in data time. Both thresholds side by side on the same windows in one run.
//   npx tsx test/bench/teach-in.bench.ts            (TEACH=2000 EVAL_MIN=60)
import { MachineSimulator, plantById, profileById } from '../../devices';
import { ModelSession } from '../../runtime/engine';
import { type ModelCard, ModelRegistry, interpret } from '../../runtime/model';
import { bundledModelsDir } from '../../runtime/paths';
import { predictWindows } from '../../runtime/eval/evaluate';
import { computeFeatures } from '../../runtime/stream/features';
import { AlertTracker } from '../../runtime/stream/alerts';
import { TEACH_IN_DEFAULTS, deriveThreshold, taughtScore } from '../../runtime/teachin';
import { withThreshold } from '../../runtime/stream/results';
import { fmt, machine, table } from './table';

const TEACH = Number(process.env.TEACH ?? 2000);
const EVAL_MIN = Number(process.env.EVAL_MIN ?? 60);
const ALERTS = { consecutive: 3, cooldownS: 300 };

async function main(): Promise<void> {
  const registry = await ModelRegistry.open(bundledModelsDir(), { watch: false });
  for (const [id, hopOverride] of [['vibration-anomaly', undefined], ['fault-classifier', undefined], ['fault-transformer', 1024]] as const) {
    await benchModel(registry.pick(id), hopOverride);
  }
  await registry.close();
  console.log(machine());
}

async function benchModel(variant: ReturnType<ModelRegistry['pick']>, hopOverride: number | undefined): Promise<void> {
  const card: ModelCard = hopOverride ? { ...variant.card, input: { ...variant.card.input, hop: hopOverride } } : variant.card;
  const session = await ModelSession.load(variant.file, { backend: 'wasm', threads: 1 });
  const { window, hop, sampleRate } = card.input;
  const hopS = hop! / sampleRate;
  const names = card.input.channels.map((c) => c.name);

  /** The model's scores of a machine's consecutive windows (window, hop as the card says). */
  async function scores(sim: MachineSimulator, count: number): Promise<Float32Array[]> {
    const out: Float32Array[] = new Array(count);
    let tail = sim.next('vibration', window! - hop!);
    const BATCH = 256;
    for (let i = 0; i < count; i += BATCH) {
      const features: Float32Array[] = [];
      for (let k = i; k < Math.min(count, i + BATCH); k++) {
        const b = sim.next('vibration', hop!);
        const channels = names.map((n) => {
          const c = new Float32Array(window!);
          c.set(tail.channels[n]);
          c.set(b.channels[n], window! - hop!);
          return c;
        });
        tail = { ...b, channels: Object.fromEntries(names.map((n, j) => [n, channels[j].subarray(hop!)])) };
        features.push(computeFeatures(card.input, channels));
      }
      const outputs = await predictWindows(session, card, features);
      outputs.forEach((o, j) => (out[i + j] = Float32Array.from(o)));
    }
    return out;
  }

  /** Raised and repeated alerts of a series of outputs at a threshold; and the first window alerted. */
  function alerts(s: readonly Float32Array[], threshold: number): { count: number; first: number | null; over: number } {
    const tracker = new AlertTracker(ALERTS);
    const judged = withThreshold(card, threshold);
    let count = 0;
    let over = 0;
    let first: number | null = null;
    s.forEach((o, i) => {
      const anomalous = interpret(judged, o).anomaly;
      if (anomalous) over++;
      const change = tracker.observe('d', anomalous, i * hopS * 1000);
      if (change && change.kind !== 'cleared') {
        count++;
        first ??= i;
      }
    });
    return { count, first, over };
  }
  const taught = (o: Float32Array): number => taughtScore(card, interpret(card, o).score, o);

  const plant = plantById('demo');
  const evalWindows = Math.round((EVAL_MIN * 60) / hopS);
  const hours = (evalWindows * hopS) / 3600;
  const rows: Array<Array<string | number>> = [];
  const faultRows: Array<Array<string | number>> = [];
  const cardThreshold = card.output.threshold!;
  for (const m of plant.machines) {
    const profile = profileById(m.profile);
    const healthy = await scores(new MachineSimulator(profile, { seed: m.seed }), TEACH + evalWindows);
    const derived = deriveThreshold(healthy.slice(0, TEACH).map(taught), TEACH_IN_DEFAULTS);
    // As the gateway caps it: a classifier's threshold is a probability.
    const own = card.task === 'classification' ? Math.min(1, derived.threshold) : derived.threshold;
    const judged = healthy.slice(TEACH);
    const before = alerts(judged, cardThreshold);
    const after = alerts(judged, own);
    rows.push([m.device, fmt(derived.median), fmt(derived.maxScore), fmt(cardThreshold), fmt(own), fmt(before.count / hours, 1), fmt(after.count / hours, 1), before.over, after.over]);
    if (m.faults?.length) {
      const onset = Math.ceil(m.faults[0].onsetS / hopS);
      const run = await scores(new MachineSimulator(profile, { seed: m.seed, faults: m.faults }), onset + Math.round(300 / hopS));
      const after1 = (t: number): string => {
        const a = alerts(run.slice(onset), t);
        return a.first === null ? 'never (5 min)' : String(a.first);
      };
      faultRows.push([m.device, `${m.faults[0].type} from ${m.faults[0].onsetS} s over ${m.faults[0].rampS ?? 0} s`, after1(cardThreshold), after1(own)]);
    }
  }
  await session.dispose();
  console.log(`### ${variant.id} ${variant.variant} (window ${window}, hop ${hop})`);
  console.log('');
  console.log(`Teach-in on the demo plant: ${variant.id} ${variant.variant}, taught on ${TEACH} healthy windows (${fmt((TEACH * hopS) / 60, 1)} min), judged on the next ${EVAL_MIN} healthy minutes (${evalWindows} windows); quantile ${TEACH_IN_DEFAULTS.quantile}, margin ${TEACH_IN_DEFAULTS.margin}; alerts: ${ALERTS.consecutive} in a row, ${ALERTS.cooldownS} s cooldown`);
  console.log('');
  console.log(table(['machine', 'taught median', 'highest taught', 'card threshold', 'own threshold', 'false alerts/h, card', 'false alerts/h, own', 'healthy windows flagged, card', 'flagged, own'], rows));
  console.log('');
  console.log(table(['machine', 'fault (demo)', 'windows from onset to alert, card', 'windows, own'], faultRows));
  console.log('');
}

void main();
