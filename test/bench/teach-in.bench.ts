// Teach-in on the demo plant and the unseen mixer: false alerts in the healthy hours after a
// teach-in with the card's threshold, with today's rule (the quantile of single windows, floored
// above the highest) and with the K-run rule (the quantile of each run of K windows' lowest score,
// K the alert's), side by side on the same windows; for the machines with a developing fault, how
// many windows after its onset each threshold alerts; and the anomaly score's ROC AUC (held-out
// healthy windows against the same machine with each fault at moderate severity).
// Each machine is its demo seed (the mixer, seed 401, with a bearing fault growing over 120 s):
// taught on its first TEACH healthy windows, judged on the next HOURS of its healthy run, and on a
// run of it with its fault from t = 0. The K-run rule with margin 1, and with MARGINS (2, the
// default a teach-in takes for K > 1 since this bench, and 3) beside it. Alerts as the gateway's default rule (3 windows in a row,
// 300 s cooldown), everything in data time. The machines run in WORKERS worker threads (one
// machine each at a time): the simulator's rendering is most of the time (about 1.2 of 1.5 ms a
// window on this machine: features 0.24, inference 0.09 in batches of 256), and each machine's
// stream is rendered once and judged by every threshold as it goes, never kept.
//   npx tsx test/bench/teach-in.bench.ts                       (HOURS=24 TEACH=2000 WORKERS=2, anomaly model)
//   HOURS=1 MACHINES=pump-1,mixer-1 npx tsx test/bench/teach-in.bench.ts
//   SEED_OFFSET=1000 WORKERS=7 BUDGET_MIN=45 npx tsx test/bench/teach-in.bench.ts   (other seeds: a held-out check of the margin)
//   MODELS=vibration-anomaly,fault-classifier,fault-transformer npx tsx test/bench/teach-in.bench.ts
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { type FaultSpec, MachineSimulator, plantById, profileById } from '../../devices';
import { ModelSession } from '../../runtime/engine';
import { type ModelCard, ModelRegistry, interpret } from '../../runtime/model';
import { bundledModelsDir } from '../../runtime/paths';
import { MODERATE, predictWindows, rocAuc } from '../../runtime/eval';
import { computeFeatures } from '../../runtime/stream/features';
import { AlertTracker } from '../../runtime/stream/alerts';
import { TEACH_IN_DEFAULTS, deriveThreshold, taughtScore } from '../../runtime/teachin';
import { withThreshold } from '../../runtime/stream/results';
import { fmt, int, machine, table } from './table';

const TEACH = Number(process.env.TEACH ?? 2000);
const HOURS = Number(process.env.HOURS ?? 24);
const WORKERS = Number(process.env.WORKERS ?? 2);
const AUC_WINDOWS = Number(process.env.AUC_WINDOWS ?? 1000);
const MODELS = (process.env.MODELS ?? 'vibration-anomaly').split(',');
/** More margins for the K-run rule, side by side with the default's (MARGINS=2,3: thresholds Q + 2 (Q − median) and Q + 3 (Q − median)). */
const MARGINS = (process.env.MARGINS ?? '2,3').split(',').filter(Boolean).map(Number);
/** Minutes after which each machine stops its healthy hours at the next whole hour and reports what it judged (default: no limit). */
const BUDGET_MIN = Number(process.env.BUDGET_MIN ?? Infinity);
/** Added to every machine's seed: SEED_OFFSET=1000 judges the rule on runs it was not chosen on (the same machines, other noise and drift). */
const SEED_OFFSET = Number(process.env.SEED_OFFSET ?? 0);
const ALERTS = { consecutive: 3, cooldownS: 300 };
/** The transformer at hop 1024, as the demo runs it. */
const HOP_OVERRIDE: Record<string, number> = { 'fault-transformer': 1024 };

interface MachineSpec {
  device: string;
  profile: string;
  seed: number;
  fault?: FaultSpec;
  description: string;
}

/** The demo plant's six machines and the unseen mixer, with a demo-like fault growing over 120 s. */
function machines(): MachineSpec[] {
  const demo = plantById('demo').machines.map((m) => {
    const f = m.faults?.[0];
    return { device: m.device, profile: m.profile, seed: m.seed, fault: f, description: f ? `${f.type} from ${f.onsetS} s over ${f.rampS ?? 0} s` : '' };
  });
  const mixerFault: FaultSpec = { type: 'bearing', location: 'outer', onsetS: 60, rampS: 120, severity: 0.7 };
  const all = [...demo, { device: 'mixer-1', profile: 'mixer', seed: 401, fault: mixerFault, description: 'bearing from 60 s over 120 s (unseen machine)' }];
  for (const m of all) m.seed += SEED_OFFSET;
  const only = process.env.MACHINES?.split(',');
  // The unseen machine and the faulty ones first: a run stopped early has the figures that matter most.
  const order = (m: MachineSpec): number => (m.profile === 'mixer' ? 0 : m.fault ? 1 : 2);
  return (only ? all.filter((m) => only.includes(m.device)) : all).sort((a, b) => order(a) - order(b));
}

interface Verdicts {
  alerts: number;
  flagged: number;
}

interface MachineResult {
  device: string;
  median: number;
  maxScore: number;
  maxRunScore: number;
  card: number;
  today: number;
  runs: number;
  hours: number;
  windows: number;
  healthy: { card: Verdicts; today: Verdicts; runs: Verdicts };
  fault?: { description: string; card: string; today: string; runs: string };
  /** The K-run rule with more margins: its threshold, false alerts in the judged hours, windows from the fault's onset to its alert. */
  sweep: Array<{ margin: number; threshold: number; alerts: number; fault: string | null }>;
  /** The highest 3-run low of the judged healthy hours: any threshold above it raises no alert in them. */
  judgedMaxRunScore: number;
  /** Windows from the fault's onset to its alert at the lowest threshold silent in the judged hours (just above judgedMaxRunScore). */
  faultAtSilent: string | null;
  auc: number | null;
  seconds: number;
}

async function runMachine(modelId: string, m: MachineSpec, stopAtMs: number, progress: (r: MachineResult) => void): Promise<MachineResult> {
  const started = performance.now();
  const registry = await ModelRegistry.open(bundledModelsDir(), { watch: false });
  const variant = registry.pick(modelId);
  const hopOverride = HOP_OVERRIDE[modelId];
  const card: ModelCard = hopOverride ? { ...variant.card, input: { ...variant.card.input, hop: hopOverride } } : variant.card;
  const session = await ModelSession.load(variant.file, { backend: 'wasm', threads: 1 });
  const { window, hop, sampleRate } = card.input;
  const hopS = hop! / sampleRate;
  const names = card.input.channels.map((c) => c.name);
  const profile = profileById(m.profile);
  const BATCH = 256;

  /** Feeds the model's outputs of a machine's consecutive windows (window, hop as the card says) to `each`, batch by batch. */
  const tails = new WeakMap<MachineSimulator, { channels: Record<string, Float32Array> }>();
  async function stream(sim: MachineSimulator, count: number, each: (o: Float32Array, i: number) => void): Promise<void> {
    // A simulator streamed again goes on from its last window's overlap.
    let tail = tails.get(sim) ?? sim.next('vibration', window! - hop!);
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
      outputs.forEach((o, j) => each(Float32Array.from(o), i + j));
    }
    tails.set(sim, tail);
  }

  /** Alerts and flagged windows of one threshold, window by window. */
  function judge(threshold: number): { observe(o: Float32Array, i: number): void; result: Verdicts & { first: number | null } } {
    const tracker = new AlertTracker(ALERTS);
    const judged = withThreshold(card, threshold);
    const result = { alerts: 0, flagged: 0, first: null as number | null };
    return {
      result,
      observe(o, i) {
        const anomalous = interpret(judged, o).anomaly;
        if (anomalous) result.flagged++;
        const change = tracker.observe('d', anomalous, i * hopS * 1000);
        if (change && change.kind !== 'cleared') {
          result.alerts++;
          result.first ??= i;
        }
      },
    };
  }
  const taught = (o: Float32Array): number => taughtScore(card, interpret(card, o).score, o);
  // As the gateway caps it: a classifier's threshold is a probability.
  const capped = (t: number): number => (card.task === 'classification' ? Math.min(1, t) : t);

  const evalWindows = Math.round((HOURS * 3600) / hopS);
  const sim = new MachineSimulator(profile, { seed: m.seed });
  const teach: number[] = [];
  await stream(sim, TEACH, (o) => teach.push(taught(o)));
  const today = deriveThreshold(teach, TEACH_IN_DEFAULTS);
  const runs = deriveThreshold(teach, { ...TEACH_IN_DEFAULTS, consecutive: ALERTS.consecutive });
  const cardThreshold = card.output.threshold!;
  const thresholds: Record<string, number> = { card: cardThreshold, today: capped(today.threshold), runs: capped(runs.threshold) };
  for (const margin of MARGINS) thresholds[`runs×${margin}`] = capped(deriveThreshold(teach, { ...TEACH_IN_DEFAULTS, margin, consecutive: ALERTS.consecutive }).threshold);
  const judgesOf = (): Record<string, ReturnType<typeof judge>> => Object.fromEntries(Object.entries(thresholds).map(([k, t]) => [k, judge(t)]));
  /** The first window i (from 0) that ends K windows in a row at or over t: an alert's first window at threshold t. */
  const firstRun = (scores: number[], t: number): number | null => {
    let inRow = 0;
    for (let i = 0; i < scores.length; i++) {
      inRow = scores[i] >= t ? inRow + 1 : 0;
      if (inRow >= ALERTS.consecutive) return i;
    }
    return null;
  };

  // The short runs first (the fault, the faulty windows of the AUC), the long healthy one last: a
  // run stopped at its deadline still has them.
  let fault: MachineResult['fault'];
  let after: Record<string, ReturnType<typeof judge>> | undefined;
  const faultScores: number[] = [];
  const text = (first: number | null | undefined): string => (first === null || first === undefined ? 'never (5 min)' : String(first));
  if (m.fault) {
    const onset = Math.ceil(m.fault.onsetS / hopS);
    const judged = judgesOf();
    after = judged;
    await stream(new MachineSimulator(profile, { seed: m.seed, faults: [m.fault] }), onset + Math.round(300 / hopS), (o, i) => {
      if (i < onset) return;
      for (const j of Object.values(judged)) j.observe(o, i - onset);
      faultScores.push(interpret(card, o).score);
    });
    fault = { description: m.description, card: text(after.card.result.first), today: text(after.today.result.first), runs: text(after.runs.result.first) };
  }

  // ROC AUC of the anomaly score: held-out healthy windows (the first AUC_WINDOWS after the taught
  // ones) against the same machine (same seed, a fresh run) with each fault type from t = 0 at a
  // moderate severity, in equal shares.
  const faulty: number[] = [];
  if (card.task === 'anomaly') {
    const kinds: FaultSpec[] = [
      { type: 'imbalance', onsetS: 0, severity: 0 },
      { type: 'misalignment', onsetS: 0, severity: 0 },
      { type: 'bearing', location: 'outer', onsetS: 0, severity: 0 },
      { type: 'bearing', location: 'inner', onsetS: 0, severity: 0 },
      { type: 'looseness', onsetS: 0, severity: 0 },
    ];
    const per = Math.ceil(AUC_WINDOWS / kinds.length);
    for (const [k, f] of kinds.entries()) {
      // Severities spread over the moderate range, one per fault type.
      const severity = MODERATE[0] + ((MODERATE[1] - MODERATE[0]) * (k + 0.5)) / kinds.length;
      await stream(new MachineSimulator(profile, { seed: m.seed, faults: [{ ...f, severity }] }), per, (o) => faulty.push(interpret(card, o).score));
    }
  }

  // The same simulator goes on: the judged hours follow the taught windows, as on a gateway.
  const judges = judgesOf();
  const heldOut: number[] = [];
  let judged = 0;
  let judgedMaxRunScore = -Infinity;
  const lastScores: number[] = [];
  const strip = (j: { result: Verdicts }): Verdicts => ({ alerts: j.result.alerts, flagged: j.result.flagged });
  const snapshot = (): MachineResult => ({
    device: m.device, median: today.median, maxScore: today.maxScore, maxRunScore: runs.maxRunScore, card: thresholds.card, today: thresholds.today, runs: thresholds.runs,
    hours: (judged * hopS) / 3600, windows: judged,
    healthy: { card: strip(judges.card), today: strip(judges.today), runs: strip(judges.runs) }, fault,
    sweep: MARGINS.map((margin) => ({ margin, threshold: thresholds[`runs×${margin}`], alerts: judges[`runs×${margin}`].result.alerts, fault: after ? text(after[`runs×${margin}`].result.first) : null })),
    judgedMaxRunScore,
    faultAtSilent: m.fault ? text(firstRun(faultScores, judgedMaxRunScore * (1 + 1e-9) + 1e-12)) : null,
    auc: faulty.length && heldOut.length ? rocAuc([...heldOut, ...faulty], [...heldOut.map(() => false), ...faulty.map(() => true)]) : null,
    seconds: (performance.now() - started) / 1000,
  });
  const hourWindows = Math.round(3600 / hopS);
  // In slices of an hour: each ends with a progress report, and the deadline is looked at between them.
  for (let from = 0; from < evalWindows && Date.now() < stopAtMs; from += hourWindows) {
    await stream(sim, Math.min(hourWindows, evalWindows - from), (o, i) => {
      const score = interpret(card, o).score;
      if (heldOut.length < AUC_WINDOWS) heldOut.push(score);
      for (const j of Object.values(judges)) j.observe(o, from + i);
      lastScores.push(score);
      if (lastScores.length > ALERTS.consecutive) lastScores.shift();
      if (lastScores.length === ALERTS.consecutive) judgedMaxRunScore = Math.max(judgedMaxRunScore, Math.min(...lastScores));
      judged++;
    });
    progress(snapshot());
  }
  await session.dispose();
  await registry.close();
  return snapshot();
}

/** Runs each machine in a worker thread, WORKERS at a time; prints each machine's line as it ends (a long run's partial figures). */
async function runAll(modelId: string, specs: MachineSpec[]): Promise<MachineResult[]> {
  const results: MachineResult[] = [];
  const stopAtMs = Date.now() + BUDGET_MIN * 60_000;
  let next = 0;
  const one = async (): Promise<void> => {
    while (next < specs.length) {
      const m = specs[next++];
      const r = await new Promise<MachineResult>((resolve, reject) => {
        // Node's workers do not take TypeScript: the worker registers tsx's loader first, then runs this file.
        const w = new Worker(`require('tsx/cjs'); require(${JSON.stringify(__filename)});`, { eval: true, workerData: { modelId, machine: m, stopAtMs } });
        w.on('message', (msg: { progress?: MachineResult; done?: MachineResult }) => {
          // Each judged hour's running totals, so a run cut short still says what it saw.
          if (msg.progress) console.error(`# progress ${modelId} ${m.device} ${fmt(msg.progress.hours, 0)} h: ${JSON.stringify(msg.progress)}`);
          if (msg.done) resolve(msg.done);
        });
        w.once('error', reject);
        w.once('exit', (code) => code !== 0 && reject(new Error(`worker for ${m.device} exited with ${code}`)));
      });
      console.error(`# ${modelId} ${m.device}: ${JSON.stringify(r)}`);
      results.push(r);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(WORKERS, specs.length)) }, one));
  return specs.map((m) => results.find((r) => r.device === m.device)!);
}

async function main(): Promise<void> {
  const specs = machines();
  for (const modelId of MODELS) {
    const started = performance.now();
    const results = await runAll(modelId, specs);
    const per = (n: number, r: MachineResult): string => (r.hours ? fmt(n / r.hours, n && n / r.hours < 0.1 ? 3 : 1) : '–');
    const budget = Number.isFinite(BUDGET_MIN) ? ` (or as many whole hours as ${BUDGET_MIN} min allowed: the hours column)` : '';
    console.log(`### ${modelId} (window and hop as the demo runs it)`);
    console.log('');
    console.log(`Taught on ${TEACH} healthy windows, judged on the next ${HOURS} healthy hours per machine${budget}${SEED_OFFSET ? ` (every seed + ${SEED_OFFSET}: runs the margin was not chosen on)` : ''}; quantile ${TEACH_IN_DEFAULTS.quantile}, margin ${TEACH_IN_DEFAULTS.margin}; today's rule: single windows, floored above the highest taught; K-run rule: each run of ${ALERTS.consecutive} windows' lowest score, floored above the highest such; alerts: ${ALERTS.consecutive} in a row, ${ALERTS.cooldownS} s cooldown. ${results.length} machines in ${fmt((performance.now() - started) / 60_000, 1)} min on ${Math.min(WORKERS, results.length)} worker threads.`);
    console.log('');
    console.log(table(
      ['machine', 'healthy hours', 'taught median', 'highest taught', 'highest 3-run low', 'card', 'today', 'K-run', 'false alerts, card', 'today', 'K-run', 'false alerts/h, K-run', 'flagged, card', 'today', 'K-run', 'ROC AUC'],
      results.map((r) => [r.device, fmt(r.hours, r.hours < 10 ? 2 : 0), fmt(r.median), fmt(r.maxScore), fmt(r.maxRunScore), fmt(r.card), fmt(r.today), fmt(r.runs), r.healthy.card.alerts, r.healthy.today.alerts, r.healthy.runs.alerts, per(r.healthy.runs.alerts, r), int(r.healthy.card.flagged), int(r.healthy.today.flagged), int(r.healthy.runs.flagged), r.auc === null ? '–' : r.auc.toFixed(4)]),
    ));
    console.log('');
    if (MARGINS.length) {
      console.log(table(
        ['machine', 'healthy hours', ...MARGINS.flatMap((mg) => [`K-run, margin ${mg}`, 'false alerts', 'windows to alert']), 'highest 3-run low, judged hours', 'windows to alert just above it'],
        results.map((r) => [r.device, fmt(r.hours, r.hours < 10 ? 2 : 0), ...r.sweep.flatMap((w) => [fmt(w.threshold), w.alerts, w.fault ?? '–']), fmt(r.judgedMaxRunScore), r.faultAtSilent ?? '–']),
      ));
      console.log('');
    }
    const faults = results.filter((r) => r.fault);
    if (faults.length) {
      console.log(table(['machine', 'fault', 'windows from onset to alert, card', 'today', 'K-run'], faults.map((r) => [r.device, r.fault!.description, r.fault!.card, r.fault!.today, r.fault!.runs])));
      console.log('');
    }
  }
  console.log(machine());
}

if (isMainThread) {
  void main();
} else {
  const { modelId, machine: m, stopAtMs } = workerData as { modelId: string; machine: MachineSpec; stopAtMs: number };
  void runMachine(modelId, m, stopAtMs, (r) => parentPort!.postMessage({ progress: r })).then((r) => parentPort!.postMessage({ done: r }));
}
