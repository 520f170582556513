// Reading and writing ONNX model files.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { EdgeInferError } from '../errors';
import { type ModelProto, ModelProtoType, type OperatorSetId, toNumber } from './schema';

/**
 * Decodes ONNX model bytes. `source` names the file in error messages. Throws E_MODEL_CORRUPT
 * when the bytes are not a protobuf, are cut short, or decode to something without a graph.
 */
export function decodeModel(bytes: Uint8Array, source = '<bytes>'): ModelProto {
  if (bytes.length === 0) throw new EdgeInferError('E_MODEL_CORRUPT', `${source}: empty file, not an ONNX model`);
  let model: ModelProto;
  try {
    model = ModelProtoType.decode(bytes) as unknown as ModelProto;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    const truncated = /index out of range/.test(why);
    throw new EdgeInferError(
      'E_MODEL_CORRUPT',
      truncated
        ? `${source}: not a whole ONNX model, the file ends in the middle of a record (truncated?)`
        : `${source}: not an ONNX model (${why})`,
      { cause: err },
    );
  }
  // Random bytes sometimes decode as a protobuf; a real model always has these.
  if (!model.graph) throw new EdgeInferError('E_MODEL_CORRUPT', `${source}: not an ONNX model (no graph)`);
  if (!model.ir_version || toNumber(model.ir_version) <= 0) {
    throw new EdgeInferError('E_MODEL_CORRUPT', `${source}: not an ONNX model (no ir_version)`);
  }
  if (!model.opset_import || model.opset_import.length === 0) {
    throw new EdgeInferError('E_MODEL_CORRUPT', `${source}: not an ONNX model (no opset_import)`);
  }
  return model;
}

/** Encodes a model to bytes. */
export function encodeModel(model: ModelProto): Uint8Array {
  return ModelProtoType.encode(ModelProtoType.fromObject(model as Record<string, unknown>)).finish();
}

/** Reads and decodes a model file; errors name the file. */
export async function readModelFile(file: string): Promise<{ model: ModelProto; bytes: Uint8Array }> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    throw new EdgeInferError('E_MODEL_FILE', `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  return { model: decodeModel(bytes, file), bytes };
}

/**
 * Writes bytes to `file` through a temporary file in the same folder and a rename, so that a
 * crash or a full disk never leaves a half-written model where the registry would pick it up.
 */
export async function writeFileAtomic(file: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    await fs.writeFile(tmp, bytes);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw new EdgeInferError('E_ARGUMENT', `${file}: cannot write (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
}

/** Encodes and writes a model atomically. */
export async function writeModelFile(file: string, model: ModelProto): Promise<Uint8Array> {
  const bytes = encodeModel(model);
  await writeFileAtomic(file, bytes);
  return bytes;
}

/** The model's metadata_props as a plain object. */
export function metadataOf(model: ModelProto): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of model.metadata_props ?? []) if (p.key) out[p.key] = p.value ?? '';
  return out;
}

/** The opset_import entry of a domain; '' also finds the default domain spelled 'ai.onnx'. */
function opsetEntry(model: ModelProto, domain: string): OperatorSetId | undefined {
  return (model.opset_import ?? []).find((o) => (o.domain ?? '') === domain || (domain === '' && o.domain === 'ai.onnx'));
}

/** The opset version the model imports for a domain ('' is the default ONNX domain). */
export function opsetOf(model: ModelProto, domain = ''): number | undefined {
  const entry = opsetEntry(model, domain);
  return entry ? toNumber(entry.version) : undefined;
}

/** Sets the opset version the model imports for a domain, adding the import when it has none. */
export function setOpset(model: ModelProto, version: number, domain = ''): void {
  const entry = opsetEntry(model, domain);
  if (entry) entry.version = version;
  else (model.opset_import ??= []).push({ domain, version });
}
