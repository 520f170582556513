// Models: the model card, and the registry of a models directory that picks a variant by policy.
export * from './card';
export { ModelRegistry } from './registry';
export type { RegistryOptions, RegistryEvents } from './registry';
export { findCard, readVariant } from './variant';
export { checkCardAgainstModel } from './check';
export type { VariantEntry, ModelEntry, CardFound } from './variant';
export type { BrokenModel, RemovedVariant, RegistryChanges } from './catalog';
export { DEFAULT_POLICY, parsePolicy, pickVariant, formatPolicy } from './policy';
export type { Policy, PolicyCandidate } from './policy';
export { cardFileFor, findModelFiles } from './files';
export type { ModelFileFound } from './files';
export { interpret, interpretOutputs, normalLabel } from './interpret';
export type { Interpretation } from './interpret';
