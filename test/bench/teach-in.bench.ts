// Teach-in on the demo plant: false alerts per healthy hour of each of its six machines with the
// card's threshold and with the machine's own threshold after a teach-in, and, for the three that
// develop a fault in the demo, how many windows after the fault's onset each threshold alerts.
// Each machine is its demo seed: taught on its first TEACH healthy windows, judged on the next
// EVAL_MIN minutes of its healthy run, and on a run of it with its demo fault (if any) from t = 0.
// The anomaly model as the gateway picks it (default policy), alerts as the gateway's default
// rule (3 windows in a row, 300 s cooldown), everything in data time. Both thresholds side by side
// on the same windows in one run.
//   npx tsx test/bench/teach-in.bench.ts            (TEACH=2000 EVAL_MIN=60)
import { MachineSimulator, plantById, profileById } from '../../devices';
import { ModelSession } from '../../runtime/engine';
import { ModelRegistry } from '../../runtime/model';
import { bundledModelsDir } from '../../runtime/paths';
import { predictWindows } from '../../runtime/eval/evaluate';
import { computeFeatures } from '../../runtime/stream/features';
import { AlertTracker } from '../../runtime/stream/alerts';
import { TEACH_IN_DEFAULTS, deriveThreshold } from '../../runtime/teachin';
import { fmt, machine, table } from './table';

const TEACH = Number(process.env.TEACH ?? 2000);
const EVAL_MIN = Number(process.env.EVAL_MIN ?? 60);
const ALERTS = { consecutive: 3, cooldownS: 300 };

async function main(): Promise<void> {
  const registry = await ModelRegistry.open(bundledModelsDir(), { watch: false });
  const variant = registry.pick('vibration-anomaly');
  await registry.close();
  const card = variant.card;
  const session = await ModelSession.load(variant.file, { backend: 'wasm', threads: 1 });
  const { window, hop, sampleRate } = card.input;
  const hopS = hop! / sampleRate;
  const names = card.input.channels.map((c) => c.name);

  /** The model's scores of a machine's consecutive windows (window, hop as the card says). */
  async function scores(sim: MachineSimulator, count: number): Promise<Float32Array> {
    const out = new Float32Array(count);
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
      outputs.forEach((o, j) => (out[i + j] = o[0]));
    }
    return out;
  }

  /** Raised and repeated alerts of a score series at a threshold; and the first window alerted. */
  function alerts(s: Float32Array, threshold: number): { count: number; first: number | null } {
    const tracker = new AlertTracker(ALERTS);
    let count = 0;
    let first: number | null = null;
    s.forEach((score, i) => {
      const change = tracker.observe('d', score >= threshold, i * hopS * 1000);
      if (change && change.kind !== 'cleared') {
        count++;
        first ??= i;
      }
    });
    return { count, first };
  }

  const plant = plantById('demo');
  const evalWindows = Math.round((EVAL_MIN * 60) / hopS);
  const hours = (evalWindows * hopS) / 3600;
  const rows: Array<Array<string | number>> = [];
  const faultRows: Array<Array<string | number>> = [];
  const cardThreshold = card.output.threshold!;
  for (const m of plant.machines) {
    const profile = profileById(m.profile);
    const healthy = await scores(new MachineSimulator(profile, { seed: m.seed }), TEACH + evalWindows);
    const taught = deriveThreshold(healthy.subarray(0, TEACH), TEACH_IN_DEFAULTS);
    const judged = healthy.subarray(TEACH);
    const before = alerts(judged, cardThreshold).count / hours;
    const after = alerts(judged, taught.threshold).count / hours;
    let over = 0;
    judged.forEach((s) => (over += s >= taught.threshold ? 1 : 0));
    rows.push([m.device, fmt(taught.median), fmt(taught.maxScore), fmt(cardThreshold), fmt(taught.threshold), fmt(before, 1), fmt(after, 1), over]);
    if (m.faults?.length) {
      const onset = Math.ceil(m.faults[0].onsetS / hopS);
      const run = await scores(new MachineSimulator(profile, { seed: m.seed, faults: m.faults }), onset + Math.round(300 / hopS));
      const after1 = (t: number): string => {
        const a = alerts(run.subarray(onset), t);
        return a.first === null ? 'never (5 min)' : String(a.first);
      };
      faultRows.push([m.device, `${m.faults[0].type} from ${m.faults[0].onsetS} s over ${m.faults[0].rampS ?? 0} s`, after1(cardThreshold), after1(taught.threshold)]);
    }
  }
  await session.dispose();
  console.log(`Teach-in on the demo plant: ${variant.id} ${variant.variant}, taught on ${TEACH} healthy windows (${fmt((TEACH * hopS) / 60, 1)} min), judged on the next ${EVAL_MIN} healthy minutes (${evalWindows} windows); quantile ${TEACH_IN_DEFAULTS.quantile}, margin ${TEACH_IN_DEFAULTS.margin}; alerts: ${ALERTS.consecutive} in a row, ${ALERTS.cooldownS} s cooldown`);
  console.log('');
  console.log(table(['machine', 'healthy median', 'highest taught', 'card threshold', 'own threshold', 'false alerts/h, card', 'false alerts/h, own', 'healthy windows over own'], rows));
  console.log('');
  console.log(table(['machine', 'fault (demo)', 'windows from onset to alert, card', 'windows, own'], faultRows));
  console.log('');
  console.log(machine());
}

void main();
