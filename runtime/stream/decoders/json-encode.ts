// The JSON counterpart of encodeFloat32Block: what a publisher (or a test) sends so that a JSON
// decoder configured with the same field and metadata paths reads the samples back.
import { EdgeInferError } from '../../errors';
import { isJsonObject, splitPath } from './json-path';

export interface EncodeJsonSamplesOptions {
  /** Channel order (default: the record's own order). */
  channels?: readonly string[];
  /** Dot path to put the samples at (the decoder's `field`); default: the document itself. */
  field?: string;
  /**
   * 'object' (default): { vib_x: [...], vib_y: [...] }; 'rows': [[x, y], ...]; 'records':
   * [{ vib_x, vib_y }, ...].
   */
  shape?: 'object' | 'rows' | 'records';
  /** Other values by dot path, e.g. { ts: 1700000000000, seq: 7 } for timestampField 'ts' and seqField 'seq'. */
  meta?: Record<string, number | string>;
}

/**
 * Encodes a block of samples as UTF-8 JSON. Non-finite values become null, as JSON.stringify
 * writes them (the decoder refuses both).
 */
export function encodeJsonSamples(channels: Record<string, ArrayLike<number>>, opts: EncodeJsonSamplesOptions = {}): Buffer {
  const names = opts.channels ?? Object.keys(channels);
  const arrays = names.map((name) => {
    const a = Object.hasOwn(channels, name) ? channels[name] : undefined;
    if (a === undefined || typeof a.length !== 'number') throw new EdgeInferError('E_ARGUMENT', `encodeJsonSamples: channel '${name}' has no samples`);
    return Array.from(a);
  });
  if (names.length === 0) throw new EdgeInferError('E_ARGUMENT', 'encodeJsonSamples: no channels');
  const n = arrays[0].length;
  arrays.forEach((a, c) => {
    if (a.length !== n) throw new EdgeInferError('E_ARGUMENT', `encodeJsonSamples: channels differ in length: '${names[0]}' has ${n} samples, '${names[c]}' has ${a.length}`);
  });
  let data: unknown;
  switch (opts.shape ?? 'object') {
    case 'object':
      data = Object.fromEntries(names.map((name, c) => [name, arrays[c]]));
      break;
    case 'rows':
      data = Array.from({ length: n }, (_, i) => arrays.map((a) => a[i]));
      break;
    case 'records':
      data = Array.from({ length: n }, (_, i) => Object.fromEntries(names.map((name, c) => [name, arrays[c][i]])));
      break;
    default:
      throw new EdgeInferError('E_ARGUMENT', `encodeJsonSamples: shape must be 'object', 'rows' or 'records', got ${String(opts.shape)}`);
  }
  let root: unknown = data;
  if (opts.field !== undefined) {
    root = {};
    setAt(root, splitPath(opts.field), data);
  }
  for (const [path, value] of Object.entries(opts.meta ?? {})) setAt(root, splitPath(path), value);
  return Buffer.from(JSON.stringify(root), 'utf8');
}

function setAt(root: unknown, path: readonly string[], value: unknown): void {
  let cur = root;
  path.forEach((step, i) => {
    if (!isJsonObject(cur)) throw new EdgeInferError('E_ARGUMENT', `encodeJsonSamples: cannot set '${path.join('.')}': '${path.slice(0, i).join('.') || '(document)'}' is not an object`);
    if (i === path.length - 1) {
      if (Object.hasOwn(cur, step)) throw new EdgeInferError('E_ARGUMENT', `encodeJsonSamples: '${path.join('.')}' is set twice`);
      Object.defineProperty(cur, step, { value, enumerable: true, writable: true, configurable: true });
    } else {
      if (!Object.hasOwn(cur, step)) Object.defineProperty(cur, step, { value: {}, enumerable: true, writable: true, configurable: true });
      cur = cur[step];
    }
  });
}
