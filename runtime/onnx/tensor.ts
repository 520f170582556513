// Initializer tensors: reading their values out of a TensorProto and making new ones.
import { EdgeInferError } from '../errors';
import { DataType, type TensorProto, toNumber } from './schema';

/** Element type names as onnxruntime's JS API spells them. */
export type ElementType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'bfloat16'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool'
  | 'string'
  | 'float8e4m3fn'
  | 'float8e4m3fnuz'
  | 'float8e5m2'
  | 'float8e5m2fnuz'
  | 'int4'
  | 'uint4';

const ELEMENT_TYPES: Partial<Record<DataType, ElementType>> = {
  [DataType.FLOAT]: 'float32',
  [DataType.DOUBLE]: 'float64',
  [DataType.FLOAT16]: 'float16',
  [DataType.BFLOAT16]: 'bfloat16',
  [DataType.INT8]: 'int8',
  [DataType.UINT8]: 'uint8',
  [DataType.INT16]: 'int16',
  [DataType.UINT16]: 'uint16',
  [DataType.INT32]: 'int32',
  [DataType.UINT32]: 'uint32',
  [DataType.INT64]: 'int64',
  [DataType.UINT64]: 'uint64',
  [DataType.BOOL]: 'bool',
  [DataType.STRING]: 'string',
  [DataType.FLOAT8E4M3FN]: 'float8e4m3fn',
  [DataType.FLOAT8E4M3FNUZ]: 'float8e4m3fnuz',
  [DataType.FLOAT8E5M2]: 'float8e5m2',
  [DataType.FLOAT8E5M2FNUZ]: 'float8e5m2fnuz',
  [DataType.INT4]: 'int4',
  [DataType.UINT4]: 'uint4',
};

/**
 * Bytes per element in raw_data. The 4-bit (and 2-bit) types pack several elements per byte and
 * have no entry: elementBytes gives 0 for them, and tensorValues and makeTensor refuse them.
 */
const ELEMENT_BYTES: Partial<Record<DataType, number>> = {
  [DataType.FLOAT]: 4,
  [DataType.DOUBLE]: 8,
  [DataType.FLOAT16]: 2,
  [DataType.BFLOAT16]: 2,
  [DataType.INT8]: 1,
  [DataType.UINT8]: 1,
  [DataType.INT16]: 2,
  [DataType.UINT16]: 2,
  [DataType.INT32]: 4,
  [DataType.UINT32]: 4,
  [DataType.INT64]: 8,
  [DataType.UINT64]: 8,
  [DataType.BOOL]: 1,
  [DataType.FLOAT8E4M3FN]: 1,
  [DataType.FLOAT8E4M3FNUZ]: 1,
  [DataType.FLOAT8E5M2]: 1,
  [DataType.FLOAT8E5M2FNUZ]: 1,
};

/** The onnxruntime name of an ONNX element type ('float32' for FLOAT, ...). */
export function elementTypeName(dataType: number): ElementType | 'unknown' {
  return ELEMENT_TYPES[dataType as DataType] ?? 'unknown';
}

/** The ONNX element type of an onnxruntime type name; throws E_ARGUMENT for unknown names. */
export function dataTypeOf(name: ElementType): DataType {
  for (const [code, n] of Object.entries(ELEMENT_TYPES)) if (n === name) return Number(code) as DataType;
  throw new EdgeInferError('E_ARGUMENT', `unknown element type '${name}'`);
}

/** Bytes one element of this type takes in raw_data; 0 when the type has no fixed width. */
export function elementBytes(dataType: number): number {
  return ELEMENT_BYTES[dataType as DataType] ?? 0;
}

/** The dims of a tensor as plain numbers. */
export function tensorDims(t: TensorProto): number[] {
  return (t.dims ?? []).map(toNumber);
}

/** Number of elements (1 for a scalar). */
export function tensorSize(t: TensorProto): number {
  return tensorDims(t).reduce((a, b) => a * b, 1);
}

export type TensorValues =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/**
 * A copy of `bytes` in an ArrayBuffer of its own, so a typed array can view it aligned. (A
 * Node Buffer's slice() is a view into a shared pool, not a copy.)
 */
function aligned(bytes: Uint8Array): ArrayBuffer {
  return new Uint8Array(bytes).buffer as ArrayBuffer;
}

/**
 * The values of an initializer as a typed array of its element type. FP8 and bfloat16/float16
 * values come back as their raw codes (Uint8Array / Uint16Array); decode them with the FP8 codec
 * or as half floats. External data is not supported: models here are self-contained files.
 */
export function tensorValues(t: TensorProto): TensorValues {
  const dt = (t.data_type ?? 0) as DataType;
  const n = tensorSize(t);
  const where = `tensor '${t.name ?? ''}'`;
  if (t.data_location === 1 || (t.external_data && t.external_data.length > 0)) {
    throw new EdgeInferError('E_MODEL_UNSUPPORTED', `${where} keeps its data in an external file; edge-infer needs self-contained models`);
  }
  const raw = t.raw_data;
  if (raw && raw.length > 0) {
    const width = elementBytes(dt);
    if (width === 0) throw new EdgeInferError('E_MODEL_UNSUPPORTED', `${where} has element type ${elementTypeName(dt)} in raw_data, which edge-infer cannot read`);
    if (raw.length !== n * width) {
      throw new EdgeInferError('E_MODEL_CORRUPT', `${where} has ${raw.length} bytes of raw_data, expected ${n * width} for dims [${tensorDims(t).join(', ')}]`);
    }
    const buf = aligned(raw);
    // ONNX raw_data is little-endian, as is every platform Node runs on that we target.
    switch (dt) {
      case DataType.FLOAT: return new Float32Array(buf);
      case DataType.DOUBLE: return new Float64Array(buf);
      case DataType.INT8: return new Int8Array(buf);
      case DataType.INT16: return new Int16Array(buf);
      case DataType.INT32: return new Int32Array(buf);
      case DataType.UINT32: return new Uint32Array(buf);
      case DataType.INT64: return new BigInt64Array(buf);
      case DataType.UINT64: return new BigUint64Array(buf);
      case DataType.FLOAT16:
      case DataType.BFLOAT16:
      case DataType.UINT16: return new Uint16Array(buf);
      default: return new Uint8Array(buf); // uint8, bool, FP8 codes
    }
  }
  switch (dt) {
    case DataType.FLOAT: return checkCount(Float32Array.from(t.float_data ?? []), n, where);
    case DataType.DOUBLE: return checkCount(Float64Array.from(t.double_data ?? []), n, where);
    case DataType.INT64: return checkCount(BigInt64Array.from((t.int64_data ?? []).map((v) => BigInt(toNumber(v)))), n, where);
    case DataType.UINT64: return checkCount(BigUint64Array.from((t.uint64_data ?? []).map((v) => BigInt(toNumber(v)))), n, where);
    case DataType.INT32: return checkCount(Int32Array.from(t.int32_data ?? []), n, where);
    case DataType.INT8: return checkCount(Int8Array.from(t.int32_data ?? []), n, where);
    case DataType.INT16: return checkCount(Int16Array.from(t.int32_data ?? []), n, where);
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16: return checkCount(Uint16Array.from(t.int32_data ?? []), n, where);
    case DataType.UINT8:
    case DataType.BOOL:
    case DataType.FLOAT8E4M3FN:
    case DataType.FLOAT8E4M3FNUZ:
    case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ: return checkCount(Uint8Array.from(t.int32_data ?? []), n, where);
    default:
      throw new EdgeInferError('E_MODEL_UNSUPPORTED', `${where} has element type ${elementTypeName(dt)}, which edge-infer cannot read`);
  }
}

function checkCount<T extends TensorValues>(values: T, n: number, where: string): T {
  if (values.length !== n) throw new EdgeInferError('E_MODEL_CORRUPT', `${where} holds ${values.length} values, its dims say ${n}`);
  return values;
}

/** The values of a float tensor (FLOAT or DOUBLE) as Float32Array; throws for other types. */
export function floatValues(t: TensorProto): Float32Array {
  const v = tensorValues(t);
  if (v instanceof Float32Array) return v;
  if (v instanceof Float64Array) return Float32Array.from(v);
  throw new EdgeInferError('E_ARGUMENT', `tensor '${t.name ?? ''}' is ${elementTypeName(t.data_type ?? 0)}, not float`);
}

/** A tensor with its values in raw_data, the compact form every exporter writes. */
export function makeTensor(name: string, dataType: DataType, dims: readonly number[], values: TensorValues): TensorProto {
  const n = dims.reduce((a, b) => a * b, 1);
  if (values.length !== n) {
    throw new EdgeInferError('E_ARGUMENT', `tensor '${name}': ${values.length} values do not fill dims [${dims.join(', ')}] (${n} elements)`);
  }
  const width = elementBytes(dataType);
  if (width === 0) throw new EdgeInferError('E_ARGUMENT', `tensor '${name}': element type ${elementTypeName(dataType)} cannot be written as raw_data`);
  if (values.BYTES_PER_ELEMENT !== width) {
    throw new EdgeInferError('E_ARGUMENT', `tensor '${name}': values are ${values.BYTES_PER_ELEMENT}-byte elements, ${elementTypeName(dataType)} takes ${width}`);
  }
  return {
    dims: [...dims],
    data_type: dataType,
    name,
    raw_data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice(),
  };
}

/** A float32 tensor. */
export function floatTensor(name: string, dims: readonly number[], values: ArrayLike<number>): TensorProto {
  return makeTensor(name, DataType.FLOAT, dims, values instanceof Float32Array ? values : Float32Array.from(values));
}

/** An int64 tensor (shapes, axes, indices). */
export function int64Tensor(name: string, dims: readonly number[], values: readonly number[]): TensorProto {
  return makeTensor(name, DataType.INT64, dims, BigInt64Array.from(values.map((v) => BigInt(v))));
}
