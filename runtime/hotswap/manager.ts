// Model hot-swap for the gateway's pipelines. An update (a variant pushed on MQTT, or dropped in
// the models directory) goes: signature → staged (fsynced) → loads, its card matches → agrees with
// the serving variant on the newest recorded windows → swapped in between batches → on probation
// for its first batches (rolled back on a throw or a non-finite output). Every step is logged and
// published with its reason; whatever goes wrong refuses the update and the serving variant
// serves on. Updates of one model are handled one at a time, in the order they came.
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { ModelSession } from '../engine';
import { EdgeInferError } from '../errors';
import { type ModelFileFound, type VariantEntry, readVariant } from '../model';
import type { ModelUpdateRecord, ModelUpdates, OutboxMessage, ResultStore, UpdateState } from '../store';
import type { Pipeline } from '../stream/pipeline';
import { cardMismatch, compareOnWindows } from './checks';
import { parsePublicKey, sha256Hex, updateManifest, verifyManifest } from './signature';
import { type Staged, stageUpdate, stagedPaths, unstage } from './staging';
import { modelFilter, modelOfTopic, modelTopic, statusOf } from './status';
import { type UpdateCandidate, parseUpdatePayload } from './update-message';
import { DropWatcher } from './watch';
import type { ModelUpdatesConfig } from '../gateway/config';

export interface HotSwapOptions {
  config: ModelUpdatesConfig;
  /** The models directory watched for dropped variants. */
  modelsDir: string;
  /** Where updates are staged. */
  stagingDir: string;
  pipelines: readonly Pipeline[];
  store: ResultStore;
  /** Loads a staged variant for a pipeline (the gateway's engine settings). */
  load: (entry: VariantEntry, pipeline: Pipeline) => Promise<ModelSession>;
  /** Hands a status message to the outbox (committed, then published). */
  publish: (message: OutboxMessage) => Promise<void>;
  /** Refusals and rollbacks, as the gateway reports problems. */
  report: (err: unknown) => void;
}

const isNotFound = (err: unknown): boolean => (err as NodeJS.ErrnoException)?.code === 'ENOENT';

/**
 * Lets the event loop run between the heavy steps of a check (decode, load, compare), so that
 * batches due meanwhile run and commit then, not after the whole check.
 */
const breather = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Emits 'status' with each step's record (tests, consoles). */
export class HotSwap extends EventEmitter {
  /** The MQTT filter updates arrive on, or undefined when MQTT updates are off. */
  readonly filter: string | undefined;
  private readonly key: KeyObject | undefined;
  private readonly log: ModelUpdates;
  /** sha256 of what each pipeline serves. */
  private readonly serving = new Map<Pipeline, string>();
  /** Per model, the tail of its queue of updates. */
  private readonly queues = new Map<string, Promise<void>>();
  private watcher: DropWatcher | undefined;
  private closed = false;

  constructor(private readonly o: HotSwapOptions) {
    super();
    const topic = o.config.topic;
    this.filter = topic === false ? undefined : modelFilter(topic);
    this.key = o.config.publicKey ? parsePublicKey(o.config.publicKey) : undefined;
    this.log = o.store.modelUpdates();
  }

  /** Hashes what the pipelines serve, and starts watching the models directory if asked. */
  async start(): Promise<void> {
    for (const p of this.o.pipelines) this.serving.set(p, sha256Hex(await fs.readFile(p.variant.file)));
    await this.resume();
    if (this.o.config.watch) {
      this.watcher = new DropWatcher(this.o.modelsDir, this.o.config.pollMs, (f) => void this.dropped(f), this.o.report);
      await this.watcher.start();
    }
  }

  /**
   * Updates the last run staged (and acknowledged) but did not decide, because it stopped: checked
   * and swapped now, from their staged files. Their signature was verified before they were staged.
   */
  private async resume(): Promise<void> {
    await this.restoreInService();
    const seen = new Set<string>();
    for (const row of this.log.undecided()) {
      if (row.sha256 === null || seen.has(`${row.model}/${row.sha256}`)) continue;
      seen.add(`${row.model}/${row.sha256}`);
      const base = { model: row.model, pipeline: null, variant: null, sha256: row.sha256, source: row.source };
      const staged = stagedPaths(this.o.stagingDir, row.model, row.sha256);
      try {
        const { onnx, cardText } = await readStaged(staged, row.sha256);
        const pipelines = this.o.pipelines.filter((p) => p.card.id === row.model);
        if (pipelines.length === 0) throw new EdgeInferError('E_UPDATE', `${row.source}: no pipeline serves model '${row.model}' any more`);
        if (pipelines.every((p) => this.serving.get(p) === row.sha256)) continue;
        this.enqueue({ model: row.model, onnx, cardText, sha256: row.sha256, source: row.source }, staged, pipelines);
      } catch (err) {
        this.refuse(base, isNotFound(err) ? new EdgeInferError('E_UPDATE', `${row.source}: staged before the last stop, but its files in ${path.dirname(staged.file)} are gone`) : err);
      }
    }
  }

  /**
   * The updates that served the pipelines when the gateway stopped (or lost power): checked again
   * and swapped in from their staged files, so a restart does not quietly go back to the variant
   * the config picks. Until each has passed its checks again the configured variant serves; its
   * probation is one batch (it served its own before).
   */
  private async restoreInService(): Promise<void> {
    for (const row of this.log.inService()) {
      const p = this.o.pipelines.find((x) => x.name === row.pipeline && x.card.id === row.model);
      // The pipeline is gone or serves another model now: the config decided, nothing to restore.
      if (!p || row.sha256 === null || this.serving.get(p) === row.sha256) continue;
      const staged = stagedPaths(this.o.stagingDir, row.model, row.sha256);
      const base = { model: row.model, pipeline: p.name, variant: row.variant, sha256: row.sha256, source: row.source };
      try {
        const { onnx, cardText } = await readStaged(staged, row.sha256);
        this.enqueue({ model: row.model, onnx, cardText, sha256: row.sha256, source: row.source, restored: true }, staged, [p]);
      } catch (err) {
        this.refuse(base, isNotFound(err) ? new EdgeInferError('E_UPDATE', `${row.source}: in service on ${p.name} before the last stop, but its staged files in ${path.dirname(staged.file)} are gone; ${p.variant.variant} serves`) : err);
      }
    }
  }

  /** True for a topic updates arrive on. */
  matches(topic: string): boolean {
    return this.o.config.topic !== false && modelOfTopic(this.o.config.topic, topic) !== undefined;
  }

  /**
   * An update from MQTT. Resolves once it is staged on disk (the message may be acknowledged
   * then) or refused; the checks and the swap go on after. Never rejects.
   */
  async receive(topic: string, payload: Uint8Array): Promise<void> {
    const template = this.o.config.topic;
    if (template === false) return;
    const model = modelOfTopic(template, topic) ?? '';
    const source = `mqtt:${topic}`;
    let candidate: UpdateCandidate;
    try {
      candidate = parseUpdatePayload(payload, model, source, this.o.config.maxBytes);
    } catch (err) {
      this.refuse({ model, pipeline: null, variant: null, sha256: null, source }, err);
      return;
    }
    await this.accept(candidate);
  }

  /** A file the watcher took: read with its card (and signature) and handled as an update. */
  private async dropped(f: ModelFileFound): Promise<void> {
    const source = `file:${f.file}`;
    let model = path.basename(f.file).split('.')[0];
    try {
      const cardText = await fs.readFile(f.cardFile, 'utf8');
      const id = (() => {
        try {
          return (JSON.parse(cardText) as { id?: unknown }).id;
        } catch {
          return undefined;
        }
      })();
      if (typeof id === 'string') model = id;
      // Variants of models no pipeline serves are the registry's business, not an update.
      if (!this.o.pipelines.some((p) => p.card.id === model)) return;
      const stat = await fs.stat(f.file);
      if (stat.size > this.o.config.maxBytes) throw new EdgeInferError('E_UPDATE', `${f.file}: the file is ${stat.size} bytes, over the limit of ${this.o.config.maxBytes} (modelUpdates.maxBytes)`);
      const onnx = await fs.readFile(f.file);
      const sigFile = f.file.replace(/\.onnx$/, '.sig');
      const signature = (await fs.readFile(sigFile, 'utf8').catch(() => undefined))?.trim();
      await this.accept({ model, onnx, cardText, sha256: sha256Hex(onnx), signature, source });
    } catch (err) {
      this.refuse({ model, pipeline: null, variant: null, sha256: null, source }, err);
    }
  }

  /** Signature, staging; then the checks and swap, queued behind the model's earlier updates. */
  private async accept(c: UpdateCandidate): Promise<void> {
    const base = { model: c.model, pipeline: null, variant: null, sha256: c.sha256, source: c.source };
    const pipelines = this.o.pipelines.filter((p) => p.card.id === c.model);
    if (pipelines.length === 0) return this.refuse(base, new EdgeInferError('E_UPDATE', `${c.source}: no pipeline serves model '${c.model}'`));
    if (this.key) {
      const problem = c.signature === undefined ? 'it is not signed, and modelUpdates.publicKey asks for signed updates' : verifyManifest(this.key, updateManifest(c.model, c.sha256, sha256Hex(c.cardText)), c.signature) ? null : 'its signature does not verify with modelUpdates.publicKey';
      if (problem) return this.refuse(base, new EdgeInferError('E_UPDATE', `${c.source}: ${problem}`));
    }
    // Already serving these very bytes everywhere (a file rewritten with the same content, an
    // update the broker delivered again): nothing to do.
    if (pipelines.every((p) => this.serving.get(p) === c.sha256)) return;
    let staged: Staged;
    await breather();
    try {
      staged = await stageUpdate(this.o.stagingDir, c.model, c.sha256, c.onnx, c.cardText);
    } catch (err) {
      return this.refuse(base, err);
    }
    this.step({ ...base, state: 'staged', reason: null });
    this.enqueue(c, staged, pipelines);
  }

  /** Queues the checks and the swap behind the model's earlier updates. */
  private enqueue(c: UpdateCandidate, staged: Staged, pipelines: Pipeline[]): void {
    const tail = (this.queues.get(c.model) ?? Promise.resolve()).then(() => this.checkAndSwap(c, staged, pipelines));
    const settled = tail.catch((err: unknown) => this.o.report(err));
    this.queues.set(c.model, settled);
  }

  private async checkAndSwap(c: UpdateCandidate, staged: Staged, pipelines: Pipeline[]): Promise<void> {
    const base = { model: c.model, pipeline: null as string | null, variant: null as string | null, sha256: c.sha256, source: c.source };
    if (this.closed) return;
    let entry: VariantEntry;
    await breather();
    try {
      const s = await fs.stat(staged.file);
      entry = await readVariant({ file: staged.file, cardFile: staged.cardFile, stamp: '', mtimeMs: s.mtimeMs });
    } catch (err) {
      await unstage(staged).catch(() => undefined);
      return this.refuse(base, err);
    }
    base.variant = entry.variant;
    let swappedAny = false;
    for (const p of pipelines) {
      if (this.closed) return;
      if (this.serving.get(p) === c.sha256) continue;
      const at = { ...base, pipeline: p.name };
      if (entry.id !== c.model) {
        this.refuse(at, new EdgeInferError('E_UPDATE', `${c.source}: the card is for model '${entry.id}', the update for '${c.model}'`));
        continue;
      }
      const mismatch = cardMismatch(p.variant.card, entry.card);
      if (mismatch) {
        this.refuse(at, new EdgeInferError('E_UPDATE', `${c.source}: ${mismatch}`));
        continue;
      }
      let session: ModelSession;
      await breather();
      try {
        session = await this.o.load(entry, p);
      } catch (err) {
        this.refuse(at, err);
        continue;
      }
      await breather();
      const agreed = await this.agrees(p, entry, session).catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
      if (typeof agreed === 'string' || this.closed) {
        await session.dispose().catch(() => undefined);
        if (typeof agreed === 'string') this.refuse(at, new EdgeInferError('E_UPDATE', `${c.source}: ${agreed}`));
        continue;
      }
      this.step({ ...at, state: 'checked', reason: agreed.summary });
      // One swap at a time per pipeline: an earlier one still on probation ends first (it can only
      // be an earlier update of this model: they are queued).
      const before = p.variant.variant;
      // One batch for an update put back after a restart: it served its probation before, and an
      // update staged behind it waits for its probation to end.
      const outcome = await p.slot.swap({ session, variant: entry.variant, sha256: c.sha256, entry }, c.restored ? 1 : this.o.config.healthBatches, () =>
        this.step({ ...at, state: 'active', reason: `serving in place of ${before} since its first batch` }),
      ).catch((err: unknown) => {
        // Not swapped at all (the pipeline closed meanwhile): the session was never the slot's.
        void session.dispose().catch(() => undefined);
        return { state: 'rolled-back' as const, reason: err instanceof Error ? err.message : String(err) };
      });
      if (this.closed) return;
      if (outcome.state === 'rolled-back') {
        this.refuse({ ...at, state: 'rolled-back' }, new EdgeInferError('E_UPDATE', `${p.name}: ${outcome.reason}`));
        continue;
      }
      this.serving.set(p, c.sha256);
      swappedAny = true;
    }
    // Staged files go with a refusal, unless they are what a pipeline serves (a duplicate of the
    // update that put them in service: same sha256, same path).
    if (!swappedAny && !this.o.pipelines.some((p) => p.variant.file === staged.file)) await unstage(staged).catch(() => undefined);
  }

  /** Agreement on the newest recorded windows: a summary of the figures, or the reason it fails. */
  private async agrees(p: Pipeline, entry: VariantEntry, session: ModelSession): Promise<{ summary: string } | string> {
    const a = this.o.config.agreement;
    const windows = this.o.store.windows(entry.id, { limit: a.windows });
    if (windows.length < a.minWindows) return `the log holds ${windows.length} recorded window(s) of model '${entry.id}', the agreement check needs at least ${a.minWindows} (modelUpdates.agreement.minWindows; pipelines record every recordEvery-th window)`;
    const { figures, problem } = await compareOnWindows(p.variant.card, p.session, session, windows, a);
    if (problem) return problem;
    return { summary: `agrees with ${p.variant.variant} on ${(figures.labelAgreement * 100).toFixed(1)} % of ${figures.windows} recorded windows, largest score difference ${figures.maxScoreDelta.toPrecision(3)}` };
  }

  private refuse(at: Omit<ModelUpdateRecord, 'timeMs' | 'state' | 'reason'> & { state?: UpdateState }, err: unknown): void {
    const reason = err instanceof Error ? err.message : String(err);
    this.step({ ...at, state: at.state ?? 'refused', reason });
    this.o.report(err instanceof EdgeInferError ? err : new EdgeInferError('E_UPDATE', reason, { cause: err }));
  }

  /** Logs one step and publishes it (retained) on the model's status topic. */
  private step(r: Omit<ModelUpdateRecord, 'timeMs'>): void {
    const record: ModelUpdateRecord = { ...r, timeMs: Date.now() };
    try {
      this.log.add(record);
    } catch (err) {
      this.o.report(err);
    }
    const topic = modelTopic(this.o.config.status, r.model || '_unknown');
    this.o.publish({ topic, payload: JSON.stringify(statusOf(record)), qos: 1, retain: true }).catch((err: unknown) => this.o.report(err));
    this.emit('status', record);
  }

  /** Stops the watcher and takes no more updates; queued ones that have not begun are dropped (they stay staged). */
  async close(): Promise<void> {
    this.closed = true;
    await this.watcher?.stop();
  }

  /** Resolves when the updates under way have ended (after the pipelines closed: a probation ends with them). */
  async settled(): Promise<void> {
    await Promise.all(this.queues.values());
  }
}

/** A staged update's files, its model checked to still hash to what the log recorded. */
async function readStaged(staged: Staged, sha256: string): Promise<{ onnx: Buffer; cardText: string }> {
  const [onnx, cardText] = await Promise.all([fs.readFile(staged.file), fs.readFile(staged.cardFile, 'utf8')]);
  if (sha256Hex(onnx) !== sha256) throw new EdgeInferError('E_UPDATE', `${staged.file}: the staged model no longer hashes to ${sha256}`);
  return { onnx, cardText };
}
