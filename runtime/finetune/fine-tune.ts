// fineTune: a device's anomaly autoencoder, fine-tuned from the shipped weights on the device's
// own healthy windows, on the gateway. Training runs on a worker thread; the fp32 model and its
// int8 and FP8 variants (the project's quantizer, calibrated on the same windows) are checked on
// held-out healthy windows and written as a model folder a ModelRegistry opens: through a temp
// folder renamed at the end, so a cancel or a failure leaves nothing half-written.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { EdgeInferError } from '../errors';
import { type BackendChoice, type BackendName, resolveBackend } from '../engine';
import { type ModelCard, parseCard, windowFeeds } from '../model';
import { encodeModel, readModelFile } from '../onnx';
import { type QuantTarget, embedCard, precisionOf, quantizeModel } from '../quant';
import { type DerivedThreshold, deriveThreshold } from '../teachin';
import { type Autoencoder, readAutoencoder, withWeights } from './autoencoder';
import { type HeldOutScores, type VariantCheck, allowedFlags, judgeVariant, scoresOf } from './check';
import { anomalyProbes } from './probes';
import { type FineTuneRequest, type FineTuneSettings, checkRequest, checkWindows, settingsOf } from './request';
import { trainOnWorker } from './trainer';

/** The variants a fine-tune writes beside fp32. */
export const FINE_TUNE_TARGETS: readonly QuantTarget[] = ['int8', 'fp8-e4m3'];

export type FineTunePhase = 'prepare' | 'train' | 'threshold' | 'quantize' | 'check' | 'write';

export interface FineTuneProgress {
  phase: FineTunePhase;
  /** While training: epochs done of all, and the last epoch's mean training loss. */
  epoch?: number;
  epochs?: number;
  loss?: number;
  /** While quantizing and checking: the variant. */
  variant?: string;
}

export interface FineTuneOptions {
  onProgress?: (p: FineTuneProgress) => void;
  /** Aborting ends the training thread and removes what was written: E_CANCELLED. */
  signal?: AbortSignal;
  /**
   * Where the variants are checked: the backend the gateway serves them on (default auto, native
   * where onnxruntime-node is installed). A fresh process's first WASM session alone adds about
   * 110 MiB of resident memory, the native one about 30 (BENCHMARKS.md).
   */
  backend?: BackendChoice;
}

export interface FineTuneReport {
  device: string;
  model: string;
  /** The model folder written. */
  outDir: string;
  windows: { used: number; heldOut: number };
  epochs: number;
  /** Mean squared reconstruction error per feature, on the training and the held-out windows, before (the base weights) and after. */
  loss: { before: number; after: number; heldOutBefore: number; heldOutAfter: number };
  /** Held-out healthy scores of the base model and of the fine-tuned fp32. */
  heldOutScores: { base: ScoreSummary; fineTuned: ScoreSummary };
  /** Anomaly probes of the held-out windows (probes.ts), and how many the fine-tuned fp32 flags. */
  probes: { windows: number; flaggedByFp32: number };
  /** The threshold in the cards, by the teach-in rule from the fine-tuned fp32's held-out scores. */
  threshold: DerivedThreshold & { quantile: number; margin: number };
  /** fp32, int8 and fp8-e4m3, each written or not, and why. */
  variants: VariantCheck[];
  /** The whole fine-tune and the training alone, ms. */
  timeMs: number;
  trainMs: number;
  /** Highest resident memory above the start's during the fine-tune (the training thread's included), bytes. */
  peakExtraBytes: number;
  /** TensorFlow.js backend that trained. */
  backend: string;
  /** The onnxruntime the variants were checked on. */
  checkedOn: BackendName;
}

export interface ScoreSummary {
  median: number;
  max: number;
}

function summary(scores: Float64Array): ScoreSummary {
  const sorted = Float64Array.from(scores).sort();
  return { median: sorted[Math.floor((sorted.length - 1) / 2)], max: sorted[sorted.length - 1] };
}

/** Indices split evenly over time: window i is held out when it crosses a multiple of 1/share. */
function split(count: number, share: number): { train: number[]; heldOut: number[] } {
  const train: number[] = [];
  const heldOut: number[] = [];
  for (let i = 0; i < count; i++) (Math.floor((i + 1) * share) > Math.floor(i * share) ? heldOut : train).push(i);
  return { train, heldOut };
}

function concat(windows: readonly Float32Array[], idx: readonly number[], width: number): Float32Array {
  const out = new Float32Array(idx.length * width);
  idx.forEach((i, k) => out.set(windows[i], k * width));
  return out;
}

/** Samples resident memory while the fine-tune runs: the WASM heap of the training thread counts in it, not in V8's heap. */
function memoryWatch(): { stop: () => number } {
  const start = process.memoryUsage.rss();
  let peak = start;
  const sample = (): void => {
    peak = Math.max(peak, process.memoryUsage.rss());
  };
  const timer = setInterval(sample, 25);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak - start;
    },
  };
}

const cancelled = (signal: AbortSignal | undefined, phase: string): void => {
  if (signal?.aborted) throw new EdgeInferError('E_CANCELLED', `fine-tune cancelled while ${phase}`);
};

const iso = (ms: number): string => new Date(ms).toISOString();

/** Fine-tunes a device's anomaly model on its healthy windows; see the README's "Fine-tuning". */
export async function fineTune(request: FineTuneRequest, options: FineTuneOptions = {}): Promise<FineTuneReport> {
  const t0 = performance.now();
  const settings = settingsOf(request);
  checkRequest(request, settings);
  const { signal, onProgress } = options;
  // Resolved before the training: a backend that cannot run here is refused in a second, not after it.
  let checkedOn: BackendName;
  try {
    checkedOn = resolveBackend(options.backend ?? 'auto').name;
  } catch (err) {
    throw new EdgeInferError((err as EdgeInferError).code ?? 'E_ARGUMENT', `fine-tune: ${(err as Error).message}`);
  }
  const memory = memoryWatch();
  const outDir = path.resolve(request.outDir);
  const tmp = path.join(path.dirname(outDir), `.${path.basename(outDir)}.finetune-${process.pid}-${Date.now()}.tmp`);
  try {
    onProgress?.({ phase: 'prepare' });
    const { model, bytes } = await readModelFile(request.base.file);
    const ae: Autoencoder = readAutoencoder(model, request.base.file);
    const width = ae.layers[0].inDim;
    checkWindows(request.windows, width, request.device);
    const card = request.base.card;
    const { train, heldOut } = split(request.windows.length, settings.heldOutShare);
    const heldOutWindows = heldOut.map((i) => request.windows[i]);
    const probeWindows = anomalyProbes(heldOutWindows, ae.std, settings.seed);
    cancelled(signal, 'preparing');

    const t1 = performance.now();
    const trained = await trainOnWorker(
      {
        train: concat(request.windows, train, width), heldOut: concat(request.windows, heldOut, width), width, mean: ae.mean, std: ae.std,
        layers: ae.layers.map((l) => ({ w: l.w, b: l.b, inDim: l.inDim, outDim: l.outDim, relu: l.relu })),
        epochs: settings.epochs, batchSize: settings.batchSize, learningRate: settings.learningRate, seed: settings.seed,
      },
      { signal, onEpoch: (epoch, epochs, loss) => onProgress?.({ phase: 'train', epoch, epochs, loss }) },
    );
    const trainMs = performance.now() - t1;

    onProgress?.({ phase: 'threshold' });
    const tuned = withWeights(model, ae.layers.map((l, i) => ({ ...l, w: trained.layers[i].w, b: trained.layers[i].b })));
    const fp32Bytes = encodeModel(tuned);
    const [baseScores] = await scoresOf(bytes, card, [heldOutWindows], `${card.id} (base)`, checkedOn);
    const both = async (b: Uint8Array, c: ModelCard, name: string): Promise<HeldOutScores> => {
      const [healthy, probes] = await scoresOf(b, c, [heldOutWindows, probeWindows], name, checkedOn);
      return { healthy, probes };
    };
    const fp32Scores = await both(fp32Bytes, card, `${card.id} (fine-tuned)`);
    const derived = deriveThreshold(fp32Scores.healthy, settings.rule);
    // Six significant digits in the cards, unless rounding would bring it to the highest held-out score.
    const rounded = Number(derived.threshold.toPrecision(6));
    const threshold = rounded > derived.maxScore ? rounded : derived.threshold;
    const allowed = allowedFlags(heldOut.length, settings.rule.quantile);
    cancelled(signal, 'setting the threshold');

    const fp32Card = fineTunedCard(request, settings, card, threshold, train.length, heldOut.length, bytes);
    const outputs: Array<{ variant: string; card: ModelCard; bytes: Uint8Array }> = [];
    const variants: VariantCheck[] = [];
    const fp32Check = judgeVariant('fp32', fp32Scores, fp32Scores, threshold, allowed, settings.minCosine, fp32Bytes.length);
    variants.push(fp32Check);
    if (!fp32Check.written) throw new EdgeInferError('E_QUANT_CHECK', `fine-tune of ${request.model} for ${request.device}: the fp32 model fails its own check: ${fp32Check.reason}`);
    outputs.push({ variant: 'fp32', card: fp32Card, bytes: encodeModel(embedCard(tuned, fp32Card)) });

    // The int8 variant calibrates on training windows spread over the whole period, and on as
    // many anomaly probes of them: healthy windows alone would clip its ranges below any fault.
    // Min-max ranges: a percentile would clip the few raised elements of the probes away again.
    const step = Math.max(1, Math.floor(train.length / settings.calibrationWindows));
    const calibrationWindows = train.filter((_, k) => k % step === 0).slice(0, settings.calibrationWindows).map((i) => request.windows[i]);
    const calibration = [...calibrationWindows, ...anomalyProbes(calibrationWindows, ae.std, settings.seed + 1)].map((w) => windowFeeds(card.input, w));
    const calibrationSource = `${request.device}'s taught windows and as many anomaly probes of them`;
    for (const to of FINE_TUNE_TARGETS) {
      onProgress?.({ phase: 'quantize', variant: to });
      let check: VariantCheck;
      try {
        const q = await quantizeModel({ model: tuned, to, calibration: to === 'int8' ? { windows: calibration, source: calibrationSource, method: 'minmax' } : undefined, signal });
        const qBytes = encodeModel(q.model);
        onProgress?.({ phase: 'check', variant: to });
        const scores = await both(qBytes, { ...fp32Card, precision: precisionOf(to) }, `${card.id} ${to} (fine-tuned)`);
        check = judgeVariant(to, scores, fp32Scores, threshold, allowed, settings.minCosine, qBytes.length);
        if (check.written) {
          const vCard = parseCard({
            ...fp32Card, variant: to, precision: precisionOf(to),
            quantization: {
              method: q.method,
              ...(to === 'int8' ? { calibration: { source: calibrationSource, windows: calibration.length, method: 'minmax' } } : {}),
              agreement: { cosine: Number(check.cosine!.toFixed(6)), maxAbsError: Number(check.maxAbsError!.toPrecision(4)), windows: heldOut.length },
            },
          }, `${card.id} ${to} card`);
          const b = encodeModel(embedCard(q.model, vCard));
          outputs.push({ variant: to, card: vCard, bytes: b });
          check.sizeBytes = b.length;
        }
      } catch (err) {
        if (err instanceof EdgeInferError && err.code === 'E_CANCELLED') throw err;
        check = { variant: to, written: false, reason: `it could not be made or run: ${err instanceof Error ? err.message : String(err)}`, cosine: null, maxAbsError: null, flagged: null, allowed, probesFlagged: null, sizeBytes: 0 };
      }
      variants.push(check);
      cancelled(signal, `checking ${to}`);
    }

    onProgress?.({ phase: 'write' });
    await fs.mkdir(tmp, { recursive: true });
    for (const o of outputs) {
      const stem = `${card.id}.${o.variant}`;
      // The card first: a registry watching the folder finds it before the model.
      await fs.writeFile(path.join(tmp, `${stem}.model.json`), `${JSON.stringify(o.card, null, 2)}\n`);
      await fs.writeFile(path.join(tmp, `${stem}.onnx`), o.bytes);
      const v = variants.find((c) => c.variant === o.variant)!;
      v.file = path.join(outDir, `${stem}.onnx`);
      v.sizeBytes = o.bytes.length;
    }
    cancelled(signal, 'writing');
    await replaceFolder(tmp, outDir);
    const peakExtraBytes = memory.stop();
    return {
      device: request.device, model: request.model, outDir,
      windows: { used: train.length, heldOut: heldOut.length }, epochs: settings.epochs,
      loss: { before: trained.lossBefore, after: trained.lossAfter, heldOutBefore: trained.heldOutLossBefore, heldOutAfter: trained.heldOutLossAfter },
      heldOutScores: { base: summary(baseScores), fineTuned: summary(fp32Scores.healthy) },
      probes: { windows: probeWindows.length, flaggedByFp32: fp32Check.probesFlagged! },
      threshold: { ...derived, threshold, quantile: settings.rule.quantile, margin: settings.rule.margin },
      variants, timeMs: performance.now() - t0, trainMs, peakExtraBytes, backend: trained.backend, checkedOn,
    };
  } catch (err) {
    memory.stop();
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** The fine-tuned fp32 card: the base's input, features and normalization, its own threshold, its provenance. */
function fineTunedCard(r: FineTuneRequest, s: FineTuneSettings, base: ModelCard, threshold: number, used: number, heldOut: number, baseBytes: Uint8Array): ModelCard {
  const { quantization: _q, variant: _v, metrics: _m, ...rest } = base;
  return parseCard({
    ...rest,
    precision: 'fp32',
    output: { ...base.output, threshold },
    metrics: { trainingWindows: used, heldOutWindows: heldOut },
    training: `Fine-tuned on the gateway by edge-infer (runtime/finetune) from ${base.id} ${base.variant ?? base.precision}: ${s.epochs} epochs on ${used} healthy windows of ${r.device}; threshold by the teach-in rule (quantile ${s.rule.quantile}, margin ${s.rule.margin}) from ${heldOut} held-out healthy windows.`,
    provenance: {
      device: r.device, windows: used, heldOutWindows: heldOut, firstWindow: iso(r.firstWindowMs), lastWindow: iso(r.lastWindowMs),
      baseModel: { id: base.id, variant: base.variant ?? base.precision, sha256: createHash('sha256').update(baseBytes).digest('hex') },
      date: new Date().toISOString(),
    },
  }, `${base.id} fine-tuned card`);
}

/** Puts the finished folder where the old one was (if any) with renames; the old one is removed after. */
async function replaceFolder(tmp: string, outDir: string): Promise<void> {
  const old = `${tmp}.old`;
  let moved = false;
  try {
    await fs.rename(outDir, old);
    moved = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new EdgeInferError('E_ARGUMENT', `fine-tune: cannot replace ${outDir} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  try {
    await fs.rename(tmp, outDir);
  } catch (err) {
    if (moved) await fs.rename(old, outDir).catch(() => undefined);
    throw new EdgeInferError('E_ARGUMENT', `fine-tune: cannot write ${outDir} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  if (moved) await fs.rm(old, { recursive: true, force: true });
}
