import { EdgeInferError } from '../../errors';
import { nativeBackend } from './native';
import type { Backend, BackendChoice, BackendName } from './types';
import { wasmBackend } from './wasm';

export type { Backend, BackendChoice, BackendName, BackendSession, BackendSessionOptions } from './types';

const BACKENDS: Record<BackendName, Backend> = { wasm: wasmBackend, native: nativeBackend };

// onnxruntime-web and onnxruntime-node share one registry of backends, and the first to register
// the name 'cpu' keeps it: loaded after onnxruntime-web, onnxruntime-node's sessions would quietly
// run on WebAssembly. So onnxruntime-node (where it is installed) is loaded first, now.
nativeBackend.unavailableReason();

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'wasm', 'native'];

/** The backends that can run on this machine, in order of preference for 'auto'. */
export function availableBackends(): BackendName[] {
  return (['native', 'wasm'] as const).filter((b) => BACKENDS[b].unavailableReason() === null);
}

/** Why a backend cannot run on this machine (onnxruntime-node missing, its load error), or null when it can. */
export function unavailableReason(name: BackendName): string | null {
  const backend = BACKENDS[name];
  if (!backend) throw new EdgeInferError('E_ARGUMENT', `backend must be one of ${Object.keys(BACKENDS).join(', ')}, got '${String(name)}'`);
  return backend.unavailableReason();
}

/**
 * The backend for a choice. 'auto' takes native where onnxruntime-node loads, else wasm.
 * Asking for native where it cannot run is an error that says why, not a silent fallback.
 */
export function resolveBackend(choice: BackendChoice = 'auto'): Backend {
  if (choice === 'auto') return nativeBackend.unavailableReason() === null ? nativeBackend : wasmBackend;
  const backend = BACKENDS[choice as BackendName];
  if (!backend) throw new EdgeInferError('E_ARGUMENT', `backend must be one of ${BACKEND_CHOICES.join(', ')}, got '${String(choice)}'`);
  const why = backend.unavailableReason();
  if (why) throw new EdgeInferError('E_BACKEND', `backend '${choice}' cannot run here: ${why}`);
  return backend;
}
