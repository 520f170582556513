// Model hot-swap: updates from MQTT or the models directory, staged, checked and swapped between
// batches, with rollback. See the README's "Model hot-swap".
export { HotSwap } from './manager';
export type { HotSwapOptions } from './manager';
export { UPDATE_FORMAT, encodeUpdatePayload, parseUpdatePayload } from './update-message';
export type { UpdateCandidate, UpdatePayload } from './update-message';
export { parsePublicKey, sha256Hex, updateManifest, verifyManifest } from './signature';
export { cardMismatch, compareOnWindows } from './checks';
export type { AgreementBounds, AgreementFigures } from './checks';
export { stageUpdate, stagedPaths, unstage } from './staging';
export { DropWatcher } from './watch';
export { modelFilter, modelOfTopic, modelTopic, statusOf } from './status';
export type { UpdateStatus } from './status';
