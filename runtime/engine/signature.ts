// What a model declares it takes and gives: names, element types and shapes with their
// dynamic dimensions, read from the ONNX graph itself so that every backend agrees.
import { elementTypeName, type ElementType, type ModelProto, type ValueInfoProto, toNumber } from '../onnx';

/** A dimension: a fixed size, or the name of a dynamic one ('batch'), or null when unnamed. */
export type DimSpec = number | string | null;

export interface TensorSpec {
  readonly name: string;
  readonly type: ElementType | 'unknown';
  /** null when the model does not declare a shape at all. */
  readonly shape: readonly DimSpec[] | null;
}

export interface ModelSignature {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
}

function specOf(v: ValueInfoProto): TensorSpec {
  const tt = v.type?.tensor_type;
  const dims = tt?.shape?.dim;
  return {
    name: v.name ?? '',
    type: elementTypeName(tt?.elem_type ?? 0),
    shape: tt?.shape === undefined || tt?.shape === null ? null : (dims ?? []).map((d): DimSpec => {
      if (d.dim_param) return d.dim_param;
      if (d.dim_value !== undefined && d.dim_value !== null && toNumber(d.dim_value) > 0) return toNumber(d.dim_value);
      return null;
    }),
  };
}

/** The model's inputs (initializers excluded, as IR < 4 lists them as inputs) and outputs. */
export function signatureOf(model: ModelProto): ModelSignature {
  const graph = model.graph ?? {};
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  return {
    inputs: (graph.input ?? []).filter((i) => !initializers.has(i.name)).map(specOf),
    outputs: (graph.output ?? []).map(specOf),
  };
}

/** Writes a shape the way error messages and `inspect` show it: [batch, 3, 256]. */
export function formatShape(shape: readonly DimSpec[] | null): string {
  if (shape === null) return '[any]';
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/** True when the first dimension is dynamic, so windows can be stacked into one run. */
export function hasDynamicBatch(spec: TensorSpec): boolean {
  return spec.shape !== null && spec.shape.length > 0 && typeof spec.shape[0] !== 'number';
}
