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
  /** It served before the last stop and is being put back: one healthy batch is its probation. */
  restored?: boolean;
}

/**
 * The payload fields, for the README and for publishers in JavaScript. Two forms: one line of JSON
 * with the model in base64 (`onnx`), or a line of JSON with `onnxBytes` (the model's length), a
 * newline, and the model's bytes as they are: no base64 to grow the message by a third and no
 * megabytes of JSON to parse on the gateway's event loop.
 */
export interface UpdatePayload {
  format: typeof UPDATE_FORMAT;
  card: string;
  sha256: string;
  signature?: string;
  /** JSON form: the ONNX bytes in base64. */
  onnx?: string;
  /** Binary form: how many bytes of model follow the header line. */
  onnxBytes?: number;
}

/** Builds an update payload (what `mosquitto_pub -f` or any client sends), in the binary form unless `json`. */
export function encodeUpdatePayload(onnx: Uint8Array, cardText: string, signature?: string, form: 'binary' | 'json' = 'binary'): Buffer {
  const head = { format: UPDATE_FORMAT as typeof UPDATE_FORMAT, card: cardText, sha256: sha256Hex(onnx), ...(signature ? { signature } : {}) };
  if (form === 'json') return Buffer.from(JSON.stringify({ ...head, onnx: Buffer.from(onnx).toString('base64') } satisfies UpdatePayload));
  return Buffer.concat([Buffer.from(JSON.stringify({ ...head, onnxBytes: onnx.byteLength } satisfies UpdatePayload)), Buffer.from('\n'), onnx]);
}

/** Bytes a base64 text decodes to, when it is well formed (length a multiple of 4, padding only at the end). */
function base64Length(text: string): number | null {
  if (text.length === 0 || text.length % 4 !== 0) return null;
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  return (text.length / 4) * 3 - pad;
}

const refuse = (source: string, what: string): EdgeInferError => new EdgeInferError('E_UPDATE', `${source}: ${what}`);

/** Reads an update payload; E_UPDATE names the source and what is wrong. */
export function parseUpdatePayload(payload: Uint8Array, model: string, source: string, maxBytes: number): UpdateCandidate {
  if (payload.byteLength > maxBytes) throw refuse(source, `the update is ${payload.byteLength} bytes, over the limit of ${maxBytes} (modelUpdates.maxBytes)`);
  const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  // JSON as JSON.stringify writes it holds no raw newline: one marks the binary form's header.
  const newline = bytes.indexOf(0x0a);
  const header = newline >= 0 ? bytes.subarray(0, newline) : bytes;
  let value: unknown;
  try {
    value = JSON.parse(header.toString('utf8'));
  } catch (err) {
    throw refuse(source, `expected JSON of format ${UPDATE_FORMAT}, got text that is not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw refuse(source, `expected a JSON object of format ${UPDATE_FORMAT}`);
  const v = value as Record<string, unknown>;
  if (v.format !== UPDATE_FORMAT) throw refuse(source, `format: expected '${UPDATE_FORMAT}', got ${JSON.stringify(v.format) ?? 'nothing'}`);
  const fields = ['format', 'card', 'sha256', 'signature', newline >= 0 ? 'onnxBytes' : 'onnx'];
  const unknown = Object.keys(v).filter((k) => !fields.includes(k));
  if (unknown.length) throw refuse(source, `unknown field ${unknown.map((k) => `'${k}'`).join(', ')}${newline >= 0 ? ' in the header line' : ''}, expected ${fields.join(', ')}`);
  if (typeof v.card !== 'string') throw refuse(source, `card: expected the card file's text as a string, got ${v.card === undefined ? 'nothing' : typeof v.card}`);
  if (typeof v.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(v.sha256)) throw refuse(source, 'sha256: expected 64 lowercase hex digits (the sha256 of the ONNX bytes)');
  if (v.signature !== undefined && (typeof v.signature !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(v.signature))) throw refuse(source, 'signature: expected base64 text (the ed25519 signature of the manifest)');
  let onnx: Buffer;
  if (newline >= 0) {
    const body = bytes.subarray(newline + 1);
    if (typeof v.onnxBytes !== 'number' || !Number.isInteger(v.onnxBytes) || v.onnxBytes < 1) throw refuse(source, 'onnxBytes: expected the length of the model bytes after the header line');
    if (body.length !== v.onnxBytes) throw refuse(source, `the header says ${v.onnxBytes} bytes of model follow it, ${body.length} do (incomplete or corrupted)`);
    onnx = body;
  } else {
    // A cheap shape check: Buffer's decoder skips what is not base64 silently, and the sha256 catches the rest.
    const n = typeof v.onnx === 'string' ? base64Length(v.onnx) : null;
    if (n === null) throw refuse(source, 'onnx: expected the model bytes in base64');
    onnx = Buffer.from(v.onnx as string, 'base64');
    if (onnx.length !== n) throw refuse(source, 'onnx: expected the model bytes in base64, got text with other characters');
  }
  const sha = sha256Hex(onnx);
  if (sha !== v.sha256) throw refuse(source, `sha256: the ONNX bytes hash to ${sha}, the update says ${v.sha256} (corrupted or incomplete)`);
  return { model, onnx, cardText: v.card, sha256: sha, signature: v.signature as string | undefined, source };
}
