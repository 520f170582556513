// onnxruntime-node: the native CPU build, faster where its prebuilt binary exists for the board.
// It is an optional dependency, so its absence is a reason, not a crash.
import type { Backend, BackendSession, BackendSessionOptions } from './types';
import { type OrtModule, OrtBackendSession, sessionExtra } from './ort-session';

/** The onnxruntime-node versions edge-infer is built against (its optional peer dependency). */
export const NATIVE_RANGE = '~1.30.0';

let ortNode: OrtModule | undefined;
let loadError: string | undefined;

function tryLoad(): OrtModule | undefined {
  if (ortNode || loadError) return ortNode;
  try {
    ortNode = require('onnxruntime-node') as OrtModule;
  } catch (err) {
    const first = err instanceof Error ? err.message.split('\n')[0] : String(err);
    // Not installed is the usual case in a Node-RED user directory (it is an optional peer
    // dependency, left out so that no install downloads anything): say how to add it.
    const missing = (err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && /'onnxruntime-node'/.test(first);
    loadError = missing
      ? `onnxruntime-node is not installed (add it with ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@${NATIVE_RANGE} where edge-infer is installed)`
      : `onnxruntime-node did not load on ${process.platform}-${process.arch}: ${first}`;
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
