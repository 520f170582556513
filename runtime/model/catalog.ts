// What a scan of the models directory amounts to: which variants are fit to serve, which files
// are broken and why, and what changed since the previous scan. Pure functions, no I/O.
import { EdgeInferError } from '../errors';
import { PRECISIONS } from './card';
import { variantDisagreement } from './check';
import type { ModelEntry, VariantEntry } from './variant';

/** A file the registry cannot serve, and why. */
export interface BrokenModel {
  readonly file: string;
  readonly error: EdgeInferError;
}

/** A variant that is no longer served: its file was deleted, renamed, or broke. */
export interface RemovedVariant {
  readonly id: string;
  readonly variant: string;
  readonly file: string;
}

/** What one scan changed. A variant that breaks is both removed and broken; one that heals is added and repaired. */
export interface RegistryChanges {
  readonly added: VariantEntry[];
  readonly changed: VariantEntry[];
  readonly removed: RemovedVariant[];
  readonly broken: BrokenModel[];
  readonly repaired: VariantEntry[];
}

/** One model file as last read: its stamp, and the variant or the reason it is unfit. */
export interface Reading {
  readonly file: string;
  readonly stamp: string;
  readonly result: VariantEntry | EdgeInferError;
}

export interface Catalog {
  /** Served variants by file, with the stamp they were read at. */
  readonly variants: ReadonlyMap<string, { entry: VariantEntry; stamp: string }>;
  /** Broken files (and unreadable folders) by path. */
  readonly broken: ReadonlyMap<string, EdgeInferError>;
}

export const EMPTY_CATALOG: Catalog = { variants: new Map(), broken: new Map() };

/** Which variant the others of its model must agree with: fp32, else the first. */
export function referenceVariant<T extends { precision: string }>(variants: readonly T[]): T {
  return variants.find((v) => v.precision === 'fp32') ?? variants[0];
}

/** Variants already served keep their place against newcomers; the rest go by path. */
function servedFirst(previous: Catalog): (a: Reading, b: Reading) => number {
  return (a, b) => Number(previous.variants.has(b.file)) - Number(previous.variants.has(a.file));
}

/** Sorts out the variants of one model id: duplicates, then disagreements with the reference. */
function settleModel(readings: readonly Reading[], broken: Map<string, EdgeInferError>): VariantEntry[] {
  const byName = new Map<string, VariantEntry>();
  for (const r of readings) {
    const v = r.result as VariantEntry;
    const holder = byName.get(v.variant);
    if (holder) {
      const why = `variant '${v.variant}' of model '${v.id}' is already served from ${holder.file}; give one of the cards its own "variant" name`;
      broken.set(v.file, new EdgeInferError('E_CARD_INVALID', `${v.file}: ${why}`));
    } else byName.set(v.variant, v);
  }
  const kept = [...byName.values()];
  const reference = referenceVariant(kept);
  return kept.filter((v) => {
    const diff = v === reference ? null : variantDisagreement(v.card, reference.card);
    if (diff) {
      const why = `the card disagrees with the ${reference.variant} variant of '${v.id}' (${reference.file}): ${diff}`;
      broken.set(v.file, new EdgeInferError('E_CARD_INVALID', `${v.file}: ${why}`));
    }
    return !diff;
  });
}

/** Builds the catalog of a scan from its readings and the folders it could not read. */
export function settleCatalog(readings: readonly Reading[], problems: readonly BrokenModel[], previous: Catalog): Catalog {
  const broken = new Map<string, EdgeInferError>(problems.map((p) => [p.file, p.error]));
  const byId = new Map<string, Reading[]>();
  for (const r of readings) {
    if (r.result instanceof EdgeInferError) broken.set(r.file, r.result);
    else byId.set(r.result.id, [...(byId.get(r.result.id) ?? []), r]);
  }
  const stamps = new Map(readings.map((r) => [r.file, r.stamp]));
  const variants = new Map<string, { entry: VariantEntry; stamp: string }>();
  for (const group of byId.values()) {
    const ordered = [...group].sort(servedFirst(previous));
    for (const entry of settleModel(ordered, broken)) variants.set(entry.file, { entry, stamp: stamps.get(entry.file) ?? '' });
  }
  return { variants, broken };
}

function removal(v: VariantEntry): RemovedVariant {
  return { id: v.id, variant: v.variant, file: v.file };
}

/** What changed from one catalog to the next. */
export function diffCatalogs(before: Catalog, after: Catalog): RegistryChanges {
  const changes: RegistryChanges = { added: [], changed: [], removed: [], broken: [], repaired: [] };
  for (const [file, was] of before.variants) {
    const now = after.variants.get(file)?.entry;
    if (!now || now.id !== was.entry.id || now.variant !== was.entry.variant) changes.removed.push(removal(was.entry));
  }
  for (const [file, now] of after.variants) {
    const was = before.variants.get(file);
    const same = was && was.entry.id === now.entry.id && was.entry.variant === now.entry.variant;
    if (!same) changes.added.push(now.entry);
    else if (was.stamp !== now.stamp) changes.changed.push(now.entry);
    if (before.broken.has(file)) changes.repaired.push(now.entry);
  }
  for (const [file, error] of after.broken) {
    if (before.broken.get(file)?.message !== error.message) changes.broken.push({ file, error });
  }
  return changes;
}

/** The models of a catalog, by id, each with its variants fp32 first, then by precision and name. */
export function modelsOf(catalog: Catalog): ModelEntry[] {
  const byId = new Map<string, VariantEntry[]>();
  for (const { entry } of catalog.variants.values()) byId.set(entry.id, [...(byId.get(entry.id) ?? []), entry]);
  const rank = (v: VariantEntry) => PRECISIONS.indexOf(v.precision);
  return [...byId.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([id, variants]) => {
      const sorted = variants.sort((a, b) => rank(a) - rank(b) || a.variant.localeCompare(b.variant));
      const reference = referenceVariant(sorted);
      return { id, title: reference.card.title, task: reference.card.task, variants: sorted };
    });
}
