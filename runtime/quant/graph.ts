// An editable view of an ONNX graph for the quantizer: who produces and who consumes each
// tensor, which tensors are constants, fresh names, and node insertion that keeps the node
// list in topological order.
import { EdgeInferError } from '../errors';
import { type AttributeProto, AttributeType, type GraphProto, type ModelProto, type NodeProto, type TensorProto, decodeModel, encodeModel, toNumber } from '../onnx';

export class GraphEditor {
  readonly graph: GraphProto;
  readonly initializers = new Map<string, TensorProto>();
  private readonly names = new Set<string>();
  private counter = 0;

  constructor(readonly model: ModelProto) {
    if (!model.graph) throw new EdgeInferError('E_MODEL_CORRUPT', 'the model has no graph');
    this.graph = model.graph;
    this.graph.node ??= [];
    this.graph.initializer ??= [];
    for (const t of this.graph.initializer) if (t.name) this.initializers.set(t.name, t);
    for (const v of [...(this.graph.input ?? []), ...(this.graph.output ?? []), ...(this.graph.value_info ?? [])]) if (v.name) this.names.add(v.name);
    for (const name of this.initializers.keys()) this.names.add(name);
    for (const n of this.graph.node) {
      for (const o of n.output ?? []) this.names.add(o);
      if (n.name) this.names.add(n.name);
    }
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

  /** Nodes that read a tensor. */
  consumers(tensor: string): NodeProto[] {
    return this.nodes.filter((n) => n.input?.includes(tensor));
  }

  isGraphOutput(tensor: string): boolean {
    return (this.graph.output ?? []).some((o) => o.name === tensor);
  }

  isGraphInput(tensor: string): boolean {
    return (this.graph.input ?? []).some((o) => o.name === tensor) && !this.initializers.has(tensor);
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

  /** Adds an initializer under exactly its name: the tensor takes over from a node that made it. */
  setInitializer(t: TensorProto & { name: string }): string {
    this.names.add(t.name);
    this.graph.initializer = this.graph.initializer!.filter((x) => x.name !== t.name);
    this.graph.initializer.push(t);
    this.initializers.set(t.name, t);
    return t.name;
  }

  /** Drops an initializer that nothing reads any more. */
  dropInitializerIfUnused(name: string): void {
    if (!this.initializers.has(name) || this.nodes.some((n) => n.input?.includes(name)) || this.isGraphOutput(name)) return;
    this.initializers.delete(name);
    this.graph.initializer = this.graph.initializer!.filter((t) => t.name !== name);
    this.graph.input = (this.graph.input ?? []).filter((i) => i.name !== name);
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
   * The element type of every tensor the graph computes, by forward propagation: declared
   * inputs, initializers and value_info first; then per operator (Shape gives int64, Cast its
   * `to`, comparisons bool, and the rest the type of their first input). Unknown stays absent.
   */
  elementTypes(): Map<string, number> {
    const types = new Map<string, number>();
    for (const v of [...(this.graph.input ?? []), ...(this.graph.value_info ?? []), ...(this.graph.output ?? [])]) {
      const t = v.type?.tensor_type?.elem_type;
      if (v.name && t) types.set(v.name, t);
    }
    for (const [name, t] of this.initializers) if (t.data_type) types.set(name, t.data_type);
    const INT64 = 7;
    const BOOL = 9;
    const fixed: Record<string, number> = { Shape: INT64, Size: INT64, NonZero: INT64, ArgMax: INT64, ArgMin: INT64, Equal: BOOL, Less: BOOL, Greater: BOOL, LessOrEqual: BOOL, GreaterOrEqual: BOOL, Not: BOOL, And: BOOL, Or: BOOL, Xor: BOOL, IsNaN: BOOL, IsInf: BOOL };
    for (const node of this.nodes) {
      const op = node.op_type ?? '';
      let t: number | undefined;
      if (op in fixed) t = fixed[op];
      else if (op === 'Cast') t = intAttr(node, 'to', 0) || undefined;
      else if (op === 'Constant') t = node.attribute?.find((a) => a.name === 'value')?.t?.data_type;
      else if (op === 'ConstantOfShape') t = node.attribute?.find((a) => a.name === 'value')?.t?.data_type ?? 1;
      else if (op === 'Where') t = types.get(node.input?.[1] ?? '');
      else t = types.get(node.input?.find((i) => i && types.has(i)) ?? '');
      (node.output ?? []).forEach((o, i) => {
        if (!o || types.has(o)) return;
        if (op === 'TopK' && i === 1) types.set(o, INT64);
        else if (t) types.set(o, t);
      });
    }
    return types;
  }

  /** Reorders nodes so that every node comes after the producers of its inputs. */
  sortTopologically(): void {
    const available = new Set<string>([...(this.graph.input ?? []).map((i) => i.name ?? ''), ...this.initializers.keys(), '']);
    const pending = [...this.nodes];
    const sorted: NodeProto[] = [];
    while (pending.length) {
      const i = pending.findIndex((n) => (n.input ?? []).every((x) => available.has(x) || !this.nodes.some((m) => m.output?.includes(x))));
      if (i < 0) throw new EdgeInferError('E_MODEL_UNSUPPORTED', `graph '${this.graph.name ?? ''}' has a cycle around node '${pending[0].name ?? pending[0].op_type}'`);
      const [n] = pending.splice(i, 1);
      for (const o of n.output ?? []) available.add(o);
      sorted.push(n);
    }
    this.graph.node = sorted;
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

/** Sets (or replaces) an integer-list attribute. */
export function setIntsAttr(node: NodeProto, name: string, value: number[]): void {
  node.attribute = [...(node.attribute ?? []).filter((a) => a.name !== name), { name, type: AttributeType.INTS, ints: value }];
}

/**
 * A deep copy of a model, so that quantizing never changes the caller's fp32 model. Through the
 * protobuf encoding: int64 fields decode as Long objects, which a structured clone would strip.
 */
export function cloneModel(model: ModelProto): ModelProto {
  return decodeModel(encodeModel(model));
}
