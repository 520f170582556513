// The MQTT model-update payload: JSON with the card's text, the ONNX bytes in base64, their
// sha256 and an optional ed25519 signature. Parsing checks everything that needs no model: the
// format, the size bound, the sha256 against the bytes, the card's id against the topic.
import { EdgeInferError } from '../errors';
import { sha256Hex } from './signature';

export const UPDATE_FORMAT = 'edge-infer-model-update/1';

/** An update as it arrived, by MQTT or as a file dropped in the models directory. */
export interface UpdateCandidate {
  /** The model id it is for (the topic's {model} level, or the dropped card's id). */
  model: string;
  onnx: Uint8Array;
  /** The card file's text, exactly as signed. */
  cardText: string;
  /** sha256 of `onnx`, hex (checked against the bytes). */
  sha256: string;
  /** base64 ed25519 signature of the manifest (signature.ts), if any. */
  signature?: string;
  /** `mqtt:<topic>` or `file:<path>`. */
  source: string;
}

/** The payload fields, for the README and for publishers in JavaScript. */
export interface UpdatePayload {
  format: typeof UPDATE_FORMAT;
  card: string;
  sha256: string;
  signature?: string;
  onnx: string;
}

/** Builds an update payload (what `mosquitto_pub -f` or any client sends). */
export function encodeUpdatePayload(onnx: Uint8Array, cardText: string, signature?: string): Buffer {
  const p: UpdatePayload = { format: UPDATE_FORMAT, card: cardText, sha256: sha256Hex(onnx), ...(signature ? { signature } : {}), onnx: Buffer.from(onnx).toString('base64') };
  return Buffer.from(JSON.stringify(p));
}

const refuse = (source: string, what: string): EdgeInferError => new EdgeInferError('E_UPDATE', `${source}: ${what}`);

/** Reads an update payload; E_UPDATE names the source and what is wrong. */
export function parseUpdatePayload(payload: Uint8Array, model: string, source: string, maxBytes: number): UpdateCandidate {
  if (payload.byteLength > maxBytes) throw refuse(source, `the update is ${payload.byteLength} bytes, over the limit of ${maxBytes} (modelUpdates.maxBytes)`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch (err) {
    throw refuse(source, `expected JSON of format ${UPDATE_FORMAT}, got text that is not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw refuse(source, `expected a JSON object of format ${UPDATE_FORMAT}`);
  const v = value as Record<string, unknown>;
  if (v.format !== UPDATE_FORMAT) throw refuse(source, `format: expected '${UPDATE_FORMAT}', got ${JSON.stringify(v.format) ?? 'nothing'}`);
  const unknown = Object.keys(v).filter((k) => !['format', 'card', 'sha256', 'signature', 'onnx'].includes(k));
  if (unknown.length) throw refuse(source, `unknown field ${unknown.map((k) => `'${k}'`).join(', ')}, expected format, card, sha256, signature, onnx`);
  if (typeof v.card !== 'string') throw refuse(source, `card: expected the card file's text as a string, got ${v.card === undefined ? 'nothing' : typeof v.card}`);
  if (typeof v.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(v.sha256)) throw refuse(source, 'sha256: expected 64 lowercase hex digits (the sha256 of the ONNX bytes)');
  if (v.signature !== undefined && (typeof v.signature !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(v.signature))) throw refuse(source, 'signature: expected base64 text (the ed25519 signature of the manifest)');
  if (typeof v.onnx !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v.onnx) || v.onnx.length === 0) throw refuse(source, 'onnx: expected the model bytes in base64');
  const onnx = Buffer.from(v.onnx, 'base64');
  const sha = sha256Hex(onnx);
  if (sha !== v.sha256) throw refuse(source, `sha256: the ONNX bytes hash to ${sha}, the update says ${v.sha256} (corrupted or incomplete)`);
  return { model, onnx, cardText: v.card, sha256: sha, signature: v.signature as string | undefined, source };
}
