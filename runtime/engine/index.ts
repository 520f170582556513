// The inference engine: ONNX sessions on onnxruntime-web (WASM) or onnxruntime-node.
export { ModelSession, defaultThreads } from './session';
export type { SessionOptions, SessionOrigin, RunResult, WindowOutcome, SessionStats } from './session';
export { availableBackends, resolveBackend, unavailableReason, BACKEND_CHOICES } from './backends';
export type { Backend, BackendChoice, BackendName } from './backends';
export { signatureOf, formatShape, hasDynamicBatch } from './signature';
export type { ModelSignature, TensorSpec, DimSpec } from './signature';
export { validateFeeds } from './validate';
export { float32, sizeOf } from './tensor';
export type { TensorData, TensorMap, TensorArray } from './tensor';
export { benchmarkSession, benchmarkSideBySide, syntheticFeeds, timeSideBySide } from './benchmark';
export type { BenchmarkOptions, BenchmarkResult, SideBySideOptions } from './benchmark';
