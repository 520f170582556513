import { describe, expect, it } from 'vitest';
import { GraphBuilder, decodeModel, encodeModel } from '../../runtime/onnx';

describe('onnx io', () => {
  it('should write a built model and read it back byte for byte', () => {
    const g = new GraphBuilder('tiny');
    const x = g.input('x', 'float32', ['batch', 2]);
    const y = g.op1('Gemm', [x, g.weight('w', [3, 2], [1, 2, 3, 4, 5, 6]), g.weight('b', [3], [0, 0, 1])], { transB: 1 });
    g.output(y, 'float32', ['batch', 3], 'y');
    const bytes = encodeModel(g.build());
    expect(Buffer.from(encodeModel(decodeModel(bytes))).equals(Buffer.from(bytes))).toBe(true);
  });
});
