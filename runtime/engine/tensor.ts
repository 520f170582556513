// The engine's tensor: plain data, dims and element type, the same whatever backend runs it.
import { EdgeInferError } from '../errors';
import type { ElementType, TensorValues } from '../onnx';

/** The typed arrays tensor data comes in: the same set as ONNX initializer values. */
export type TensorArray = TensorValues;

export interface TensorData {
  readonly type: ElementType;
  readonly data: TensorArray;
  readonly dims: readonly number[];
}

/** Input feeds or outputs by tensor name. */
export type TensorMap = Record<string, TensorData>;

/** A float32 tensor; the shape defaults to a flat vector. */
export function float32(data: ArrayLike<number>, dims: readonly number[] = [data.length]): TensorData {
  return { type: 'float32', data: data instanceof Float32Array ? data : Float32Array.from(data), dims: [...dims] };
}

/** Element count of a shape. */
export function sizeOf(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

const TYPED_ARRAY_TYPES: Array<[new (...a: never[]) => TensorArray, ElementType[]]> = [
  [Float32Array, ['float32']],
  [Float64Array, ['float64']],
  [Int8Array, ['int8']],
  [Uint8Array, ['uint8', 'bool', 'float8e4m3fn', 'float8e4m3fnuz', 'float8e5m2', 'float8e5m2fnuz']],
  [Int16Array, ['int16']],
  [Uint16Array, ['uint16', 'float16', 'bfloat16']],
  [Int32Array, ['int32']],
  [Uint32Array, ['uint32']],
  [BigInt64Array, ['int64']],
  [BigUint64Array, ['uint64']],
];

/** A zero-filled array of `n` elements of an element type (float16 and FP8 as their raw bits). */
export function arrayFor(type: ElementType, n: number): TensorArray {
  for (const [ctor, types] of TYPED_ARRAY_TYPES) if (types.includes(type)) return new (ctor as unknown as new (n: number) => TensorArray)(n);
  throw new EdgeInferError('E_ARGUMENT', `no typed array holds ${type} elements`);
}

/** The element types a typed array can carry ('float32' for Float32Array, ...). */
export function elementTypesOfArray(data: unknown): ElementType[] {
  for (const [ctor, types] of TYPED_ARRAY_TYPES) if (data instanceof ctor) return types;
  return [];
}
