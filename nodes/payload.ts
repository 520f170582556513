// What a model node accepts as msg.payload, turned into samples per channel: a number, an array
// (one sample of every channel, or a block of a one-channel model), rows of samples, a typed
// array of samples (interleaved channels), a little-endian float32 Buffer (interleaved channels),
// JSON text in a Buffer (as an MQTT node set to "a Buffer" delivers it), or an object of named
// channels (numbers for one sample, arrays for a block).
import { isUtf8 } from 'node:buffer';
import { EdgeInferError } from '../runtime/errors';
import { type DecodedSamples, EDGE_INFER_HEADER_BYTES, EDGE_INFER_MAGIC, createDecoder } from '../runtime/stream/decoders';

function finite(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new EdgeInferError('E_INPUT_VALUE', `${where} is ${typeof v === 'number' ? String(v) : JSON.stringify(v)?.slice(0, 30) ?? typeof v}, expected a finite number`);
  }
  return v;
}

function column(values: ArrayLike<unknown>, where: string): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = finite(values[i], `${where}[${i}]`);
  return out;
}

/** Interleaved samples (sample 0 of every channel, then sample 1, ...) split into channels. */
function interleaved(count: number, at: (i: number) => number, channels: readonly string[], what: string): Float32Array[] {
  const c = channels.length;
  const n = count / c;
  const cols = channels.map(() => new Float32Array(n));
  for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) cols[k][i] = finite(at(i * c + k), `${what} sample ${i} of ${channels[k]}`);
  return cols;
}

const isSpace = (b: number): boolean => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;

/**
 * The text of a Buffer that holds JSON: its first byte after white space is `{` or `[`, and it is
 * UTF-8 text without control characters. Float32 samples of a real signal practically never are:
 * every one of their bytes would have to be text.
 */
function jsonText(bytes: Buffer): string | undefined {
  let i = 0;
  while (i < bytes.length && isSpace(bytes[i])) i++;
  if (bytes[i] !== 0x7b && bytes[i] !== 0x5b) return undefined;
  for (const b of bytes) if (b < 0x20 && !isSpace(b)) return undefined;
  return isUtf8(bytes) ? bytes.toString('utf8') : undefined;
}

/** A short quote of a Buffer that is printable ASCII text, for error messages; undefined otherwise. */
function textQuote(bytes: Buffer): string | undefined {
  for (const b of bytes) if ((b < 0x20 && !isSpace(b)) || b > 0x7e) return undefined;
  const text = bytes.toString('latin1');
  return JSON.stringify(text.length > 30 ? `${text.slice(0, 30)}…` : text);
}

/** Samples of `channels` (the card's, in order) from a message payload; errors say what and where. */
export function samplesFromPayload(payload: unknown, channels: readonly string[], device: string): DecodedSamples {
  const c = channels.length;
  const byName = (columns: Float32Array[]): DecodedSamples => ({ device, channels: Object.fromEntries(channels.map((n, i) => [n, columns[i]])) });
  if (typeof payload === 'number') {
    if (c !== 1) throw new EdgeInferError('E_INPUT_SHAPE', `msg.payload is one number, but the model reads ${c} channels (${channels.join(', ')}): send an array of ${c} or an object of named channels`);
    return byName([column([payload], 'msg.payload')]);
  }
  if (Buffer.isBuffer(payload)) {
    // Blocks from edge-infer's own publishers carry a 16-byte header (seq, timestamp).
    if (payload.length >= EDGE_INFER_HEADER_BYTES && payload.subarray(0, 4).equals(Buffer.from(EDGE_INFER_MAGIC))) {
      const [decoded] = createDecoder({ kind: 'float32', channels: [...channels], header: 'edge-infer' }).decode(payload, { topic: 'msg.payload', device });
      return decoded;
    }
    // JSON from an MQTT node that hands payloads over as Buffers.
    const json = jsonText(payload);
    if (json !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(json);
      } catch (err) {
        throw new EdgeInferError('E_INPUT_VALUE', `msg.payload is a Buffer of text that starts like JSON but is not JSON (${(err as Error).message}); send JSON such as {"${channels[0]}": [...]} or float32 samples`);
      }
      return samplesFromPayload(parsed, channels, device);
    }
    // Text is not samples. Eight float32 samples of a real signal are never all printable text
    // (that needs every mantissa byte to be), so from 32 bytes on, text is refused as text.
    const text = payload.length > 0 ? textQuote(payload) : undefined;
    const fits = payload.length > 0 && payload.length % (4 * c) === 0;
    if (text !== undefined && (payload.length >= 32 || !fits)) throw new EdgeInferError('E_INPUT_VALUE', `msg.payload is a Buffer of text (${text}), neither JSON nor float32 samples`);
    if (!fits) {
      throw new EdgeInferError('E_INPUT_SHAPE', `msg.payload is a Buffer of ${payload.length} bytes; float32 samples of ${c} channel${c > 1 ? 's' : ''} need a multiple of ${4 * c}`);
    }
    return byName(interleaved(payload.length / 4, (j) => payload.readFloatLE(j * 4), channels, 'msg.payload'));
  }
  if (payload instanceof Uint8Array) {
    // Bytes that are not a Buffer (a Uint8Array from a function node): read as the Buffer they hold.
    return samplesFromPayload(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), channels, device);
  }
  if (ArrayBuffer.isView(payload) && !(payload instanceof DataView)) {
    // A typed array of samples, channels interleaved like a float32 Buffer's.
    const values = payload as unknown as ArrayLike<unknown> & { constructor: { name: string } };
    const name = values.constructor.name;
    if (typeof values[0] === 'bigint') throw new EdgeInferError('E_INPUT_VALUE', `msg.payload is a ${name}; send samples as numbers (a Float32Array, a Float64Array, an array)`);
    if (values.length === 0 || values.length % c !== 0) {
      throw new EdgeInferError('E_INPUT_SHAPE', `msg.payload is a ${name} of ${values.length} values; samples of ${c} channel${c > 1 ? 's' : ''} (${channels.join(', ')}) interleaved need a multiple of ${c}`);
    }
    return byName(interleaved(values.length, (j) => values[j] as number, channels, 'msg.payload'));
  }
  if (Array.isArray(payload)) {
    if (payload.length === 0) throw new EdgeInferError('E_INPUT_SHAPE', 'msg.payload is an empty array');
    if (payload.every((v) => typeof v === 'number')) {
      // One sample of every channel, or (one-channel model) a block of samples.
      if (c === 1) return byName([column(payload, 'msg.payload')]);
      if (payload.length !== c) throw new EdgeInferError('E_INPUT_SHAPE', `msg.payload is an array of ${payload.length} numbers; the model reads ${c} channels (${channels.join(', ')}): send one value per channel, rows [[${channels.join(', ')}], ...], or an object of named channels`);
      return byName(payload.map((v, k) => column([v], `msg.payload[${k}]`)));
    }
    if (payload.every(Array.isArray)) {
      const cols = channels.map(() => new Float32Array(payload.length));
      payload.forEach((row: unknown[], i) => {
        if (row.length !== c) throw new EdgeInferError('E_INPUT_SHAPE', `msg.payload[${i}] has ${row.length} values; each row needs ${c} (${channels.join(', ')})`);
        row.forEach((v, k) => (cols[k][i] = finite(v, `msg.payload[${i}][${k}]`)));
      });
      return byName(cols);
    }
    if (payload.every((v) => v && typeof v === 'object')) {
      const cols = channels.map(() => new Float32Array(payload.length));
      payload.forEach((row: Record<string, unknown>, i) => channels.forEach((name, k) => (cols[k][i] = finite(row[name], `msg.payload[${i}].${name}`))));
      return byName(cols);
    }
    throw new EdgeInferError('E_INPUT_VALUE', 'msg.payload mixes numbers, arrays and objects; send one shape');
  }
  if (payload && typeof payload === 'object') {
    const obj = payload as Record<string, unknown>;
    const missing = channels.filter((n) => !(n in obj));
    if (missing.length) throw new EdgeInferError('E_INPUT_SHAPE', `msg.payload has no ${missing.map((m) => `'${m}'`).join(', ')}; the model reads ${channels.join(', ')}`);
    const cols = channels.map((n) => {
      const v = obj[n];
      if (typeof v === 'number') return column([v], `msg.payload.${n}`);
      if (Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView))) return column(v as ArrayLike<unknown>, `msg.payload.${n}`);
      throw new EdgeInferError('E_INPUT_VALUE', `msg.payload.${n} is ${JSON.stringify(v)?.slice(0, 30) ?? typeof v}, expected a number or an array of numbers`);
    });
    const lengths = new Set(cols.map((x) => x.length));
    if (lengths.size > 1) throw new EdgeInferError('E_INPUT_SHAPE', `msg.payload channels differ in length (${channels.map((n, i) => `${n}: ${cols[i].length}`).join(', ')})`);
    return byName(cols);
  }
  throw new EdgeInferError('E_INPUT_VALUE', `msg.payload is ${payload === null ? 'null' : typeof payload}; send numbers, arrays, a float32 Buffer or an object of named channels`);
}
