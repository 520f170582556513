// fineTune end to end on real windows of the mixer (a machine the shipped model never learned):
// from the shipped fp32 weights, on a worker thread, to a model folder a ModelRegistry opens;
// cancelled mid-training; and every bad part of a request refused in one line before any work.
import { createHash } from 'node:crypto';
import { mkdtempSync, promises as fs, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { profileById } from '../../devices';
import { type BackendChoice, ModelSession, resolveBackend } from '../../runtime/engine';
import { predictWindows } from '../../runtime/eval';
import { type FineTuneProgress, type FineTuneReport, type FineTuneRequest, fineTune, readAutoencoder } from '../../runtime/finetune';
import { allowedFlags, judgeVariant } from '../../runtime/finetune/check';
import { anomalyProbes } from '../../runtime/finetune/probes';
import { type ModelCard, ModelRegistry, parseCard } from '../../runtime/model';
import { decodeModel } from '../../runtime/onnx';
import { bundledModelsDir } from '../../runtime/paths';
import { caught } from '../helpers/errors';
import { machineWindows } from '../helpers/machine-windows';
import { gemmModel } from '../helpers/models';

const dir = path.join(bundledModelsDir(), 'vibration-anomaly');
const baseFile = path.join(dir, 'vibration-anomaly.fp32.onnx');
const card: ModelCard = parseCard(JSON.parse(readFileSync(path.join(dir, 'vibration-anomaly.fp32.model.json'), 'utf8')), 'fp32 card');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-finetune-'));
// A tiny fine-tune: 250 windows (200 trained, 50 held out), 4 epochs.
const SETTINGS = { epochs: 4, minWindows: 50 };
const T0 = Date.UTC(2026, 11, 1, 6, 0, 0);

let windows: Float32Array[];
let fresh: Float32Array[];
function request(over: Partial<FineTuneRequest> = {}): FineTuneRequest {
  return { device: 'mixer-1', model: 'vibration-anomaly', base: { file: baseFile, card }, windows, firstWindowMs: T0, lastWindowMs: T0 + 250 * 200, outDir: path.join(tmp, 'out'), settings: SETTINGS, ...over };
}

beforeAll(() => {
  const mixer = profileById('mixer');
  windows = machineWindows(mixer, card, { seed: 41, count: 250 }).features;
  // Windows of the same machine the fine-tune never saw: later in its run.
  fresh = machineWindows(mixer, card, { seed: 41, count: 40, skip: 400 }).features;
});
afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

async function medianScore(file: string | Uint8Array, of: Float32Array[]): Promise<number> {
  const session = await ModelSession.load(file, { backend: 'wasm', threads: 1 });
  const scores = (await predictWindows(session, card, of)).map((o) => o[0]).sort((a, b) => a - b);
  await session.dispose();
  return scores[Math.floor(scores.length / 2)];
}

describe('fineTune', () => {
  it('should write a model folder a registry opens, whose fp32 reconstructs the device better than the base, with its provenance', async () => {
    const progress: FineTuneProgress[] = [];
    const report: FineTuneReport = await fineTune(request(), { onProgress: (p) => progress.push(p) });
    expect(report.windows).toEqual({ used: 200, heldOut: 50 });
    expect(report.epochs).toBe(4);
    expect(report.loss.after).toBeLessThan(report.loss.before);
    expect(report.loss.heldOutAfter).toBeLessThan(report.loss.heldOutBefore);
    expect(report.heldOutScores.fineTuned.median).toBeLessThan(report.heldOutScores.base.median);
    // The threshold sits above every held-out healthy score of the fine-tuned fp32.
    expect(report.threshold.threshold).toBeGreaterThan(report.heldOutScores.fineTuned.max);
    expect(report.threshold).toMatchObject({ quantile: 0.999, margin: 1, windows: 50 });
    // The anomaly probes of the held-out windows score above it, and every variant written flags them as fp32 does.
    expect(report.probes.windows).toBe(50);
    expect(report.probes.flaggedByFp32).toBeGreaterThan(25);
    for (const v of report.variants.filter((x) => x.written)) {
      expect(v.flagged).toBe(0);
      expect(v.probesFlagged).toBeGreaterThanOrEqual(Math.ceil(report.probes.flaggedByFp32 * 0.98));
    }
    expect(progress.filter((p) => p.phase === 'train').map((p) => p.epoch)).toEqual([0, 1, 2, 3, 4]);
    expect(new Set(progress.map((p) => p.phase))).toEqual(new Set(['prepare', 'train', 'threshold', 'quantize', 'check', 'write']));
    expect(report.backend).toBe('wasm');
    // The variants are checked where the gateway serves them: native where onnxruntime-node is installed.
    expect(report.checkedOn).toBe(resolveBackend('auto').name);
    expect(report.peakExtraBytes).toBeGreaterThan(0);

    const registry = await ModelRegistry.open(path.join(tmp, 'out'), { watch: false });
    try {
      const written = report.variants.filter((v) => v.written).map((v) => v.variant);
      // fp32 always; each variant that is not written says why.
      expect(written).toContain('fp32');
      for (const v of report.variants.filter((x) => !x.written)) expect(v.reason).toMatch(/\S/);
      expect(registry.get('vibration-anomaly').variants.map((v) => v.variant).sort()).toEqual([...written].sort());
      const fp32 = registry.pick('vibration-anomaly', 'fp32');
      expect(fp32.card.output.threshold).toBe(report.threshold.threshold);
      expect(fp32.card.input).toEqual(card.input);
      expect(fp32.card.provenance).toEqual({
        device: 'mixer-1', windows: 200, heldOutWindows: 50, firstWindow: '2026-12-01T06:00:00.000Z', lastWindow: '2026-12-01T06:00:50.000Z',
        baseModel: { id: 'vibration-anomaly', variant: 'fp32', sha256: createHash('sha256').update(readFileSync(baseFile)).digest('hex') },
        date: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      });
      for (const v of registry.get('vibration-anomaly').variants) {
        expect(v.card.provenance?.device).toBe('mixer-1');
        expect(v.card.output.threshold).toBe(report.threshold.threshold);
      }
      // A real session of the fine-tuned model on windows of the machine it never saw.
      expect(await medianScore(fp32.file, fresh)).toBeLessThan(await medianScore(baseFile, fresh));
      // Same graph as the base: only the weights changed.
      const tuned = decodeModel(readFileSync(fp32.file));
      expect(tuned.graph?.node?.map((n) => n.op_type)).toEqual(decodeModel(readFileSync(baseFile)).graph?.node?.map((n) => n.op_type));
    } finally {
      await registry.close();
    }
  });

  it('should end the training thread when cancelled, leave no folder and keep the one that was there', async () => {
    const out = path.join(tmp, 'kept');
    await fs.mkdir(out);
    writeFileSync(path.join(out, 'marker'), 'old');
    const abort = new AbortController();
    const err = await caught(() => fineTune(request({ outDir: out, settings: { ...SETTINGS, epochs: 50 } }), { signal: abort.signal, onProgress: (p) => p.phase === 'train' && p.epoch === 1 && abort.abort() }));
    expect(err).toMatchObject({ code: 'E_CANCELLED', message: 'fine-tune cancelled while training' });
    expect(await fs.readdir(out)).toEqual(['marker']);
    expect((await fs.readdir(tmp)).filter((f) => f.includes('.tmp'))).toEqual([]);
    const already = new AbortController();
    already.abort();
    expect(await caught(() => fineTune(request({ outDir: path.join(tmp, 'never') }), { signal: already.signal }))).toMatchObject({ code: 'E_CANCELLED' });
    await expect(fs.access(path.join(tmp, 'never'))).rejects.toThrow();
  });

  it('should refuse bad input in one line that names what is wrong', async () => {
    const msg = async (over: Partial<FineTuneRequest>): Promise<string> => ((await caught(() => fineTune(request({ outDir: path.join(tmp, 'refused'), ...over })))) as Error).message;
    expect(await msg({ windows: [] })).toBe('fine-tune: no windows of mixer-1 to learn from');
    expect(await msg({ windows: windows.slice(0, 20) })).toBe('fine-tune: 20 windows of mixer-1, fewer than the 50 a fine-tune needs');
    const nan = windows.map((w) => w);
    nan[17] = Float32Array.from(windows[17]);
    nan[17][5] = Number.NaN;
    expect(await msg({ windows: nan })).toBe('fine-tune: window 17 of mixer-1: feature 5 is NaN, expected a finite number');
    const short = [...windows];
    short[3] = windows[3].subarray(0, 64);
    expect(await msg({ windows: short })).toBe('fine-tune: window 3 of mixer-1 has 64 features, the model takes 192');
    const notOnnx = path.join(tmp, 'not-a-model.onnx');
    writeFileSync(notOnnx, 'this is not ONNX');
    expect(await caught(() => fineTune(request({ base: { file: notOnnx, card } })))).toMatchObject({ code: 'E_MODEL_CORRUPT', message: expect.stringMatching(/^.*not-a-model\.onnx: .*/) });
    const gemm = path.join(tmp, 'gemm.onnx');
    writeFileSync(gemm, gemmModel());
    expect(await msg({ base: { file: gemm, card } })).toBe(`${gemm}: not an autoencoder the fine-tune can train (no standardization Sub(input, mean) at its start)`);
    expect(await msg({ base: { file: path.join(tmp, 'missing.onnx'), card } })).toMatch(/missing\.onnx: cannot read \(ENOENT\)$/);
    expect(await msg({ model: 'pump-anomaly' })).toBe("fine-tune: the base card is model 'vibration-anomaly', not 'pump-anomaly'");
    expect(await msg({ base: { file: baseFile, card: { ...card, task: 'classification' } as ModelCard } })).toBe("fine-tune: model 'vibration-anomaly' is a classification model; only anomaly models (autoencoders) are fine-tuned");
    expect(await msg({ base: { file: baseFile, card: { ...card, precision: 'int8' } } })).toBe(`fine-tune: ${baseFile} is the int8 variant of 'vibration-anomaly'; fine-tune the fp32 one`);
    expect(await msg({ device: '' })).toBe('fine-tune: device must be a name, got ""');
    expect(await msg({ firstWindowMs: T0 + 1, lastWindowMs: T0 })).toBe(`fine-tune: firstWindowMs and lastWindowMs must be times with first ≤ last, got ${T0 + 1} and ${T0}`);
    expect(await msg({ settings: { epochs: 0 } })).toBe('fine-tune: epochs must be a whole number ≥ 1, got 0');
    expect(await msg({ settings: { heldOutShare: 0.9 } })).toBe('fine-tune: heldOutShare must be a number in [0.05, 0.5], got 0.9');
    expect(await msg({ settings: { ...SETTINGS, maxWindows: 100 } })).toBe('fine-tune: 250 windows of mixer-1, more than the 100 a fine-tune takes');
    const backend = async (b: string): Promise<unknown> => caught(() => fineTune(request({ outDir: path.join(tmp, 'refused') }), { backend: b as BackendChoice }));
    expect(await backend('gpu')).toMatchObject({ code: 'E_ARGUMENT', message: "fine-tune: backend must be one of auto, wasm, native, got 'gpu'" });
    // Nothing was written by any of them.
    await expect(fs.access(path.join(tmp, 'refused'))).rejects.toThrow();
  });

  it('should read the shipped autoencoder and refuse a quantized graph', async () => {
    const ae = readAutoencoder(decodeModel(readFileSync(baseFile)), 'base');
    expect(ae.layers.map((l) => [l.inDim, l.outDim, l.relu])).toEqual([[192, 512, true], [512, 8, true], [8, 512, true], [512, 192, false]]);
    expect(ae.mean).toHaveLength(192);
    const int8 = path.join(dir, 'vibration-anomaly.int8.onnx');
    expect(() => readAutoencoder(decodeModel(readFileSync(int8)), 'int8')).toThrow(/^int8: not an autoencoder the fine-tune can train/);
  });
});

describe('the variant checks', () => {
  const fp32 = { healthy: Float64Array.from({ length: 400 }, (_, i) => 1 + (i % 10) / 10), probes: Float64Array.from({ length: 400 }, (_, i) => 5 + i) };
  it('should pass a variant that scores as fp32 does and refuse one whose scores saturate, naming each miss', () => {
    const close = { healthy: fp32.healthy.map((s) => s * 1.01), probes: fp32.probes.map((s) => s * 0.99) };
    expect(judgeVariant('int8', close, fp32, 2.5, 0, 0.99, 10)).toMatchObject({ written: true, flagged: 0, probesFlagged: 400, reason: undefined });
    // Clipped at healthy levels: no probe reaches the threshold (what healthy-only calibration did).
    const clipped = { healthy: fp32.healthy, probes: fp32.probes.map((s) => Math.min(s, 2.2)) };
    expect(judgeVariant('int8', clipped, fp32, 2.5, 0, 0.99, 10).reason).toMatch(/^its held-out scores agree with fp32's at cosine 0\.\d+, below 0\.99; it flags 0 of the 400 anomaly probes, fp32 flags 400 \(at least 98 % of them needed\)$/);
    const noisy = { healthy: fp32.healthy.map((s, i) => (i === 3 ? 3 : s)), probes: fp32.probes };
    expect(judgeVariant('fp8-e4m3', noisy, fp32, 2.5, 0, 0.9, 10).reason).toBe('it flags 1 of 400 held-out healthy windows at the threshold 2.500, the rule allows 0');
    expect(allowedFlags(400, 0.999)).toBe(0);
    expect(allowedFlags(2000, 0.999)).toBe(2);
  });

  it('should make one seeded probe per window, 1 to 3 elements raised by 3 to 12 times their spread', () => {
    const std = new Float32Array(192).fill(0.5);
    const probes = anomalyProbes(windows.slice(0, 50), std, 3);
    expect(anomalyProbes(windows.slice(0, 50), std, 3)).toEqual(probes);
    probes.forEach((p, i) => {
      const raised = [...p].map((v, k) => (v - windows[i][k]) / 0.5).filter((d) => d > 1e-3);
      expect(raised.length).toBeGreaterThanOrEqual(1);
      expect(raised.length).toBeLessThanOrEqual(3);
      for (const d of raised) expect(d).toBeGreaterThanOrEqual(3 - 1e-3);
      for (const d of raised) expect(d).toBeLessThanOrEqual(2 * 12 + 1e-3); // two draws can hit one element
    });
  });
});
