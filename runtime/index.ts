// edge-infer's library API: the engine, model cards and the registry, quantization and the FP8
// codec, ONNX files, streams' features, windows and pipeline, the gateway and its result log,
// evaluation, and the errors they raise.
export * from './engine';
export * from './model';
export * from './quant';
export * from './stream';
export * from './eval';
export { ResultStore } from './store';
export { Gateway } from './gateway/gateway';
export type { GatewayOptions } from './gateway/gateway';
export { parseGatewayConfig, loadGatewayConfig } from './gateway/config';
export type { GatewayConfig, PipelineConfig } from './gateway/config';
export { EdgeInferError, isEdgeInferError } from './errors';
// Model hot-swap: what a publisher needs to build and sign an update.
export { UPDATE_FORMAT, encodeUpdatePayload, updateManifest, verifyManifest, parsePublicKey } from './hotswap';
export type { UpdatePayload } from './hotswap';
export type { ErrorCode } from './errors';
export {
  DataType, GraphBuilder, decodeModel, encodeModel, readModelFile, writeModelFile, graphStats, opsetList, metadataOf, tensorValues, makeTensor, floatTensor,
} from './onnx';
export type { ModelProto, GraphProto, NodeProto, TensorProto, ElementType } from './onnx';
export { bundledModelsDir } from './paths';
// Fine-tuning a device's anomaly model on its recorded healthy windows (the per-device serving's contract).
export { fineTune, FINE_TUNE_DEFAULTS, FINE_TUNE_TARGETS, taughtWindowsOf, openLogReadOnly } from './finetune';
export type { FineTuneRequest, FineTuneSettings, FineTuneOptions, FineTuneProgress, FineTuneReport, VariantCheck, TaughtSet } from './finetune';
