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

export class OrtBackendSession implements BackendSession {
  private constructor(
    private readonly module: OrtModule,
    private readonly session: ort.InferenceSession,
  ) {}

  static async create(module: OrtModule, model: Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<OrtBackendSession> {
    try {
      return new OrtBackendSession(module, await module.InferenceSession.create(model, options));
    } catch (err) {
      throw new EdgeInferError('E_MODEL_UNSUPPORTED', `onnxruntime cannot load the model: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  async run(feeds: TensorMap): Promise<TensorMap> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      ortFeeds[name] = new this.module.Tensor(t.type as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.dims);
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await this.session.run(ortFeeds);
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
