// ONNX files: the protobuf schema (current, with FP8 types), reading, writing, a graph builder.
export * from './schema';
export * from './tensor';
export * from './io';
export * from './builder';
export * from './inspect';
