// How a weight-only variant's weights are held once loaded: `compact` keeps them at one byte
// and dequantizes at every run (least memory); `fast` has onnxruntime dequantize them once, at
// load, by folding the weights' DequantizeLinear nodes into constants (fp32 speed).
import type { SessionOptions } from '../engine';
import type { Precision } from '../model';

export type WeightLoading = 'compact' | 'fast';
export const WEIGHT_LOADINGS: readonly WeightLoading[] = ['compact', 'fast'];

/**
 * Session options for a variant loaded in a mode. Only weight-only (FP8) variants change:
 * folding the DequantizeLinear of an int8 QDQ model would take it off the integer kernels.
 */
export function loadOptionsFor(precision: Precision | string, mode: WeightLoading): Pick<SessionOptions, 'sessionConfig'> {
  if (mode === 'fast' && precision.startsWith('fp8')) {
    // QDQ handling off: onnxruntime's constant folding then computes the weights' DequantizeLinear.
    return { sessionConfig: { 'session.disable_quant_qdq': '1' } };
  }
  return {};
}
