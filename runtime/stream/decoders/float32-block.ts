// The float32 block wire format, shared by the decoder and by publishers: little-endian float32
// samples, interleaved (x0 y0 z0 x1 ...) or planar (all x, all y, ...), optionally after the
// 16-byte edge-infer header: ASCII 'EIF1', uint32 LE seq, float64 LE timestamp (ms since epoch).
import { EdgeInferError } from '../../errors';

export const EDGE_INFER_MAGIC = 'EIF1';
export const EDGE_INFER_HEADER_BYTES = 16;
export const FLOAT32_BYTES = 4;

export type Float32Layout = 'interleaved' | 'planar';

export interface Float32BlockHeader {
  /** Publisher's message number, uint32 (wraps at 2^32). */
  seq: number;
  /** Time of the first sample, ms since the Unix epoch. */
  timestampMs: number;
}

export interface EncodeFloat32BlockOptions {
  /** Channel names in block order (the decoder's `channels`). */
  channels: readonly string[];
  /** Default 'interleaved'. */
  layout?: Float32Layout;
  /** When given, the block starts with the 16-byte edge-infer header. */
  header?: Float32BlockHeader;
}

/**
 * Encodes one block of samples (one array per channel, equal lengths) as the float32 decoder
 * reads it. Values are written as given, NaN included, so fault-injecting simulators and tests
 * can produce the blocks a decoder must refuse.
 */
export function encodeFloat32Block(channels: Record<string, ArrayLike<number>>, opts: EncodeFloat32BlockOptions): Buffer {
  const names = opts.channels;
  if (!Array.isArray(names) || names.length === 0) throw new EdgeInferError('E_ARGUMENT', 'encodeFloat32Block: opts.channels must name at least one channel');
  const arrays = names.map((name) => {
    const a = Object.hasOwn(channels, name) ? channels[name] : undefined;
    if (a === undefined || typeof a.length !== 'number') throw new EdgeInferError('E_ARGUMENT', `encodeFloat32Block: channel '${name}' has no samples (got channels ${Object.keys(channels).join(', ') || 'none'})`);
    return a;
  });
  const n = arrays[0].length;
  arrays.forEach((a, c) => {
    if (a.length !== n) throw new EdgeInferError('E_ARGUMENT', `encodeFloat32Block: channels differ in length: '${names[0]}' has ${n} samples, '${names[c]}' has ${a.length}`);
  });
  if (n === 0) throw new EdgeInferError('E_ARGUMENT', 'encodeFloat32Block: the block has no samples');
  const layout = opts.layout ?? 'interleaved';
  if (layout !== 'interleaved' && layout !== 'planar') throw new EdgeInferError('E_ARGUMENT', `encodeFloat32Block: layout must be 'interleaved' or 'planar', got ${String(layout)}`);

  const headerBytes = opts.header ? EDGE_INFER_HEADER_BYTES : 0;
  const out = Buffer.alloc(headerBytes + n * names.length * FLOAT32_BYTES);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (opts.header) writeHeader(view, opts.header);
  const stride = layout === 'interleaved' ? names.length : 1;
  arrays.forEach((a, c) => {
    let at = headerBytes + (layout === 'interleaved' ? c : c * n) * FLOAT32_BYTES;
    for (let i = 0; i < n; i++, at += stride * FLOAT32_BYTES) view.setFloat32(at, a[i], true);
  });
  return out;
}

function writeHeader(view: DataView, header: Float32BlockHeader): void {
  const { seq, timestampMs } = header;
  if (!Number.isInteger(seq) || seq < 0 || seq > 0xffffffff) throw new EdgeInferError('E_ARGUMENT', `encodeFloat32Block: header.seq must be a uint32, got ${seq}`);
  if (!Number.isFinite(timestampMs)) throw new EdgeInferError('E_ARGUMENT', `encodeFloat32Block: header.timestampMs must be a finite number, got ${timestampMs}`);
  for (let i = 0; i < 4; i++) view.setUint8(i, EDGE_INFER_MAGIC.charCodeAt(i));
  view.setUint32(4, seq, true);
  view.setFloat64(8, timestampMs, true);
}
