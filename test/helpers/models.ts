// Tiny real ONNX models for tests, written with the project's graph builder.
import { GraphBuilder, encodeModel } from '../../runtime/onnx';

/** y = x · Wᵀ + b with W = [[1,2],[3,4],[5,6]], b = [0,0,1]: x [batch, 2] → y [batch, 3]. */
export function gemmModel(opts: { batch?: number | string; metadata?: Record<string, string> } = {}): Uint8Array {
  const g = new GraphBuilder('gemm');
  const batch = opts.batch ?? 'batch';
  const x = g.input('x', 'float32', [batch, 2]);
  const y = g.op1('Gemm', [x, g.weight('w', [3, 2], [1, 2, 3, 4, 5, 6]), g.weight('b', [3], [0, 0, 1])], { transB: 1 });
  g.output(y, 'float32', [batch, 3], 'y');
  return encodeModel(g.build({ metadata: opts.metadata }));
}

/** Two inputs sharing the dynamic 'batch' dim: sum = a + b, both [batch, 4]. */
export function twoInputModel(): Uint8Array {
  const g = new GraphBuilder('two-inputs');
  const a = g.input('a', 'float32', ['batch', 4]);
  const b = g.input('b', 'float32', ['batch', 4]);
  g.output(g.op1('Add', [a, b]), 'float32', ['batch', 4], 'sum');
  return encodeModel(g.build());
}

/**
 * A model that fails at run time for some inputs: it gathers row round(x[0]) of a 4-row table,
 * so x[0] ≥ 4 makes onnxruntime refuse (index out of bounds). x: [batch, 1] → y: [batch, 1, 2].
 */
export function gatherModel(): Uint8Array {
  const g = new GraphBuilder('gather');
  const x = g.input('x', 'float32', ['batch', 1]);
  const idx = g.op1('Cast', [x], { to: 7 });
  const table = g.weight('table', [4, 2], [0, 1, 10, 11, 20, 21, 30, 31]);
  g.output(g.op1('Gather', [table, idx], { axis: 0 }), 'float32', ['batch', 1, 2], 'y');
  return encodeModel(g.build());
}

/** x [batch, time] → y [batch, 1], the sum over time: windows of different lengths all run. */
export function sumOverTimeModel(): Uint8Array {
  const g = new GraphBuilder('sum-over-time');
  const x = g.input('x', 'float32', ['batch', 'time']);
  g.output(g.op1('ReduceSum', [x, g.int64('axes', [1])], { keepdims: 1 }), 'float32', ['batch', 1], 'y');
  return encodeModel(g.build());
}

/** Inputs of several element types (float64, int8, int64), for synthetic feeds and warm-up. */
export function mixedTypesModel(): Uint8Array {
  const g = new GraphBuilder('mixed-types');
  const a = g.input('a', 'float64', ['batch', 2]);
  const b = g.input('b', 'int8', ['batch', 2]);
  const c = g.input('c', 'int64', ['batch', 2]);
  const sum = g.op1('Add', [g.op1('Add', [g.op1('Cast', [a], { to: 1 }), g.op1('Cast', [b], { to: 1 })]), g.op1('Cast', [c], { to: 1 })]);
  g.output(sum, 'float32', ['batch', 2], 'y');
  return encodeModel(g.build());
}

/** Gathers row x + 100 of a 4-row table: zeros (as warm-up feeds) are out of range, x = -98 is row 2. */
export function failsOnZerosModel(): Uint8Array {
  const g = new GraphBuilder('fails-on-zeros');
  const x = g.input('x', 'float32', ['batch', 1]);
  const idx = g.op1('Cast', [g.op1('Add', [x, g.weight('offset', [1], [100])])], { to: 7 });
  const table = g.weight('table', [4, 2], [0, 1, 10, 11, 20, 21, 30, 31]);
  g.output(g.op1('Gather', [table, idx], { axis: 0 }), 'float32', ['batch', 1, 2], 'y');
  return encodeModel(g.build());
}

/** y = log(x − 2): a finite score for x > 2, NaN below (a model whose output can be NaN). x [batch, 1] → y [batch, 1]. */
export function logModel(): Uint8Array {
  const g = new GraphBuilder('log');
  const x = g.input('x', 'float32', ['batch', 1]);
  g.output(g.op1('Log', [g.op1('Sub', [x, g.weight('two', [1], [2])])]), 'float32', ['batch', 1], 'y');
  return encodeModel(g.build());
}

/**
 * gatherModel() with its last output dim left unnamed in size ('classes'): a card can claim any
 * number of labels, and only the run shows that the model gives 2 values.
 */
export function unsizedClassesModel(): Uint8Array {
  const g = new GraphBuilder('unsized-classes');
  const x = g.input('x', 'float32', ['batch', 1]);
  const idx = g.op1('Cast', [x], { to: 7 });
  const table = g.weight('table', [4, 2], [0, 1, 10, 11, 20, 21, 30, 31]);
  g.output(g.op1('Gather', [table, idx], { axis: 0 }), 'float32', ['batch', 1, 'classes'], 'y');
  return encodeModel(g.build());
}
