// An editable view of an ONNX graph for the quantizer: who produces and who consumes each
// tensor, which tensors are constants, fresh names, and node insertion that keeps the node
// list in topological order.
import { EdgeInferError } from '../errors';
import { type AttributeProto, AttributeType, DataType, type GraphProto, type ModelProto, type NodeProto, type TensorProto, decodeModel, encodeModel, toNumber } from '../onnx';

export class GraphEditor {
  readonly graph: GraphProto;
  readonly initializers = new Map<string, TensorProto>();
  private readonly names = new Set<string>();
  private counter = 0;
  /** Small constants added by addSharedInitializer, by type, dims and bytes. */
  private readonly shared = new Map<string, string>();

  constructor(readonly model: ModelProto) {
    if (!model.graph) throw new EdgeInferError('E_MODEL_CORRUPT', 'the model has no graph');
    this.graph = model.graph;
    this.graph.node ??= [];
    this.graph.initializer ??= [];
    for (const t of this.graph.initializer) if (t.name) this.initializers.set(t.name, t);
    // Names inside If / Loop / Scan bodies too: a fresh name must not shadow one of theirs.
    const collect = (g: GraphProto): void => {
      for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.value_info ?? []), ...(g.initializer ?? [])]) if (v.name) this.names.add(v.name);
      for (const n of g.node ?? []) {
        for (const o of n.output ?? []) this.names.add(o);
        if (n.name) this.names.add(n.name);
        for (const sub of subgraphsOf(n)) collect(sub);
      }
    };
    collect(this.graph);
  }

  get nodes(): NodeProto[] {
    return this.graph.node!;
  }

  /** A name no tensor or node of the graph uses yet. */
  fresh(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  /** The node that produces a tensor, or undefined for graph inputs and initializers. */
  producer(tensor: string): NodeProto | undefined {
    return this.nodes.find((n) => n.output?.includes(tensor));
  }

  /**
   * Nodes that read a tensor: directly, or from inside their subgraphs (an If branch or a Loop
   * body reads values of the graph around it without listing them as inputs).
   */
  consumers(tensor: string): NodeProto[] {
    return this.nodes.filter((n) => reads(n, tensor));
  }

  isGraphOutput(tensor: string): boolean {
    return (this.graph.output ?? []).some((o) => o.name === tensor);
  }

  /** The constant value of a tensor: an initializer, or the output of a Constant node. */
  constant(tensor: string): TensorProto | undefined {
    const init = this.initializers.get(tensor);
    if (init) return init;
    const p = this.producer(tensor);
    if (p?.op_type === 'Constant') return p.attribute?.find((a) => a.name === 'value' && a.t)?.t;
    return undefined;
  }

  addInitializer(t: TensorProto): string {
    const name = t.name && !this.names.has(t.name) ? t.name : this.fresh(t.name ?? 'init');
    this.names.add(name);
    const named = { ...t, name };
    this.graph.initializer!.push(named);
    this.initializers.set(name, named);
    return name;
  }

  /**
   * Adds a small constant (up to 256 bytes), or gives the name of an identical one added here
   * before: the zero points of the weights of one width, and the scales and zero points of
   * activations with one range (a tensor and its Reshape), are then one initializer each.
   */
  addSharedInitializer(t: TensorProto): string {
    const raw = t.raw_data;
    if (!raw || raw.length > 256) return this.addInitializer(t);
    const key = `${t.data_type}:${(t.dims ?? []).join('x')}:${Buffer.from(raw).toString('base64')}`;
    const known = this.shared.get(key);
    // A shared constant may since have been removed with its last reader.
    if (known && this.initializers.has(known)) return known;
    const name = this.addInitializer(t);
    this.shared.set(key, name);
    return name;
  }

  /** Adds an initializer under exactly its name: the tensor takes over from a node that made it. */
  setInitializer(t: TensorProto & { name: string }): string {
    this.names.add(t.name);
    this.graph.initializer = this.graph.initializer!.filter((x) => x.name !== t.name);
    this.graph.initializer.push(t);
    this.initializers.set(t.name, t);
    return t.name;
  }

  /**
   * Removes an initializer: the tensor, and its entry in graph.input, where exporters that keep
   * initializers as inputs (IR < 4 style) list it. The name stays taken.
   */
  removeInitializer(name: string): void {
    this.initializers.delete(name);
    this.graph.initializer = this.graph.initializer!.filter((t) => t.name !== name);
    if (this.graph.input) this.graph.input = this.graph.input.filter((i) => i.name !== name);
  }

  /** Drops an initializer that nothing reads any more, subgraphs included. */
  dropInitializerIfUnused(name: string): void {
    if (!this.initializers.has(name) || this.consumers(name).length > 0 || this.isGraphOutput(name)) return;
    this.removeInitializer(name);
  }

  /** Inserts a node right before `before` (or at the start), keeping producers ahead of readers. */
  insertBefore(before: NodeProto | undefined, node: NodeProto): NodeProto {
    node.name ??= this.fresh(node.op_type ?? 'node');
    const at = before ? this.nodes.indexOf(before) : 0;
    this.nodes.splice(at < 0 ? this.nodes.length : at, 0, node);
    return node;
  }

  /** Inserts a node right after the producer of `tensor` (or at the start for inputs and constants). */
  insertAfterProducerOf(tensor: string, node: NodeProto): NodeProto {
    node.name ??= this.fresh(node.op_type ?? 'node');
    const p = this.producer(tensor);
    const at = p ? this.nodes.indexOf(p) + 1 : 0;
    this.nodes.splice(at, 0, node);
    return node;
  }

  removeNode(node: NodeProto): void {
    const i = this.nodes.indexOf(node);
    if (i >= 0) this.nodes.splice(i, 1);
  }

  /** Makes every reader of `from` (except `except`) read `to` instead. */
  rewire(from: string, to: string, except?: NodeProto): void {
    for (const n of this.nodes) {
      if (n === except || !n.input) continue;
      n.input = n.input.map((i) => (i === from ? to : i));
    }
  }

  /**
   * Turns Constant nodes that hold a tensor into initializers of the same name. PyTorch's
   * exporter often puts weights and shapes in Constant nodes; as initializers the quantizer
   * finds them like any other weight.
   */
  constantsToInitializers(): number {
    let n = 0;
    for (const node of [...this.nodes]) {
      if (node.op_type !== 'Constant' || (node.domain && node.domain !== 'ai.onnx')) continue;
      const t = node.attribute?.find((a) => a.name === 'value')?.t;
      const out = node.output?.[0];
      if (!t || !out) continue;
      this.removeNode(node);
      this.setInitializer({ ...t, name: out });
      n++;
    }
    return n;
  }

  /**
   * The element type of the tensors of the graph: declared inputs, outputs, value_info and
   * initializers first, then forward through the nodes, typing only the outputs whose type the
   * operator fixes (see outputTypes). Anything else stays absent: a wrong type would send an
   * int64 or bool tensor to calibration as a float.
   */
  elementTypes(): Map<string, number> {
    const types = new Map<string, number>();
    for (const v of [...(this.graph.input ?? []), ...(this.graph.value_info ?? []), ...(this.graph.output ?? [])]) {
      const t = v.type?.tensor_type?.elem_type;
      if (v.name && t) types.set(v.name, t);
    }
    for (const [name, t] of this.initializers) if (t.data_type) types.set(name, t.data_type);
    for (const node of this.nodes) {
      const known = outputTypes(node, (name) => types.get(name));
      (node.output ?? []).forEach((o, i) => {
        if (o && !types.has(o) && known[i]) types.set(o, known[i]!);
      });
    }
    return types;
  }

  /**
   * Reorders nodes so that every node comes after the producers of its inputs, counting what an
   * If / Loop / Scan body reads from around it as an input of that node.
   */
  sortTopologically(): void {
    const available = new Set<string>([...(this.graph.input ?? []).map((i) => i.name ?? ''), ...this.initializers.keys(), '']);
    const produced = new Set(this.nodes.flatMap((m) => m.output ?? []));
    const needs = new Map(this.nodes.map((n) => [n, [...(n.input ?? []), ...subgraphsOf(n).flatMap(namesRead)].filter((x) => produced.has(x))]));
    const pending = [...this.nodes];
    const sorted: NodeProto[] = [];
    while (pending.length) {
      const i = pending.findIndex((n) => needs.get(n)!.every((x) => available.has(x)));
      if (i < 0) throw new EdgeInferError('E_MODEL_UNSUPPORTED', `graph '${this.graph.name ?? ''}' has a cycle around node '${pending[0].name ?? pending[0].op_type}'`);
      const [n] = pending.splice(i, 1);
      for (const o of n.output ?? []) available.add(o);
      sorted.push(n);
    }
    this.graph.node = sorted;
  }
}

/** The subgraphs a node carries: If's branches, Loop's and Scan's bodies. */
export function subgraphsOf(node: NodeProto): GraphProto[] {
  const out: GraphProto[] = [];
  for (const a of node.attribute ?? []) {
    if (a.g) out.push(a.g);
    for (const g of a.graphs ?? []) out.push(g);
  }
  return out;
}

/** Every name the nodes of a graph (and of the graphs inside them) read, and its outputs. */
function namesRead(graph: GraphProto): string[] {
  return [...(graph.output ?? []).map((o) => o.name ?? ''), ...(graph.node ?? []).flatMap((n) => [...(n.input ?? []), ...subgraphsOf(n).flatMap(namesRead)])];
}

/** True when a node reads `tensor`, as an input or from inside one of its subgraphs (ONNX names are unique across scopes, so no inner name hides it). */
function reads(node: NodeProto, tensor: string): boolean {
  if (node.input?.includes(tensor)) return true;
  return subgraphsOf(node).some((g) => (g.output ?? []).some((o) => o.name === tensor) || (g.node ?? []).some((n) => reads(n, tensor)));
}

/** Single-output operators whose output is not of their first input's type, or not one this module can tell. */
const UNTYPED_OPS = new Set([
  'If', 'Loop', 'Scan', 'EyeLike', 'RandomNormal', 'RandomNormalLike', 'RandomUniform', 'RandomUniformLike', 'Multinomial', 'Bernoulli',
  'QLinearConv', 'QLinearMatMul', 'TfIdfVectorizer', 'StringNormalizer', 'RegexFullMatch', 'ImageDecoder', 'MelWeightMatrix',
  'HannWindow', 'HammingWindow', 'BlackmanWindow', 'Optional', 'OptionalGetElement', 'OptionalHasElement',
  'SequenceAt', 'SequenceConstruct', 'SequenceEmpty', 'SequenceInsert', 'SequenceErase', 'SequenceLength', 'SplitToSequence', 'ConcatFromSequence', 'SequenceMap',
]);
const COMPARISONS = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);
const INDEX_OPS = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'NonMaxSuppression']);

/** The element type of a Constant node's value, whichever attribute holds it. */
function constantType(node: NodeProto): number | undefined {
  for (const a of node.attribute ?? []) {
    if (a.name === 'value') return a.t?.data_type;
    if (a.name === 'value_float' || a.name === 'value_floats') return DataType.FLOAT;
    if (a.name === 'value_int' || a.name === 'value_ints') return DataType.INT64;
    if (a.name === 'value_string' || a.name === 'value_strings') return DataType.STRING;
  }
  return undefined;
}

/**
 * The element type of each output of a default-domain node, where the operator fixes it; an
 * entry is undefined where it does not, and custom-domain operators give nothing. A node with
 * one output not listed here has its first input's type (elementwise, shape and reduction
 * operators); one with several outputs is typed only when listed.
 */
export function outputTypes(node: NodeProto, typeOf: (tensor: string) => number | undefined): Array<number | undefined> {
  if (node.domain && node.domain !== 'ai.onnx') return [];
  const op = node.op_type ?? '';
  const input = (i: number): number | undefined => {
    const name = node.input?.[i];
    return name ? typeOf(name) : undefined;
  };
  const first = input(0);
  if (INDEX_OPS.has(op)) return [DataType.INT64];
  if (COMPARISONS.has(op)) return [DataType.BOOL];
  switch (op) {
    case 'Cast': return [intAttr(node, 'to', 0) || undefined];
    case 'CastLike': return [input(1)];
    case 'Constant': return [constantType(node)];
    case 'ConstantOfShape': return [node.attribute?.find((a) => a.name === 'value')?.t?.data_type ?? DataType.FLOAT];
    case 'Where': return [input(1)];
    case 'OneHot': return [input(2)];
    // Values, then int64 indices (MaxPool's optional Indices, TopK's, Unique's).
    case 'TopK':
    case 'MaxPool': return [first, DataType.INT64];
    case 'Unique': return [first, DataType.INT64, DataType.INT64, DataType.INT64];
    case 'Dropout': return [first, DataType.BOOL];
    case 'Split': return (node.output ?? []).map(() => first);
    // Mean and InvStdDev are computed in stash_type (float by default).
    case 'LayerNormalization': return [first, intAttr(node, 'stash_type', DataType.FLOAT), intAttr(node, 'stash_type', DataType.FLOAT)];
    case 'QuantizeLinear': return [node.input?.[2] ? input(2) : intAttr(node, 'output_dtype', 0) || DataType.UINT8];
    case 'DequantizeLinear': return [intAttr(node, 'output_dtype', 0) || input(1)];
    case 'DynamicQuantizeLinear': return [DataType.UINT8, DataType.FLOAT, DataType.UINT8];
    case 'MatMulInteger':
    case 'ConvInteger': return [DataType.INT32];
    default: return (node.output?.length ?? 0) === 1 && !UNTYPED_OPS.has(op) ? [first] : [];
  }
}

/** An attribute of a node by name. */
export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

/** An integer attribute, or its default. */
export function intAttr(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a && a.i !== undefined && a.i !== null ? toNumber(a.i) : fallback;
}

/** An integer-list attribute, or undefined. */
export function intsAttr(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a?.type === AttributeType.INTS ? (a.ints ?? []).map(toNumber) : undefined;
}

/** Sets (or replaces) an integer attribute. */
export function setIntAttr(node: NodeProto, name: string, value: number): void {
  node.attribute = [...(node.attribute ?? []).filter((a) => a.name !== name), { name, type: AttributeType.INT, i: value }];
}

/**
 * A deep copy of a model, so that quantizing never changes the caller's fp32 model. Through the
 * protobuf encoding: int64 fields decode as Long objects, which a structured clone would strip.
 */
export function cloneModel(model: ModelProto): ModelProto {
  return decodeModel(encodeModel(model));
}
