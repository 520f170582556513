// Fine-tuning the anomaly autoencoder on a machine's own healthy windows: on the mixer (a machine
// type no shipped model learned) and on the six demo machines. Per machine: TEACH consecutive
// healthy windows are fine-tuned on (fineTune: 80 % trained, 20 % held out for the threshold);
// the next EVAL healthy windows and FAULT windows of each of a bearing (outer race), imbalance and
// misalignment fault at moderate severity (0.35, from t = 0) of the same machine are scored by
// the shipped fp32 model and by the fine-tuned fp32, int8 and fp8-e4m3: ROC AUC, healthy windows
// flagged at each model's threshold, faults detected. Time and extra peak memory of the
// fine-tune. Every model on the same windows, in one run. Then what recording a teach-in's
// windows writes to disk (write_bytes of /proc/self/io) per byte of features kept, grouped as the
// recorder does against one transaction per window, side by side.
// Last, a fresh `edge-infer fine-tune` command (its own process, as an operator runs it) with the
// variants checked on onnxruntime-node and on onnxruntime-web's WASM, alternated: the peak extra
// memory it prints, its whole peak resident memory, and its time.
//   npx tsx test/bench/fine-tune.bench.ts            (TEACH=2000 EVAL=400 FAULT=200; PART=recorder or PART=command for that table alone; needs `npm run build`)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, promises as fs, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type DeviceProfile, type FaultSpec, plantById, profileById } from '../../devices';
import { ModelSession } from '../../runtime/engine';
import { predictWindows, rocAuc } from '../../runtime/eval';
import { FINE_TUNE_DEFAULTS, TAUGHT_WINDOWS_GROUP, TaughtWindows, fineTune } from '../../runtime/finetune';
import { ResultStore } from '../../runtime/store';
import { type ModelCard, ModelRegistry, parseCard } from '../../runtime/model';
import { bundledModelsDir } from '../../runtime/paths';
import { loadOptionsFor } from '../../runtime/quant';
import { logWithTeachIn, machineWindows } from '../helpers/machine-windows';
import { fmt, machine, table } from './table';

const TEACH = Number(process.env.TEACH ?? 2000);
const EVAL = Number(process.env.EVAL ?? 400);
const FAULT = Number(process.env.FAULT ?? 200);
// The low end of the "moderate" faults the example models are tested on (MODERATE, 0.25–0.45).
const SEVERITY = 0.25;
const FAULTS: FaultSpec[] = [
  { type: 'bearing', location: 'outer', onsetS: 0, severity: SEVERITY },
  { type: 'imbalance', onsetS: 0, severity: SEVERITY },
  { type: 'misalignment', onsetS: 0, severity: SEVERITY },
];
const VARIANTS = ['fp32', 'int8', 'fp8-e4m3'] as const;

const dir = path.join(bundledModelsDir(), 'vibration-anomaly');
const baseFile = path.join(dir, 'vibration-anomaly.fp32.onnx');
const card: ModelCard = parseCard(JSON.parse(readFileSync(path.join(dir, 'vibration-anomaly.fp32.model.json'), 'utf8')), 'card');

async function scores(file: string, c: ModelCard, windows: Float32Array[]): Promise<number[]> {
  const session = await ModelSession.load(file, { backend: 'wasm', threads: 1, ...loadOptionsFor(c.precision, 'fast') });
  const out = await predictWindows(session, c, windows);
  await session.dispose();
  return out.map((o) => o[0]);
}

interface Judged { auc: number; flagged: number; detected: number }

function judge(healthy: number[], faulty: number[], threshold: number): Judged {
  const auc = rocAuc([...healthy, ...faulty], [...healthy.map(() => false), ...faulty.map(() => true)]);
  return { auc, flagged: healthy.filter((s) => s >= threshold).length, detected: faulty.filter((s) => s >= threshold).length / faulty.length };
}

const writeBytes = (): number => Number(/^write_bytes: (\d+)/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);

/** Bytes written to disk per feature byte kept, for TEACH windows recorded in groups of `group`, in a real log file (sync as given). */
async function recorderWrites(windows: Float32Array[], group: number, sync: 'full' | 'normal'): Promise<{ ratio: number; transactions: number; ms: number }> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-recorder-bench-'));
  const store = ResultStore.open({ path: path.join(tmp, 'log.db'), sync });
  const baselines = store.baselines();
  const row = baselines.start({ device: 'mixer-1', model: card.id, startedMs: 0, startedBy: null, targetWindows: windows.length, targetMinutes: null, quantile: 0.999, margin: 1, cardThreshold: 11.19 });
  const recorder = new TaughtWindows(baselines.db, { group });
  const before = writeBytes();
  const t0 = performance.now();
  windows.forEach((w, i) => recorder.add(row.id, i * 200, w));
  recorder.flush();
  const ms = performance.now() - t0;
  await store.close();
  const written = writeBytes() - before;
  rmSync(tmp, { recursive: true, force: true });
  return { ratio: written / recorder.stats.bytes, transactions: recorder.stats.transactions, ms };
}

async function recorderTable(): Promise<void> {
  const windows = machineWindows(profileById('mixer'), card, { seed: 901, count: TEACH }).features;
  const rows: Array<Array<string | number>> = [];
  for (const sync of ['normal', 'full'] as const) {
    const one = await recorderWrites(windows, 1, sync);
    const grouped = await recorderWrites(windows, TAUGHT_WINDOWS_GROUP, sync);
    rows.push([sync, fmt(one.ratio, 2), one.transactions, fmt(one.ms, 0), fmt(grouped.ratio, 2), grouped.transactions, fmt(grouped.ms, 0), fmt(one.ratio / grouped.ratio, 1)]);
  }
  console.log(`Recording ${TEACH} taught windows (${card.input.channels.length} × 64 float32 features, ${(windows[0].byteLength * TEACH / 2 ** 20).toFixed(2)} MiB) into a fresh log: bytes written to disk (write_bytes) per feature byte kept`);
  console.log('');
  console.log(table(['sync', 'one per window: written / kept', 'transactions', 'ms', `groups of ${TAUGHT_WINDOWS_GROUP}: written / kept`, 'transactions', 'ms', 'bytes written, one per window / grouped'], rows));
  console.log('');
}

/** Fresh `edge-infer fine-tune` processes on a log whose teach-in of the mixer recorded TEACH windows, checking on each backend in turn. */
async function commandTable(): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-finetune-command-'));
  const log = path.join(tmp, 'gateway.db');
  await logWithTeachIn(log, 'mixer-1', profileById('mixer'), card, { seed: 901, count: TEACH, t0Ms: Date.UTC(2026, 11, 7) });
  // The child's own peak resident memory as it exits: VmHWM of its address space (getrusage's
  // maxRSS would carry this process's size over from the fork).
  const preload = path.join(tmp, 'peak.cjs');
  writeFileSync(preload, "process.on('exit', () => process.stderr.write(`VmHWM ${/VmHWM:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]}\\n`));\n");
  const bin = path.join(__dirname, '..', '..', 'bin', 'edge-infer.js');
  const rows: Array<Array<string | number>> = [];
  const ROUNDS = 3;
  for (let round = 0; round < ROUNDS; round++) {
    for (const backend of ['native', 'wasm']) {
      const out = path.join(tmp, `out-${backend}`);
      const t0 = performance.now();
      const r = spawnSync(process.execPath, ['--require', preload, bin, 'fine-tune', '--log', log, '--device', 'mixer-1', '--model', card.id, '--out', out, '--backend', backend], { encoding: 'utf8' });
      const s = (performance.now() - t0) / 1000;
      if (r.status !== 0) throw new Error(`edge-infer fine-tune --backend ${backend} failed: ${r.stderr}`);
      const printed = /([\d.]+) (k?B|MB|GB) peak extra memory/.exec(r.stdout);
      const unit = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 }[printed![2] as 'B'];
      const extraMiB = (Number(printed![1]) * unit) / 2 ** 20;
      // The training thread runs the preload too and reports first: the process's is the highest.
      const peakMiB = Math.max(...[...r.stderr.matchAll(/VmHWM (\d+)/g)].map((m) => Number(m[1]))) / 1024;
      const written = (r.stdout.match(/ written, /g) ?? []).length;
      rows.push([round + 1, backend, fmt(extraMiB, 0), fmt(extraMiB / 200, 2), fmt(peakMiB, 0), fmt(s, 1), `${written} of 3`]);
      rmSync(out, { recursive: true, force: true });
    }
  }
  rmSync(tmp, { recursive: true, force: true });
  console.log(`A fresh \`edge-infer fine-tune\` of the mixer's ${TEACH} taught windows, the variants checked on each backend (--backend), alternated`);
  console.log('');
  console.log(table(['round', 'checked on', 'peak extra MiB (printed)', 'extra / 200 MiB goal', "process's peak resident MiB", 'command s', 'variants written'], rows));
  console.log('');
}

async function main(): Promise<void> {
  if (process.env.PART === 'recorder' || process.env.PART === 'command') {
    await (process.env.PART === 'recorder' ? recorderTable() : commandTable());
    console.log(machine());
    return;
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-finetune-bench-'));
  const plant = plantById('demo');
  const machines: Array<{ device: string; profile: DeviceProfile; seed: number }> = [
    { device: 'mixer-1 (unseen)', profile: profileById('mixer'), seed: 901 },
    ...plant.machines.map((m) => ({ device: m.device, profile: profileById(m.profile), seed: m.seed })),
  ];
  const aucRows: Array<Array<string | number>> = [];
  const alarmRows: Array<Array<string | number>> = [];
  const costRows: Array<Array<string | number>> = [];
  for (const m of machines) {
    const run = machineWindows(m.profile, card, { seed: m.seed, count: TEACH + EVAL });
    const teach = run.features.slice(0, TEACH);
    const healthy = run.features.slice(TEACH);
    const faulty = FAULTS.flatMap((f, i) => machineWindows(m.profile, card, { seed: m.seed + 1000 * (i + 1), count: FAULT, skip: 20, faults: [f] }).features);
    const out = path.join(tmp, m.profile.id + m.seed);
    const report = await fineTune({ device: m.device, model: card.id, base: { file: baseFile, card }, windows: teach, firstWindowMs: run.endMs[0], lastWindowMs: run.endMs[TEACH - 1], outDir: out });
    const base = judge(await scores(baseFile, card, healthy), await scores(baseFile, card, faulty), card.output.threshold!);
    const registry = await ModelRegistry.open(out, { watch: false });
    const tuned: Record<string, Judged | undefined> = {};
    for (const v of VARIANTS) {
      const entry = registry.get(card.id).variants.find((x) => x.variant === v);
      if (entry) tuned[v] = judge(await scores(entry.file, entry.card, healthy), await scores(entry.file, entry.card, faulty), entry.card.output.threshold!);
    }
    await registry.close();
    const a = (j: Judged | undefined): string => (j ? fmt(j.auc, 4) : 'not written');
    const fp8Gap = tuned['fp8-e4m3'] && tuned.fp32 ? fmt(tuned['fp8-e4m3'].auc - tuned.fp32.auc, 4) : '-';
    aucRows.push([m.device, a(base), a(tuned.fp32), a(tuned.int8), a(tuned['fp8-e4m3']), fp8Gap, tuned.fp32 ? fmt(tuned.fp32.auc - base.auc, 4) : '-']);
    const flags = (j: Judged | undefined): string => (j ? `${j.flagged} / ${fmt(j.detected * 100, 1)} %` : '-');
    alarmRows.push([m.device, fmt(card.output.threshold!, 2), flags(base), fmt(report.threshold.threshold, 2), flags(tuned.fp32), flags(tuned.int8), flags(tuned['fp8-e4m3'])]);
    costRows.push([m.device, fmt(report.heldOutScores.base.median, 2), fmt(report.heldOutScores.fineTuned.median, 2), fmt(report.loss.heldOutBefore, 3), fmt(report.loss.heldOutAfter, 3), fmt(report.timeMs / 1000, 1), fmt(report.trainMs / 1000, 1), fmt(report.timeMs / 60_000, 2), fmt(report.peakExtraBytes / 2 ** 20, 0), fmt(report.peakExtraBytes / (200 * 2 ** 20), 2)]);
    console.error(`${m.device}: done (${(report.timeMs / 1000).toFixed(1)} s)`);
  }
  await fs.rm(tmp, { recursive: true, force: true });
  await recorderTable();
  await commandTable();
  console.log(`Fine-tune of vibration-anomaly on ${TEACH} healthy windows per machine (${Math.round(TEACH * 0.8)} trained, ${Math.round(TEACH * 0.2)} held out; ${FINE_TUNE_DEFAULTS.epochs} epochs, batch ${FINE_TUNE_DEFAULTS.batchSize}); judged on the next ${EVAL} healthy windows and ${FAULT} windows of each of a bearing (outer), imbalance and misalignment fault at severity ${SEVERITY}`);
  console.log('');
  console.log(table(['machine', 'ROC AUC shipped fp32', 'fine-tuned fp32', 'fine-tuned int8', 'fine-tuned fp8-e4m3', 'fp8 − fp32', 'fine-tuned fp32 − shipped'], aucRows));
  console.log('');
  console.log(table(['machine', 'card threshold', `shipped: healthy flagged (of ${EVAL}) / faults detected`, 'fine-tuned threshold', 'fp32', 'int8', 'fp8-e4m3'], alarmRows));
  console.log('');
  console.log(table(['machine', 'held-out median score, shipped', 'fine-tuned', 'held-out loss, shipped', 'fine-tuned', 'fine-tune s', 'training s', 'time / 60 s goal', 'extra peak MiB', 'memory / 200 MiB goal'], costRows));
  console.log('');
  console.log(machine());
}

void main();
