// `edge-infer fine-tune --log <gateway.db> --device D --model M --out <folder> [--apply]`: a device's
// anomaly model fine-tuned on the healthy windows its newest active teach-in recorded in the log,
// and with --apply served to that device on the running gateway (edge-infer device-model set).
import * as path from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { type Command, Option } from 'commander';
import type { BackendChoice } from '../engine';
import { EdgeInferError } from '../errors';
import { FINE_TUNE_DEFAULTS, type FineTuneProgress, fineTune, openLogReadOnly, taughtWindowsOf } from '../finetune';
import { ModelRegistry } from '../model';
import { bundledModelsDir } from '../paths';
import type { DeviceModelStatus } from '../gateway/device-models';
import { deviceModelLine, setDeviceModel } from './device-model';
import { backendOption, wholeNumber } from './options';
import { bytes, print } from './output';
import { login } from './teach-in';

interface FineTuneCliOptions {
  log: string;
  device: string;
  model: string;
  out: string;
  models: string;
  epochs: number;
  minWindows: number;
  backend: BackendChoice;
  apply?: boolean;
  url: string;
  user?: string;
}

/** A progress bar over the epochs on a terminal; nothing in logs. Ctrl-C cancels through `abort`. */
function progressBar(abort: AbortController): { onProgress: (p: FineTuneProgress) => void; stop: () => void } {
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  const bar = process.stderr.isTTY ? new SingleBar({ format: 'fine-tuning [{bar}] epoch {value}/{total}, loss {loss}, {phase} (Ctrl-C cancels)', stream: process.stderr, clearOnComplete: true, hideCursor: true }, Presets.shades_classic) : null;
  let started = false;
  return {
    onProgress(p) {
      if (!bar) return;
      if (!started && p.epochs) {
        bar.start(p.epochs, 0, { loss: '-', phase: p.phase });
        started = true;
      }
      if (started) bar.update(p.epoch ?? bar.getProgress() * bar.getTotal(), { loss: p.loss?.toFixed(4) ?? '-', phase: p.variant ? `${p.phase} ${p.variant}` : p.phase });
    },
    stop() {
      process.removeListener('SIGINT', onSigint);
      bar?.stop();
    },
  };
}

export function registerFineTune(program: Command): void {
  program
    .command('fine-tune')
    .description("fine-tune a device's anomaly model on the healthy windows its teach-in recorded, and write fp32, int8 and FP8 variants")
    .addOption(new Option('--log <file>', "the gateway's SQLite log (read-only)").makeOptionMandatory())
    .addOption(new Option('--device <name>', 'the device taught').makeOptionMandatory())
    .addOption(new Option('--model <id>', 'the anomaly model id').makeOptionMandatory())
    .addOption(new Option('--out <folder>', 'the model folder to write (replaced when it exists)').makeOptionMandatory())
    .addOption(new Option('--models <dir>', 'where the base model is').default(bundledModelsDir(), 'the bundled models'))
    .addOption(new Option('--epochs <n>', 'passes over the windows').argParser(wholeNumber(1, 1000)).default(FINE_TUNE_DEFAULTS.epochs))
    .addOption(new Option('--min-windows <n>', 'fewest recorded windows to fine-tune on').argParser(wholeNumber(10, 5000)).default(FINE_TUNE_DEFAULTS.minWindows))
    .addOption(backendOption())
    .option('--apply', 'then serve the folder to the device on the running gateway (as edge-infer device-model set)')
    .option('--url <url>', "--apply: the gateway's HTTP address", 'http://127.0.0.1:8080')
    .option('--user <user>', '--apply: log in as this user (password from stdin), where the gateway asks for a login')
    .action(async (o: FineTuneCliOptions) => {
      if (!o.apply && o.user !== undefined) throw new EdgeInferError('E_ARGUMENT', 'fine-tune: --user is for --apply');
      const registry = await ModelRegistry.open(o.models, { watch: false });
      let base;
      try {
        const entry = registry.get(o.model);
        base = entry.variants.find((v) => v.precision === 'fp32');
        if (!base) throw new EdgeInferError('E_ARGUMENT', `--model ${o.model}: ${o.models} has no fp32 variant of it to fine-tune from`);
      } finally {
        await registry.close();
      }
      if (base.card.task !== 'anomaly') throw new EdgeInferError('E_ARGUMENT', `--model ${o.model}: a ${base.card.task} model; only anomaly models are fine-tuned`);
      const db = await openLogReadOnly(o.log);
      let set;
      try {
        set = taughtWindowsOf(db, o.device, o.model);
      } finally {
        db.close();
      }
      if (!set) throw new EdgeInferError('E_NOT_FOUND', `${o.log}: no active teach-in baseline of ${o.device} for ${o.model} (teach it in first: edge-infer teach-in start)`);
      if (set.features.length < o.minWindows) throw new EdgeInferError('E_ARGUMENT', `${o.log}: baseline ${set.baselineId} of ${o.device} recorded ${set.features.length} windows, fewer than the ${o.minWindows} a fine-tune needs (teach it in for more windows)`);
      // The password is asked before the training, not after it.
      const session = o.apply ? await login(o, 'fine-tune --apply') : {};
      const abort = new AbortController();
      const bar = progressBar(abort);
      let report;
      try {
        report = await fineTune(
          { device: o.device, model: o.model, base: { file: base.file, card: base.card }, windows: set.features, firstWindowMs: set.firstWindowMs, lastWindowMs: set.lastWindowMs, outDir: o.out, settings: { epochs: o.epochs, minWindows: o.minWindows } },
          { onProgress: bar.onProgress, signal: abort.signal, backend: o.backend },
        );
      } finally {
        bar.stop();
      }
      print(`${path.resolve(o.out)}: ${o.model} fine-tuned for ${o.device} on ${report.windows.used} windows (${report.windows.heldOut} held out), ${report.epochs} epochs`);
      print(`loss        ${report.loss.before.toFixed(4)} → ${report.loss.after.toFixed(4)} (held out ${report.loss.heldOutBefore.toFixed(4)} → ${report.loss.heldOutAfter.toFixed(4)})`);
      print(`held out    median score ${report.heldOutScores.base.median.toPrecision(4)} → ${report.heldOutScores.fineTuned.median.toPrecision(4)}, highest ${report.heldOutScores.base.max.toPrecision(4)} → ${report.heldOutScores.fineTuned.max.toPrecision(4)}`);
      print(`threshold   ${report.threshold.threshold.toPrecision(6)} (quantile ${report.threshold.quantile}, margin ${report.threshold.margin}; the card's ${base.card.output.threshold})`);
      for (const v of report.variants) {
        print(`${v.variant.padEnd(11)} ${v.written ? `written, ${bytes(v.sizeBytes)}, cosine ${v.cosine?.toFixed(4)}, ${v.flagged} of ${report.windows.heldOut} held-out windows flagged` : `not written: ${v.reason}`}`);
      }
      print(`time        ${(report.timeMs / 1000).toFixed(1)} s (training ${(report.trainMs / 1000).toFixed(1)} s), ${bytes(report.peakExtraBytes)} peak extra memory; variants checked on ${report.checkedOn}`);
      if (!o.apply) return;
      let status: DeviceModelStatus;
      try {
        status = await setDeviceModel(o, 'fine-tune --apply', { device: o.device, model: o.model, dir: o.out }, session);
      } catch (err) {
        // The folder is written either way: a gateway that did not take it can be given it again.
        throw new EdgeInferError('E_ARGUMENT', `${(err as Error).message}; the folder is written: edge-infer device-model set --device ${o.device} --model ${o.model} --dir ${path.resolve(o.out)} serves it`);
      }
      print(`serving     ${deviceModelLine(status)}`);
    });
}
