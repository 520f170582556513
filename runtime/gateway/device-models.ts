// Per-device model variants on the gateway: a device given a model folder of its own for one model
// id (a fine-tuned variant, in the registry's layout) is served from it, everyone else from the
// pipeline's shared variant. A folder is checked before it serves: the variant the pipeline's
// policy picks from it loads, has the shared variant's input and output signature and card (but
// its own threshold), and gives finite outputs on a probe window. Each change is logged
// (device_models, migration 14) and served again after a restart; a device variant that fails a
// batch rolls its device back to the shared variant (runtime/stream/device-variants.ts).
import * as path from 'node:path';
import type { ModelSession, TensorSpec } from '../engine';
import { EdgeInferError, isEdgeInferError } from '../errors';
import { cardMismatch, sha256Hex } from '../hotswap';
import { ModelRegistry, type VariantEntry } from '../model';
import type { DeviceModelRow, DeviceModels, ResultStore } from '../store';
import type { DeviceServing } from '../stream/device-variants';
import { nonFiniteOutput } from '../stream/model-slot';
import type { Pipeline } from '../stream/pipeline';
import { withThreshold } from '../stream/results';
import { promises as fs } from 'node:fs';

/** What api/device-models and the CLI show of one device's model. */
export interface DeviceModelStatus {
  device: string;
  model: string;
  /** active: served from its folder; rolled-back, cleared: the shared variant serves it. */
  state: DeviceModelRow['state'];
  folder: string | null;
  variant: string | null;
  sha256: string | null;
  /** The threshold its results are judged by now (its card's, or null: the shared model's rules). */
  threshold: number | null;
  /** Since when, ISO time. */
  since: string;
  reason: string | null;
  /** Batches still on probation (active only). */
  probation?: number;
}

export interface DeviceModelOptions {
  pipelines: readonly Pipeline[];
  store: ResultStore;
  /** The variant policy of each pipeline (the config's `variant`): the same picks from a device's folder. */
  policyOf: (p: Pipeline) => string;
  /** Loads a variant for a pipeline (the gateway's engine settings). */
  load: (entry: VariantEntry, p: Pipeline, device: string) => Promise<ModelSession>;
  /** Healthy batches before a device variant counts as proven (default 3). */
  healthBatches?: number;
  /** Rollbacks, as the gateway reports problems. */
  report: (err: unknown) => void;
  now?: () => number;
}

/** Longest device name taken: a topic level, not a document. */
const MAX_DEVICE_CHARS = 256;

function name(field: string, v: unknown, what: string): string {
  if (typeof v !== 'string' || v.trim() === '') throw new EdgeInferError('E_ARGUMENT', `${what}: ${field}: expected a name, got ${JSON.stringify(v) ?? 'none'}`);
  if (v.length > MAX_DEVICE_CHARS) throw new EdgeInferError('E_ARGUMENT', `${what}: ${field}: expected at most ${MAX_DEVICE_CHARS} characters, got ${v.length}`);
  return v;
}

/** How two tensor lists differ (names, types, fixed sizes; dynamic sizes match any dynamic size), or null. */
export function signatureMismatch(kind: 'input' | 'output', shared: readonly TensorSpec[], own: readonly TensorSpec[]): string | null {
  const show = (t: TensorSpec): string => `'${t.name}' ${t.type} [${(t.shape ?? ['?']).map((d) => (typeof d === 'number' ? d : d ?? '?')).join(', ')}]`;
  if (shared.length !== own.length) return `it has ${own.length} ${kind}(s) (${own.map(show).join(', ')}), the shared model ${shared.length} (${shared.map(show).join(', ')})`;
  for (const [i, a] of shared.entries()) {
    const b = own[i];
    const sameShape = a.shape === null || b.shape === null || (a.shape.length === b.shape.length && a.shape.every((d, k) => (typeof d === 'number' ? d === b.shape![k] : typeof b.shape![k] !== 'number')));
    if (a.name !== b.name || a.type !== b.type || !sameShape) return `its ${kind} ${show(b)} is not the shared model's ${show(a)}`;
  }
  return null;
}

export class DeviceModelManager {
  private readonly log: DeviceModels;
  private readonly now: () => number;
  private readonly healthBatches: number;
  /** Changes go one at a time, in the order they were asked for. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly o: DeviceModelOptions) {
    this.log = o.store.deviceModels();
    this.now = o.now ?? Date.now;
    this.healthBatches = o.healthBatches ?? 3;
  }

  /**
   * Serves again what the log says each device was served (a restart). A folder that no longer
   * passes its checks is logged rolled back, with why, and the device gets the shared variant.
   */
  async restore(): Promise<void> {
    for (const row of this.log.active()) {
      try {
        await this.serve(row.device, row.model, row.folder ?? '', 'restart');
      } catch (err) {
        const reason = `${row.device} (${row.model}): its own model was not served again after the restart: ${err instanceof Error ? err.message : String(err)}`;
        this.add({ device: row.device, model: row.model, folder: row.folder, variant: row.variant, sha256: row.sha256, state: 'rolled-back', reason });
        this.o.report(new EdgeInferError('E_UPDATE', reason, { cause: err }));
      }
    }
  }

  /**
   * Serves `device`'s windows of `model` from the variant the pipeline's policy picks in `folder`,
   * once it passes the checks; anything wrong throws one line (E_ARGUMENT: the request or the
   * folder; E_NOT_FOUND: no such model served; E_CONFLICT: too many devices) and nothing changes.
   */
  async set(device: unknown, model: unknown, folder: unknown): Promise<DeviceModelStatus> {
    const what = 'device-model set';
    const d = name('device', device, what);
    const m = name('model', model, what);
    if (typeof folder !== 'string' || folder.trim() === '') throw new EdgeInferError('E_ARGUMENT', `${what}: folder: expected the device's model folder, got ${JSON.stringify(folder) ?? 'none'}`);
    return this.next(() => this.serve(d, m, folder, what));
  }

  /** Serves `device` from the shared variant again. E_NOT_FOUND when it had no model of its own. */
  async clear(device: unknown, model: unknown): Promise<DeviceModelStatus> {
    const what = 'device-model clear';
    const d = name('device', device, what);
    const m = name('model', model, what);
    return this.next(async () => {
      const pipelines = this.pipelinesOf(m, what);
      const had = pipelines.map((p) => p.devices.clear(d)).some(Boolean);
      if (!had) throw new EdgeInferError('E_NOT_FOUND', `${what}: ${d} has no model of its own for '${m}'`);
      const before = this.log.current().find((r) => r.device === d && r.model === m);
      this.add({ device: d, model: m, folder: before?.folder ?? null, variant: null, sha256: null, state: 'cleared', reason: 'cleared: the shared variant serves it' });
      return this.statusOf(d, m);
    });
  }

  /** Every device given a model of its own (its newest state: active, rolled back, cleared). */
  list(): DeviceModelStatus[] {
    return this.log.current().map((r) => this.statusOf(r.device, r.model, r));
  }

  /** No more changes: the pipelines close and dispose their sessions. */
  close(): void {
    this.closed = true;
  }

  private next<T>(step: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.closed) throw new EdgeInferError('E_CONFLICT', 'device models: the gateway is stopping');
      return step();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private pipelinesOf(model: string, what: string): Pipeline[] {
    const pipelines = this.o.pipelines.filter((p) => p.card.id === model);
    if (pipelines.length === 0) throw new EdgeInferError('E_NOT_FOUND', `${what}: model '${model}' is not served here (served: ${[...new Set(this.o.pipelines.map((p) => p.card.id))].join(', ')})`);
    return pipelines;
  }

  /** Checks the folder for each pipeline of the model, then serves the device from it. */
  private async serve(device: string, model: string, folderText: string, what: string): Promise<DeviceModelStatus> {
    const pipelines = this.pipelinesOf(model, what);
    const folder = path.resolve(folderText);
    const full = pipelines.find((p) => !p.devices.hasRoom(device));
    if (full) throw new EdgeInferError('E_CONFLICT', `${what}: ${full.devices.max} devices already have a model of their own for '${model}', the most one model may have (one session each); clear one first`);
    let registry: ModelRegistry;
    try {
      registry = await ModelRegistry.open(folder, { watch: false });
    } catch (err) {
      throw new EdgeInferError('E_ARGUMENT', `${what}: folder ${folder}: ${err instanceof Error ? err.message.replace(`${folder}: `, '') : String(err)}`, { cause: err });
    }
    const made: Array<{ p: Pipeline; serving: DeviceServing }> = [];
    try {
      for (const p of pipelines) made.push({ p, serving: await this.check(device, model, folder, registry, p, what) });
    } catch (err) {
      for (const m of made) await m.serving.session.dispose().catch(() => undefined);
      throw err;
    } finally {
      await registry.close();
    }
    const first = made[0].serving;
    for (const { p, serving } of made) {
      p.devices.set(serving, this.healthBatches, (reason) => {
        this.add({ device, model, folder, variant: serving.variant, sha256: serving.sha256, state: 'rolled-back', reason });
        this.o.report(new EdgeInferError('E_UPDATE', `${p.name}: ${reason}`));
      });
    }
    this.add({ device, model, folder, variant: first.variant, sha256: first.sha256, state: 'active', reason: null });
    return this.statusOf(device, model);
  }

  /** One pipeline's checks of the folder: pick, card, load, signature, probe. Returns the loaded variant. */
  private async check(device: string, model: string, folder: string, registry: ModelRegistry, p: Pipeline, what: string): Promise<DeviceServing> {
    const where = `${what}: ${device} (${model}): folder ${folder}`;
    let entry: VariantEntry;
    try {
      entry = registry.pick(model, this.o.policyOf(p));
    } catch (err) {
      // The registry says no such model; the broken files say why (not ONNX, a bad card).
      const broken = registry.errors();
      const why = broken.length ? `${broken.map((b) => b.error.message).slice(0, 2).join('; ')}${broken.length > 2 ? ` and ${broken.length - 2} more` : ''}` : err instanceof Error ? err.message : String(err);
      throw new EdgeInferError('E_ARGUMENT', `${where}: no variant of '${model}' to serve: ${why}`, { cause: err });
    }
    const file = path.basename(entry.file);
    // Its own threshold is the point of it; everything else must be what the pipeline feeds and reads.
    const mismatch = cardMismatch(p.variant.card, withThreshold(entry.card, p.variant.card.output.threshold));
    if (mismatch) throw new EdgeInferError('E_ARGUMENT', `${where}: ${file}: ${mismatch}`);
    const shared = p.variant.signature;
    const sig = signatureMismatch('input', shared.inputs, entry.signature.inputs) ?? signatureMismatch('output', shared.outputs, entry.signature.outputs);
    if (sig) throw new EdgeInferError('E_ARGUMENT', `${where}: ${file}: ${sig}`);
    const sha256 = sha256Hex(await fs.readFile(entry.file));
    let session: ModelSession;
    try {
      session = await this.o.load(entry, p, device);
    } catch (err) {
      throw new EdgeInferError('E_ARGUMENT', `${where}: ${file} does not load: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    try {
      const problem = await this.probe(p, entry, session, device);
      if (problem) throw new EdgeInferError('E_ARGUMENT', `${where}: ${file}: ${problem}`);
    } catch (err) {
      await session.dispose().catch(() => undefined);
      throw isEdgeInferError(err, 'E_ARGUMENT') ? err : new EdgeInferError('E_ARGUMENT', `${where}: ${file}: the probe window failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return { device, session, variant: entry.variant, sha256, entry, card: entry.card, folder };
  }

  /**
   * Runs the device variant on a probe window: the device's newest recorded window, else the
   * model's, else zeros of the input's shape. Its outputs must be finite where the shared
   * variant's are (a window the shared variant cannot read says nothing of the device's).
   */
  private async probe(p: Pipeline, entry: VariantEntry, session: ModelSession, device: string): Promise<string | null> {
    const card = entry.card;
    const recorded = this.o.store.windows(card.id, { device, limit: 1 })[0] ?? this.o.store.windows(card.id, { limit: 1 })[0];
    const dims = recorded?.dims ?? p.windows.dims;
    const features = recorded?.features ?? new Float32Array(dims.reduce((a, b) => a * b, 1));
    const feeds = [{ [card.input.tensor]: { type: 'float32' as const, data: features, dims } }];
    const [own] = await session.runWindows(feeds);
    if (!own.ok) return `the probe window failed: ${own.error.message}`;
    const bad = nonFiniteOutput([own], card.output.tensor);
    if (bad === null) return null;
    const [theirs] = await p.session.runWindows(feeds);
    return theirs.ok && nonFiniteOutput([theirs], card.output.tensor) === null ? `on the probe window (${recorded ? `recorded ${new Date(recorded.timeMs).toISOString()}` : 'zeros'}) its ${bad.replace(' of window 0 of the batch', '')}` : null;
  }

  private add(r: Omit<DeviceModelRow, 'id' | 'sinceMs'>): void {
    try {
      this.log.add({ ...r, sinceMs: this.now() });
    } catch (err) {
      this.o.report(err);
    }
  }

  private statusOf(device: string, model: string, row?: DeviceModelRow): DeviceModelStatus {
    const r = row ?? this.log.current().find((x) => x.device === device && x.model === model);
    if (!r) throw new EdgeInferError('E_NOT_FOUND', `device-model: ${device} has no model of its own for '${model}'`);
    const live = this.o.pipelines.find((p) => p.card.id === model)?.devices;
    const serving = r.state === 'active' ? live?.get(device) : undefined;
    return {
      device: r.device,
      model: r.model,
      state: r.state,
      folder: r.folder,
      variant: r.variant,
      sha256: r.sha256,
      threshold: serving?.card.output.threshold ?? null,
      since: new Date(r.sinceMs).toISOString(),
      reason: r.reason,
      ...(serving ? { probation: live!.probation(device) } : {}),
    };
  }
}
