// onnxruntime-node: the native CPU build, faster where its prebuilt binary exists for the board.
// It is an optional dependency, so its absence is a reason, not a crash.
import type { Backend, BackendSession, BackendSessionOptions } from './types';
import { type OrtModule, OrtBackendSession, sessionExtra } from './ort-session';

let ortNode: OrtModule | undefined;
let loadError: string | undefined;

function tryLoad(): OrtModule | undefined {
  if (ortNode || loadError) return ortNode;
  try {
    ortNode = require('onnxruntime-node') as OrtModule;
  } catch (err) {
    loadError = `onnxruntime-node is not installed or has no binary for ${process.platform}-${process.arch} (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`;
  }
  return ortNode;
}

export const nativeBackend: Backend = {
  name: 'native',
  unavailableReason: () => (tryLoad() ? null : (loadError ?? 'onnxruntime-node is not available')),
  effectiveThreads: (requested: number) => Math.max(1, requested),
  async createSession(model: Uint8Array, options: BackendSessionOptions): Promise<BackendSession> {
    const mod = tryLoad();
    if (!mod) throw new Error(loadError);
    // 'cpu' resolves to onnxruntime-node's backend only when onnxruntime-node registered it
    // first (see ./index); the handler check turns the other case into an error.
    return OrtBackendSession.create(mod, model, {
      executionProviders: ['cpu'],
      intraOpNumThreads: Math.max(1, options.threads),
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      extra: sessionExtra(options.config),
    }, /^OnnxruntimeSessionHandler$/);
  },
};
