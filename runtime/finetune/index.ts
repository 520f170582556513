// runtime/finetune: a device's anomaly autoencoder fine-tuned on its own healthy windows, on
// the gateway: the windows a teach-in learns are recorded in the log, trained on in a worker
// thread from the shipped weights, re-quantized, checked and written as a model folder.
export { fineTune, FINE_TUNE_TARGETS } from './fine-tune';
export type { FineTuneOptions, FineTunePhase, FineTuneProgress, FineTuneReport, ScoreSummary } from './fine-tune';
export { FINE_TUNE_DEFAULTS, settingsOf } from './request';
export type { FineTuneRequest, FineTuneSettings } from './request';
export type { VariantCheck } from './check';
export { TaughtWindows, TAUGHT_WINDOWS_MAX, TAUGHT_WINDOWS_GROUP } from './recorder';
export type { RecorderOptions, RecorderStats } from './recorder';
export { taughtWindowsOf, openLogReadOnly } from './log';
export type { TaughtSet } from './log';
export { readAutoencoder, withWeights } from './autoencoder';
export type { Autoencoder, DenseLayer } from './autoencoder';
