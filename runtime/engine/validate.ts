// Checks feeds against the model's declared inputs before they reach the runtime, so that a
// bad window fails with a message that names the input, what was expected and what came,
// instead of an opaque error from inside onnxruntime (or, worse, a silently wrong score).
import { EdgeInferError } from '../errors';
import { type DimSpec, type ModelSignature, type TensorSpec, formatShape } from './signature';
import { type TensorData, type TensorMap, elementTypesOfArray, sizeOf } from './tensor';

const FLOAT_TYPES = new Set(['float32', 'float64']);

function describe(t: TensorData): string {
  return `${t.type} [${t.dims.join(', ')}]`;
}

/**
 * Σ (v − v) over a float32 tensor: 0 when every value is finite, NaN otherwise. Four sums, so that
 * each addition need not wait for the one before it: three times the speed of one sum. Float32
 * only, so the loop stays specialised to one array type (a second type halves its speed).
 */
function nonFiniteSum32(data: Float32Array): number {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const whole = data.length - (data.length % 4);
  let i = 0;
  for (; i < whole; i += 4) {
    a += data[i] - data[i];
    b += data[i + 1] - data[i + 1];
    c += data[i + 2] - data[i + 2];
    d += data[i + 3] - data[i + 3];
  }
  for (; i < data.length; i++) a += data[i] - data[i];
  return a + b + c + d;
}

/**
 * The first non-finite value of a float tensor, or -1. Every input passes through here, so the
 * common case is one branch-free pass: v − v is 0 for a finite v and NaN for NaN or ±Infinity.
 */
function firstNonFinite(data: Float32Array | Float64Array): number {
  let acc = 0;
  if (data instanceof Float32Array) acc = nonFiniteSum32(data);
  else for (let i = 0; i < data.length; i++) acc += data[i] - data[i];
  if (acc === 0) return -1;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}

/** Position of a flat index in a shape, for messages: [0, 2, 17]. */
function positionOf(index: number, dims: readonly number[]): string {
  const pos: number[] = [];
  for (let i = dims.length - 1; i >= 0; i--) {
    pos.unshift(index % dims[i]);
    index = Math.floor(index / dims[i]);
  }
  return `[${pos.join(', ')}]`;
}

/** Checks one tensor against its spec; `bindings` carries dynamic dims across inputs. */
export function validateTensor(spec: TensorSpec, t: TensorData, bindings: Map<string, { size: number; input: string }>, where = ''): void {
  const at = `${where}input '${spec.name}'`;
  if (!t || typeof t !== 'object' || !('data' in t) || !('dims' in t)) {
    throw new EdgeInferError('E_INPUT_DTYPE', `${at}: expected a tensor {type, data, dims}, got ${t === null ? 'null' : typeof t}`);
  }
  if (spec.type !== 'unknown' && t.type !== spec.type) {
    throw new EdgeInferError('E_INPUT_DTYPE', `${at}: expected ${spec.type} ${formatShape(spec.shape)}, got ${describe(t)}`);
  }
  if (!elementTypesOfArray(t.data).includes(t.type)) {
    throw new EdgeInferError('E_INPUT_DTYPE', `${at}: the data is a ${t.data?.constructor?.name ?? typeof t.data}, which cannot hold ${t.type}`);
  }
  if (!Array.isArray(t.dims) || t.dims.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new EdgeInferError('E_INPUT_SHAPE', `${at}: dims must be non-negative integers, got [${String(t.dims)}]`);
  }
  if (sizeOf(t.dims) !== t.data.length) {
    throw new EdgeInferError('E_INPUT_SHAPE', `${at}: dims [${t.dims.join(', ')}] hold ${sizeOf(t.dims)} values, the data has ${t.data.length}`);
  }
  if (spec.shape !== null) {
    if (t.dims.length !== spec.shape.length) {
      throw new EdgeInferError('E_INPUT_SHAPE', `${at}: expected rank ${spec.shape.length} ${formatShape(spec.shape)}, got rank ${t.dims.length} [${t.dims.join(', ')}]`);
    }
    spec.shape.forEach((want: DimSpec, axis) => {
      const got = t.dims[axis];
      if (typeof want === 'number' && got !== want) {
        throw new EdgeInferError('E_INPUT_SHAPE', `${at}: expected ${formatShape(spec.shape)}, got [${t.dims.join(', ')}] (axis ${axis} must be ${want})`);
      }
      if (typeof want === 'string') {
        const bound = bindings.get(want);
        if (bound && bound.size !== got) {
          throw new EdgeInferError('E_INPUT_SHAPE', `${at}: dimension '${want}' (axis ${axis}) is ${got}, but input '${bound.input}' gave it ${bound.size}`);
        }
        bindings.set(want, { size: got, input: spec.name });
      }
    });
  }
  if (FLOAT_TYPES.has(t.type)) {
    const bad = firstNonFinite(t.data as Float32Array | Float64Array);
    if (bad >= 0) {
      throw new EdgeInferError('E_INPUT_VALUE', `${at}: value at ${positionOf(bad, t.dims)} is ${t.data[bad]}; inputs must be finite numbers`);
    }
  }
}

/**
 * Checks a whole set of feeds: every declared input present, nothing undeclared, types,
 * ranks, fixed dims, dynamic dims that agree across inputs, finite values.
 * `where` prefixes messages (for example "window 3: ").
 */
export function validateFeeds(signature: ModelSignature, feeds: TensorMap, where = ''): void {
  if (!feeds || typeof feeds !== 'object') {
    throw new EdgeInferError('E_INPUT_MISSING', `${where}expected an object of input tensors by name, got ${feeds === null ? 'null' : typeof feeds}`);
  }
  const declared = new Set(signature.inputs.map((i) => i.name));
  for (const name of Object.keys(feeds)) {
    if (!declared.has(name)) {
      throw new EdgeInferError('E_INPUT_UNKNOWN', `${where}input '${name}' is not an input of this model (it takes ${[...declared].map((n) => `'${n}'`).join(', ')})`);
    }
  }
  const bindings = new Map<string, { size: number; input: string }>();
  for (const spec of signature.inputs) {
    const t = feeds[spec.name];
    if (t === undefined) {
      throw new EdgeInferError('E_INPUT_MISSING', `${where}input '${spec.name}' is missing: expected ${spec.type} ${formatShape(spec.shape)}`);
    }
    validateTensor(spec, t, bindings, where);
  }
}
