// onnxruntime-web and onnxruntime-node share one JS API (onnxruntime-common); this wraps a
// session of either into the engine's BackendSession.
import type * as ort from 'onnxruntime-common';
import { EdgeInferError } from '../../errors';
import type { ElementType } from '../../onnx';
import type { TensorArray, TensorMap } from '../tensor';
import type { BackendSession } from './types';

/** The parts of an onnxruntime module the engine uses. */
export interface OrtModule {
  InferenceSession: typeof ort.InferenceSession;
  Tensor: typeof ort.Tensor;
}

/**
 * Idle pool threads sleep instead of spinning: on a gateway the cores are shared with the MQTT
 * client, SQLite and Node-RED, and a spinning pool starves them (and any other model's session).
 */
const NO_SPINNING: Record<string, string> = { 'session.intra_op.allow_spinning': '0', 'session.inter_op.allow_spinning': '0' };

/** Session configuration entries as the `extra` option takes them: nested by the dots of their keys. */
export function sessionExtra(config: Record<string, string> = {}): Record<string, unknown> {
  const extra: Record<string, unknown> = {};
  for (const [key, value] of Object.entries({ ...NO_SPINNING, ...config })) {
    const parts = key.split('.');
    let node = extra;
    for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Record<string, unknown>;
    node[parts[parts.length - 1]] = value;
  }
  return extra;
}

export class OrtBackendSession implements BackendSession {
  private constructor(
    private readonly module: OrtModule,
    private readonly session: ort.InferenceSession,
  ) {}

  /**
   * `handler` names the session handler class the session must get: proof that the backend
   * asked for is the one that runs it (see the note on the shared registry in ./index).
   */
  static async create(module: OrtModule, model: Uint8Array, options: ort.InferenceSession.SessionOptions, handler?: RegExp): Promise<OrtBackendSession> {
    let session: ort.InferenceSession;
    try {
      // onnxruntime's own logger prints each failure raw on stderr (colour codes, C++ file and
      // line) before returning it; the engine's errors carry its reason in our words, so only a
      // fatal one, which ends the process before any error could be returned, is left to it.
      session = await module.InferenceSession.create(model, { logSeverityLevel: 4, ...options });
    } catch (err) {
      throw new EdgeInferError('E_MODEL_UNSUPPORTED', `onnxruntime cannot load the model: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const got = (session as unknown as { handler?: { constructor?: { name?: string } } }).handler?.constructor?.name ?? '';
    if (handler && !handler.test(got)) {
      await session.release();
      throw new EdgeInferError('E_BACKEND', `onnxruntime gave this session to ${got || 'another backend'}: onnxruntime-web was loaded before onnxruntime-node; import edge-infer before onnxruntime-web`);
    }
    return new OrtBackendSession(module, session);
  }

  async run(feeds: TensorMap): Promise<TensorMap> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      ortFeeds[name] = new this.module.Tensor(t.type as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.dims);
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      // Quiet for the same reason as at create: onnxruntime-web logs a run's failure with the run's level.
      results = await this.session.run(ortFeeds, { logSeverityLevel: 4 });
    } catch (err) {
      throw new EdgeInferError('E_RUN', `the model failed while running: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const out: TensorMap = {};
    for (const [name, t] of Object.entries(results)) {
      out[name] = { type: t.type as ElementType, data: t.data as TensorArray, dims: [...t.dims] };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
