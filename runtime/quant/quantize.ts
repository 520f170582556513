// One entry for every quantization method: int8 (static, calibrated), int8-dynamic, and
// weight-only FP8 E4M3 / E5M2; the quantized model carries its card, mirrored in metadata_props.
import type { TensorMap } from '../engine';
import { EdgeInferError } from '../errors';
import { CARD_METADATA_KEY, type ModelCard, type Precision, parseCard } from '../model';
import type { ModelProto } from '../onnx';
import type { CalibrationMethod } from './calibrate';
import type { VariantComparison } from './compare';
import { quantizeDynamic } from './dynamic';
import { compactFusedBiases, describeFusions, fuseTransformer } from './fuse';
import { defaultReduceRange } from './reduce-range';
import { quantizeStatic } from './static';
import { quantizeWeightsOnly } from './weight-only';

export const QUANT_TARGETS = ['int8', 'int8-dynamic', 'fp8-e4m3', 'fp8-e5m2'] as const;
export type QuantTarget = (typeof QUANT_TARGETS)[number];

export interface QuantizeRequest {
  model: ModelProto;
  to: QuantTarget;
  /** Static int8: windows to calibrate on, and how. */
  calibration?: { windows: readonly TensorMap[]; source: string; method: CalibrationMethod };
  /** FP8: scales per block of this many weights along the reduction axis (default: per channel). */
  blockSize?: number;
  /** int8 and int8-dynamic: weights within ±64, for x86 kernels without VNNI (default: defaultReduceRange(), this machine's need). */
  reduceRange?: boolean;
  /** int8-dynamic: first rewrite attention and GELU into onnxruntime's contrib kernels and LayerNorms into elementwise operators, for its WASM build (runtime/quant/fuse; default true). */
  fuse?: boolean;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface QuantizeResult {
  model: ModelProto;
  /** What stayed fp32, and why. */
  notices: string[];
  /** How it was made, in words, for the card. */
  method: string;
}

export function isQuantTarget(value: string): value is QuantTarget {
  return (QUANT_TARGETS as readonly string[]).includes(value);
}

export function precisionOf(target: QuantTarget): Precision {
  return target === 'int8-dynamic' ? 'int8' : target;
}

/** Quantizes a model by the chosen method. */
export async function quantizeModel(request: QuantizeRequest): Promise<QuantizeResult> {
  const { to } = request;
  if (!isQuantTarget(to)) throw new EdgeInferError('E_ARGUMENT', `--to must be one of ${QUANT_TARGETS.join(', ')}, got '${String(to)}'`);
  if (request.blockSize !== undefined && !to.startsWith('fp8')) throw new EdgeInferError('E_ARGUMENT', `block-wise scales are for the FP8 formats, not ${to}`);
  if (request.reduceRange !== undefined && !to.startsWith('int8')) throw new EdgeInferError('E_ARGUMENT', `the reduced weight range is for int8 and int8-dynamic, not ${to}`);
  if (request.fuse !== undefined && to !== 'int8-dynamic') throw new EdgeInferError('E_ARGUMENT', `the transformer rewrites are for int8-dynamic, not ${to}`);
  const reduceRange = request.reduceRange ?? defaultReduceRange();
  const weights = reduceRange ? 'int8 weights within ±64 (reduced range, for x86 without VNNI)' : 'int8 weights';
  switch (to) {
    case 'int8': {
      const cal = request.calibration;
      if (!cal || cal.windows.length === 0) throw new EdgeInferError('E_ARGUMENT', 'static int8 needs calibration windows (--calibrate)');
      const out = await quantizeStatic(request.model, { windows: cal.windows, method: cal.method, reduceRange, onProgress: request.onProgress, signal: request.signal });
      return { model: out.model, notices: out.notices, method: `static int8 QDQ: ${weights} per output channel, uint8 activations calibrated (${cal.method}), int32 biases` };
    }
    case 'int8-dynamic': {
      const fused = request.fuse === false ? undefined : fuseTransformer(request.model);
      const out = quantizeDynamic(fused?.model ?? request.model, { reduceRange });
      if (fused) compactFusedBiases(out.model);
      const fusions = fused ? describeFusions(fused.fused) : '';
      return { model: out.model, notices: [...(fused?.notices ?? []), ...out.notices], method: `dynamic int8: ${weights} per output channel, activations quantized at run time (DynamicQuantizeLinear + MatMulInteger)${fusions}` };
    }
    default: {
      const format = to === 'fp8-e4m3' ? 'e4m3fn' : 'e5m2';
      const out = quantizeWeightsOnly(request.model, { format, blockSize: request.blockSize });
      const scales = request.blockSize ? `per block of ${request.blockSize} along the reduction axis` : 'per output channel';
      return { model: out.model, notices: out.notices, method: `weight-only FP8 ${format.toUpperCase()}: weights stored as FP8 with float scales ${scales}, dequantized for fp32 arithmetic` };
    }
  }
}

/** The card of a quantized variant: the fp32 card with its precision, method, calibration and agreement. */
export function variantCard(fp32: ModelCard, to: QuantTarget, result: QuantizeResult, calibration: { source: string; windows: number; method?: string } | undefined, comparison?: VariantComparison): ModelCard {
  const metrics: Record<string, number> = {};
  if (comparison?.metric) {
    metrics[comparison.metric.name] = Number(comparison.metric.variant.toFixed(4));
    metrics.heldOutWindows = comparison.windows;
  }
  return parseCard(
    {
      ...fp32,
      variant: to,
      precision: precisionOf(to),
      metrics,
      quantization: {
        method: result.method,
        ...(calibration ? { calibration } : {}),
        ...(comparison
          ? {
              agreement: {
                top1: Number(comparison.top1.toFixed(4)),
                cosine: Number(comparison.cosine.toFixed(6)),
                maxAbsError: Number(comparison.maxAbsError.toPrecision(4)),
                meanAbsError: Number(comparison.meanAbsError.toPrecision(4)),
                ...(comparison.metric ? { metricDelta: Number(comparison.metric.delta.toFixed(4)) } : {}),
                windows: comparison.windows,
              },
            }
          : {}),
      },
    },
    `${fp32.id} ${to} card`,
  );
}

/** Puts the card into the model's metadata_props, replacing an older one. */
export function embedCard(model: ModelProto, card: ModelCard): ModelProto {
  model.metadata_props = [...(model.metadata_props ?? []).filter((p) => p.key !== CARD_METADATA_KEY), { key: CARD_METADATA_KEY, value: JSON.stringify(card) }];
  return model;
}
