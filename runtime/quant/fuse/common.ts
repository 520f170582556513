// What the fusions share: matching helpers over a GraphEditor and the contrib domain import.
import { type NodeProto, tensorValues } from '../../onnx';
import type { GraphEditor } from '../graph';

/** onnxruntime's contrib operators (SkipLayerNormalization, FastGelu, MultiHeadAttention, ...). */
export const MS_DOMAIN = 'com.microsoft';

export interface FusionOutcome {
  /** How many patterns were rewritten. */
  fused: number;
  /** Patterns that began to match but were left alone, and why. */
  notices: string[];
}

/** A constant's values as plain numbers, or undefined when the tensor is not a constant. */
export function constantNumbers(editor: GraphEditor, name: string): number[] | undefined {
  const t = name ? editor.constant(name) : undefined;
  if (!t) return undefined;
  try {
    return Array.from(tensorValues(t) as ArrayLike<number | bigint>, Number);
  } catch {
    return undefined;
  }
}

/** The single node reading a tensor; undefined when none, several, or the graph outputs it. */
export function soleReader(editor: GraphEditor, tensor: string): NodeProto | undefined {
  const readers = editor.consumers(tensor);
  return readers.length === 1 && !editor.isGraphOutput(tensor) ? readers[0] : undefined;
}

/** True for a default-domain node of that operator. */
export const isOp = (node: NodeProto | undefined, op: string): node is NodeProto => !!node && node.op_type === op && (!node.domain || node.domain === 'ai.onnx');

export const samePerm = (a: number[] | undefined, b: readonly number[]): boolean => !!a && a.length === b.length && a.every((v, i) => v === b[i]);

/** Declares the com.microsoft domain the contrib operators belong to. */
export function useContribOps(editor: GraphEditor): void {
  const imports = (editor.model.opset_import ??= []);
  if (!imports.some((o) => o.domain === MS_DOMAIN)) imports.push({ domain: MS_DOMAIN, version: 1 });
}
