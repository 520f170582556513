import type { TensorMap } from '../tensor';

/** The backends edge-infer runs models on. */
export type BackendName = 'wasm' | 'native';
/** What a user asks for: a backend by name, or 'auto' (native where installed, else wasm). */
export type BackendChoice = BackendName | 'auto';

export interface BackendSessionOptions {
  /** Threads for one run's operators. */
  threads: number;
  /** onnxruntime session configuration entries ('session.disable_quant_qdq': '1', ...). */
  config?: Record<string, string>;
}

/** One loaded model on one backend. */
export interface BackendSession {
  /** Runs the model; feeds are already validated. Returns every output by name. */
  run(feeds: TensorMap): Promise<TensorMap>;
  release(): Promise<void>;
}

/** A way to run ONNX models: onnxruntime-web's WASM build, or onnxruntime-node. */
export interface Backend {
  readonly name: BackendName;
  /** Why this backend cannot run here, or null when it can. */
  unavailableReason(): string | null;
  /** Threads a session really gets when `requested` are asked for (WASM fixes them per process). */
  effectiveThreads(requested: number): number;
  createSession(model: Uint8Array, options: BackendSessionOptions): Promise<BackendSession>;
}
