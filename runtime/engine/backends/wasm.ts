// onnxruntime-web's WebAssembly build (SIMD, multi-threaded): runs on every ARM and x86 board.
import * as os from 'node:os';
import type { Backend, BackendSession, BackendSessionOptions } from './types';
import { type OrtModule, OrtBackendSession, sessionExtra } from './ort-session';

type OrtWeb = OrtModule & { env: { wasm: { numThreads?: number } } };

let ortWeb: OrtWeb | undefined;
/** The thread count the WASM module was started with; it cannot change afterwards. */
let startedThreads: number | undefined;

function load(): OrtWeb {
  ortWeb ??= require('onnxruntime-web') as OrtWeb;
  return ortWeb;
}

export const wasmBackend: Backend = {
  name: 'wasm',
  unavailableReason: () => null,
  effectiveThreads(requested: number): number {
    return startedThreads ?? Math.max(1, Math.min(requested, os.availableParallelism()));
  },
  async createSession(model: Uint8Array, options: BackendSessionOptions): Promise<BackendSession> {
    const web = load();
    // onnxruntime-web reads numThreads once, when its WASM module starts; later sessions share
    // that pool, so the first session's request decides for the process.
    if (startedThreads === undefined) {
      startedThreads = Math.max(1, Math.min(options.threads, os.availableParallelism()));
      web.env.wasm.numThreads = startedThreads;
    }
    return OrtBackendSession.create(web, model, { executionProviders: ['wasm'], graphOptimizationLevel: 'all', extra: sessionExtra(options.config) });
  },
};
