// A small graph builder: enough to write the example models and test fixtures as ONNX,
// with names that read like the model's layers.
import { EdgeInferError } from '../errors';
import { AttributeType, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './schema';
import { type ElementType, dataTypeOf, floatTensor, int64Tensor } from './tensor';

/** A float attribute written as FLOAT even when its value is a whole number. */
export interface FloatAttr { readonly float: number }
/** A list attribute written as FLOATS. */
export interface FloatsAttr { readonly floats: readonly number[] }

/** Attribute values: integers become INT, other numbers FLOAT, strings STRING, arrays INTS/STRINGS. */
export type AttrValue = number | string | readonly number[] | readonly string[] | TensorProto | FloatAttr | FloatsAttr | { graph: GraphProto };

export const float = (v: number): FloatAttr => ({ float: v });
export const floats = (v: readonly number[]): FloatsAttr => ({ floats: v });

const utf8 = new TextEncoder();

function attribute(name: string, v: AttrValue): AttributeProto {
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: AttributeType.INT, i: v } : { name, type: AttributeType.FLOAT, f: v };
  if (typeof v === 'string') return { name, type: AttributeType.STRING, s: utf8.encode(v) };
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'string')) return { name, type: AttributeType.STRINGS, strings: (v as string[]).map((s) => utf8.encode(s)) };
    const nums = v as number[];
    return nums.every(Number.isInteger) ? { name, type: AttributeType.INTS, ints: [...nums] } : { name, type: AttributeType.FLOATS, floats: [...nums] };
  }
  if ('float' in (v as object)) return { name, type: AttributeType.FLOAT, f: (v as FloatAttr).float };
  if ('floats' in (v as object)) return { name, type: AttributeType.FLOATS, floats: [...(v as FloatsAttr).floats] };
  if ('graph' in (v as object)) return { name, type: AttributeType.GRAPH, g: (v as { graph: GraphProto }).graph };
  return { name, type: AttributeType.TENSOR, t: v as TensorProto };
}

/** A dimension: a fixed size, or a name for a dynamic one ('batch'). */
export type Dim = number | string;

export function valueInfo(name: string, type: ElementType, shape: readonly Dim[]): ValueInfoProto {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: dataTypeOf(type),
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

/**
 * IR version by default-domain opset (index 0 is opset 1), from the ONNX release that introduced
 * each opset (onnx.helper's VERSION_TABLE): opsets 1-8 came with IR 3, 9 with 4, 10 with 5, 11
 * with 6, 12-14 with 7, 15-18 with 8, 19-20 with 9, 21-22 with 10, 23 with 11.
 */
const IR_VERSION_OF_OPSET = [3, 3, 3, 3, 3, 3, 3, 3, 4, 5, 6, 7, 7, 7, 8, 8, 8, 8, 9, 9, 10, 10, 11];

/** The lowest IR version a model of this opset can declare; opset 23 is the last this schema knows. */
export function irVersionFor(opset: number): number {
  const ir = IR_VERSION_OF_OPSET[opset - 1];
  if (!Number.isInteger(opset) || ir === undefined) throw new EdgeInferError('E_ARGUMENT', `opset ${opset}: edge-infer knows the IR versions of opsets 1 to ${IR_VERSION_OF_OPSET.length}`);
  return ir;
}

export interface BuildOptions {
  /** Opset per domain; '' is the default ONNX domain. Default: { '': 17 }. */
  opsets?: Record<string, number>;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  /** Written to metadata_props (the model card goes here as JSON under 'edge-infer.card'). */
  metadata?: Record<string, string>;
}

export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly names = new Set<string>();
  private counter = 0;

  constructor(readonly name: string) {}

  /** A unique value name starting with `base`. */
  fresh(base: string): string {
    let n = base;
    while (this.names.has(n)) n = `${base}_${++this.counter}`;
    this.names.add(n);
    return n;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new EdgeInferError('E_ARGUMENT', `graph '${this.name}': the name '${name}' is used twice`);
    this.names.add(name);
    return name;
  }

  /** Declares a graph input and returns its value name. */
  input(name: string, type: ElementType, shape: readonly Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), type, shape));
    return name;
  }

  /** Declares `value` a graph output; with `as`, an Identity gives it the public name. */
  output(value: string, type: ElementType, shape: readonly Dim[], as?: string): string {
    let name = value;
    if (as && as !== value) name = this.op('Identity', [value], {}, { outputs: [as] })[0];
    this.outputs.push(valueInfo(name, type, shape));
    return name;
  }

  /** Adds a prepared initializer tensor (its name must be unique). */
  initializer(t: TensorProto): string {
    const name = t.name ? this.claim(t.name) : this.fresh('init');
    this.initializers.push({ ...t, name });
    return name;
  }

  /** Adds an initializer under a fresh name derived from `base` (constants shared by layers). */
  private constant(base: string, t: TensorProto): string {
    const name = this.fresh(base);
    this.initializers.push({ ...t, name });
    return name;
  }

  /** A float32 weight. */
  weight(name: string, dims: readonly number[], values: ArrayLike<number>): string {
    return this.initializer(floatTensor(name, dims, values));
  }

  /** An int64 constant (shapes, axes). */
  int64(name: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.constant(name, int64Tensor(name, dims, values));
  }

  /** A float32 scalar constant. */
  scalar(name: string, value: number): string {
    return this.constant(name, floatTensor(name, [], [value]));
  }

  /**
   * Adds a node and returns its output names. `outputs` is a count (names are made up from the
   * op type) or the exact names. An empty input name '' leaves an optional input out.
   */
  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, opts: { outputs?: number | readonly string[]; name?: string; domain?: string } = {}): string[] {
    const outNames = Array.isArray(opts.outputs)
      ? (opts.outputs as string[]).map((o) => this.claim(o))
      : Array.from({ length: (opts.outputs as number | undefined) ?? 1 }, () => this.fresh(`${opts.name ?? opType.toLowerCase()}_out`));
    for (const i of inputs) {
      if (i !== '' && !this.names.has(i)) throw new EdgeInferError('E_ARGUMENT', `graph '${this.name}': ${opType} reads '${i}', which nothing defines`);
    }
    const node: NodeProto = {
      input: [...inputs],
      output: outNames,
      name: opts.name ? this.fresh(opts.name) : this.fresh(`${opType}_${this.nodes.length}`),
      op_type: opType,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    };
    if (opts.domain) node.domain = opts.domain;
    this.nodes.push(node);
    return outNames;
  }

  /** Adds a node with one output and returns that output's name. */
  op1(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, opts: { name?: string; domain?: string; output?: string } = {}): string {
    return this.op(opType, inputs, attrs, { ...opts, outputs: opts.output ? [opts.output] : 1 })[0];
  }

  graph(): GraphProto {
    return { node: this.nodes, name: this.name, initializer: this.initializers, input: this.inputs, output: this.outputs };
  }

  build(opts: BuildOptions = {}): ModelProto {
    const opsets = opts.opsets ?? { '': 17 };
    if (this.outputs.length === 0) throw new EdgeInferError('E_ARGUMENT', `graph '${this.name}' has no outputs`);
    const model: ModelProto = {
      ir_version: irVersionFor(opsets[''] ?? 17),
      opset_import: Object.entries(opsets).map(([domain, version]) => ({ domain, version })),
      producer_name: opts.producerName ?? 'edge-infer',
      producer_version: opts.producerVersion ?? '0.1.0',
      graph: this.graph(),
    };
    if (opts.docString) model.doc_string = opts.docString;
    if (opts.metadata) model.metadata_props = Object.entries(opts.metadata).map(([key, value]) => ({ key, value }));
    return model;
  }
}
