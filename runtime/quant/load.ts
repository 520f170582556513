// How a low-bit variant's weights are held once loaded: `compact` keeps them at one byte and
// dequantizes at every run (least memory); `fast` dequantizes them once, at load (fp32 speed).
import type { ModelProto } from '../onnx';
import { foldConstantDequantize } from './fold';

export type WeightLoading = 'compact' | 'fast';
export const WEIGHT_LOADINGS: readonly WeightLoading[] = ['compact', 'fast'];

/** The `prepare` hook of ModelSession.load for a loading mode (none for compact: run as stored). */
export function preparerFor(mode: WeightLoading): ((model: ModelProto) => ModelProto) | undefined {
  return mode === 'fast' ? (model) => foldConstantDequantize(model).model : undefined;
}
