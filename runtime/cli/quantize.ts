// `edge-infer quantize <in.onnx> --to ... -o <out.onnx>`: a low-bit variant made on the gateway,
// calibrated on its own data, checked against fp32 before anyone deploys it.
import { promises as fs, constants as fsConstants } from 'node:fs';
import * as path from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { type Command, Option } from 'commander';
import { type BackendChoice, signatureOf } from '../engine';
import { EdgeInferError, isEdgeInferError } from '../errors';
import { type ModelCard, findCard } from '../model';
import { readModelFile } from '../onnx';
import {
  CALIBRATION_METHODS, type CalibrationMethod, type CalibrationSet, type HeldOut, type InputShapes, QUANT_TARGETS, type QuantTarget, type WeightLoading, WEIGHT_LOADINGS,
  loadCalibration, parseCalibrationSource, checkShapes, parseShapeOption, runQuantizeJob, syntheticHeldOut, textReport,
} from '../quant';
import { backendOption, wholeNumber } from './options';
import { print } from './output';

interface QuantizeOptions {
  to: QuantTarget;
  calibrate?: string;
  samples: number;
  method: CalibrationMethod;
  block?: number;
  reduceRange?: boolean;
  output: string;
  html: boolean;
  load: WeightLoading;
  backend: BackendChoice;
  shape: InputShapes;
}

/** Fails now, not after a long calibration, if the output folder cannot be written. */
async function checkWritable(file: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  try {
    await fs.access(dir, fsConstants.W_OK);
  } catch (err) {
    throw new EdgeInferError('E_ARGUMENT', `${file}: cannot write there (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
}

/** A progress bar on a terminal; nothing in logs. Ctrl-C cancels through `abort`. */
function progress(label: string, abort: AbortController): { onProgress: (done: number, total: number) => void; stop: () => void } {
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  const bar = process.stderr.isTTY ? new SingleBar({ format: `${label} [{bar}] {value}/{total} windows, {eta}s left (Ctrl-C cancels)`, stream: process.stderr, clearOnComplete: true, hideCursor: true }, Presets.shades_classic) : null;
  let started = false;
  return {
    onProgress(done, total) {
      if (!bar) return;
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.update(done);
    },
    stop() {
      process.removeListener('SIGINT', onSigint);
      bar?.stop();
    },
  };
}

export function registerQuantize(program: Command): void {
  program
    .command('quantize')
    .description('make an int8 or FP8 variant of a model, calibrated on local data, and check it against fp32')
    .argument('<model>', 'the fp32 .onnx file')
    .addOption(new Option('--to <precision>', 'int8 (static, calibrated), int8-dynamic, fp8-e4m3 or fp8-e5m2 (weight-only)').choices([...QUANT_TARGETS]).makeOptionMandatory())
    .addOption(new Option('--calibrate <source>', 'windows to calibrate and check on: sim[:seed], db:<gateway.db>, or a .jsonl/.json/.csv file (default for int8: sim)'))
    .addOption(new Option('--samples <n>', 'calibration windows').argParser(wholeNumber(1, 1_000_000)).default(1000))
    .addOption(new Option('--method <method>', 'calibration of activation ranges (int8)').choices([...CALIBRATION_METHODS]).default('percentile'))
    .addOption(new Option('--block <n>', 'FP8: one scale per block of n weights along the reduction axis (e.g. 128) instead of per channel').argParser(wholeNumber(2, 1 << 20)))
    .addOption(new Option('--reduce-range', 'int8: weights within ±64, for x86 CPUs without VNNI, whose integer kernels saturate (default: when this machine needs it)'))
    .addOption(new Option('--no-reduce-range', 'int8: full ±127 weights even where the kernels may saturate'))
    .addOption(new Option('-o, --output <file>', 'where to write the quantized .onnx (its card goes next to it)').makeOptionMandatory())
    .addOption(new Option('--no-html', 'skip the HTML report (<output>.report.html)'))
    .addOption(new Option('--load <mode>', 'how the variant is loaded for the latency check: fast (weights dequantized once) or compact (kept at 1 byte)').choices([...WEIGHT_LOADINGS]).default('fast'))
    .addOption(new Option('--shape <name=dims>', 'the whole shape to feed an input with dynamic dimensions, batch first (e.g. audio=1,16000); repeat for each such input').argParser((text: string, previous: InputShapes) => parseShapeOption(text, previous)).default({}, 'the declared shapes'))
    .addOption(backendOption())
    .action(async (file: string, opts: QuantizeOptions) => {
      await checkWritable(opts.output);
      const { model, bytes } = await readModelFile(file);
      const card: ModelCard | null = (await findCard(file, model))?.card ?? null;
      if (card && card.precision !== 'fp32') throw new EdgeInferError('E_ARGUMENT', `${file}: is already a ${card.precision} variant; quantize the fp32 model`);
      const signature = signatureOf(model);
      // A --shape that names no input, or does not fit one, is refused before any work.
      checkShapes(signature, opts.shape);
      // Static int8 always calibrates: on the simulator unless told otherwise, which needs a card
      // (loadCalibration says so when there is none).
      const calibrateText = opts.calibrate ?? (opts.to === 'int8' || card ? 'sim' : undefined);
      let set: CalibrationSet | undefined;
      if (calibrateText) set = await loadCalibration(parseCalibrationSource(calibrateText), card, signature, { samples: opts.samples });
      let heldOut: HeldOut | undefined = set?.heldOut;
      let noHeldOutReason: string | undefined;
      if (!heldOut) {
        try {
          heldOut = syntheticHeldOut(signature, 256, opts.shape);
        } catch (err) {
          // Weight-only FP8 needs no inputs: written unchecked, with the reason in its report.
          if (!isEdgeInferError(err, 'E_INPUT_SHAPE') || !opts.to.startsWith('fp8')) throw err;
          noHeldOutReason = err.message;
        }
      }

      const abort = new AbortController();
      const bar = progress('calibrating', abort);
      let job;
      try {
        job = await runQuantizeJob({
          model, bytes, card, to: opts.to, calibration: set, heldOut, noHeldOutReason, method: opts.method, blockSize: opts.block, reduceRange: opts.reduceRange,
          load: opts.load, backend: opts.backend, output: opts.output, html: opts.html, onProgress: bar.onProgress, signal: abort.signal,
        });
      } finally {
        bar.stop();
      }
      const { result, comparison, reportFile } = job;
      print(`${opts.output}: ${opts.to} variant of ${card?.id ?? file}`);
      print(`method      ${result.method}`);
      if (set && heldOut) print(`calibrated  ${opts.to === 'int8' ? `${set.description} (${opts.method})` : 'no calibration needed'}; checked on ${heldOut.source}`);
      if (comparison) {
        for (const line of textReport(comparison)) print(line);
      } else {
        print(`size        ${(bytes.length / 1000).toFixed(1)} kB → ${(job.sizeBytes / 1000).toFixed(1)} kB (${((job.sizeBytes / bytes.length) * 100).toFixed(1)} % of fp32)`);
        print(`agreement   ${job.unchecked}`);
      }
      if (!card) print('card        none written: the fp32 model has no card to derive one from');
      if (reportFile) print(`report      ${reportFile}`);
      for (const n of result.notices) print(`notice      ${n}`);
    });
}
