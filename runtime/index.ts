// edge-infer's library API: the engine, model cards and the registry, ONNX files, streams'
// features and windows, evaluation, and the errors they raise.
export * from './engine';
export * from './model';
export * from './stream';
export * from './eval';
export { EdgeInferError, isEdgeInferError } from './errors';
export type { ErrorCode } from './errors';
export {
  DataType, GraphBuilder, decodeModel, encodeModel, readModelFile, writeModelFile, graphStats, opsetList, metadataOf, tensorValues, makeTensor, floatTensor,
} from './onnx';
export type { ModelProto, GraphProto, NodeProto, TensorProto, ElementType } from './onnx';
export { bundledModelsDir } from './paths';
