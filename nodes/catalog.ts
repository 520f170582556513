// The models the nodes offer. With the package's example models, that is two folders: the
// examples (inside node_modules: often read-only, and replaced by every npm update) and the
// variants made on this gateway by the Quantize button, kept in the Node-RED user directory.
// With a models directory of the user's own (settings.js), just that folder, variants included.
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { EdgeInferError } from '../runtime/errors';
import { type BrokenModel, type ModelEntry, ModelRegistry, PRECISIONS, type Policy, type VariantEntry, DEFAULT_POLICY, pickVariant } from '../runtime/model';
import { bundledModelsDir } from '../runtime/paths';

/** Where the Quantize button writes variants of the example models, in the Node-RED user directory. */
export const GATEWAY_MODELS_FOLDER = 'edge-infer-models';

const EVENTS = ['added', 'changed', 'removed', 'broken', 'repaired'] as const;

export class ModelCatalog extends EventEmitter {
  private constructor(
    private readonly registries: readonly ModelRegistry[],
    /** Where new variants go (in a folder per model); undefined: next to the model's fp32 file. */
    readonly variantsDir: string | undefined,
  ) {
    super();
    for (const r of registries) for (const event of EVENTS) r.on(event, (payload: unknown) => this.emit(event, payload));
  }

  /** A catalog with no models, for when the models directory cannot be read. */
  static empty(): ModelCatalog {
    return new ModelCatalog([], undefined);
  }

  /**
   * The models directory `modelsDir` (default: the example models); with the example models, also
   * `<userDir>/edge-infer-models`, created when missing, where the gateway's own variants go.
   * Throws when `modelsDir` is not a models directory. `warn` hears of a variants folder that
   * cannot be made.
   */
  static async open(modelsDir: string | undefined, userDir: string, warn: (message: string) => void): Promise<ModelCatalog> {
    if (modelsDir !== undefined && typeof modelsDir !== 'string') throw new EdgeInferError('E_ARGUMENT', `expected a folder path, got ${JSON.stringify(modelsDir)}`);
    const dir = path.resolve(modelsDir ?? bundledModelsDir());
    const main = await ModelRegistry.open(dir, { watch: true });
    if (dir !== path.resolve(bundledModelsDir())) return new ModelCatalog([main], undefined);
    const variantsDir = path.join(userDir, GATEWAY_MODELS_FOLDER);
    try {
      mkdirSync(variantsDir, { recursive: true });
      return new ModelCatalog([main, await ModelRegistry.open(variantsDir, { watch: true })], variantsDir);
    } catch (err) {
      warn(`${variantsDir}: ${err instanceof Error ? err.message : String(err)}; variants made by the Quantize button cannot be kept`);
      return new ModelCatalog([main], variantsDir);
    }
  }

  /** The folders scanned, in order: a variant name found in an earlier one wins. */
  get dirs(): string[] {
    return this.registries.map((r) => r.dir);
  }

  /** Every model with at least one servable variant, by id; variants fp32 first, then by precision and name. */
  models(): ModelEntry[] {
    const byId = new Map<string, VariantEntry[]>();
    for (const r of this.registries) {
      for (const m of r.models()) {
        const variants = byId.get(m.id) ?? [];
        for (const v of m.variants) if (!variants.some((x) => x.variant === v.variant)) variants.push(v);
        byId.set(m.id, variants);
      }
    }
    const rank = (v: VariantEntry): number => PRECISIONS.indexOf(v.precision);
    return [...byId.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([id, variants]) => {
        const sorted = variants.sort((a, b) => rank(a) - rank(b) || a.variant.localeCompare(b.variant));
        const reference = sorted.find((v) => v.precision === 'fp32') ?? sorted[0];
        return { id, title: reference.card.title, task: reference.card.task, variants: sorted };
      });
  }

  get(id: string): ModelEntry {
    const models = this.models();
    const model = models.find((m) => m.id === id);
    if (model) return model;
    const where = this.registries.length ? this.dirs.join(' and ') : 'the catalog (the models directory could not be read)';
    throw new EdgeInferError('E_REGISTRY', `no model '${id}' in ${where} (${models.length ? `known: ${models.map((m) => m.id).join(', ')}` : 'it holds no servable models'})`);
  }

  pick(id: string, policy: Policy | string = DEFAULT_POLICY): VariantEntry {
    return pickVariant(this.get(id).variants, policy);
  }

  errors(): BrokenModel[] {
    return this.registries.flatMap((r) => r.errors());
  }

  /** Scans every folder now; the events fire for what changed. */
  async rescan(): Promise<void> {
    await Promise.all(this.registries.map((r) => r.rescan()));
  }

  async close(): Promise<void> {
    await Promise.all(this.registries.map((r) => r.close()));
  }
}
