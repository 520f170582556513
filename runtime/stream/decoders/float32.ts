// Float32 block payloads (kHz vibration arrives this way). Reads straight from the payload's
// memory when it can: a planar block on an aligned buffer is returned as views, no copy at all.
import type { ResolvedFloat32DecoderConfig } from './config';
import { decodeError, guardDecode } from './fail';
import { EDGE_INFER_HEADER_BYTES, EDGE_INFER_MAGIC, FLOAT32_BYTES } from './float32-block';
import { checkTimestamp } from './timestamp';
import type { DecodeContext, DecodedSamples, Decoder } from './types';

/** Typed arrays use the host's byte order; the wire is little-endian. ARM64 and x86 both are. */
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export class Float32Decoder implements Decoder {
  readonly kind = 'float32' as const;
  private readonly names: readonly string[];
  /** Bytes per sample across all channels. */
  private readonly frameBytes: number;
  private readonly headerBytes: number;

  constructor(private readonly config: ResolvedFloat32DecoderConfig) {
    this.names = config.channels;
    this.frameBytes = FLOAT32_BYTES * config.channels.length;
    this.headerBytes = config.header === 'edge-infer' ? EDGE_INFER_HEADER_BYTES : 0;
  }

  decode(payload: Uint8Array, ctx: DecodeContext): DecodedSamples[] {
    return guardDecode(this.kind, payload, ctx, (bytes, topic) => {
      const out: DecodedSamples = { device: ctx.device, channels: {} };
      if (this.headerBytes > 0) Object.assign(out, this.readHeader(bytes, topic));
      const n = this.sampleCount(bytes, topic);
      const channels = this.config.layout === 'planar' ? this.readPlanar(bytes, n) : this.readInterleaved(bytes, n);
      this.checkFinite(channels, n, topic);
      out.channels = Object.fromEntries(this.names.map((name, c) => [name, channels[c]]));
      return [out];
    });
  }

  private readHeader(bytes: Uint8Array, topic: string): { seq: number; timestampMs: number } {
    if (bytes.byteLength < EDGE_INFER_HEADER_BYTES) {
      throw decodeError(topic, 'E_INPUT_SHAPE', `payload is ${bytes.byteLength} bytes, shorter than the ${EDGE_INFER_HEADER_BYTES}-byte edge-infer header`);
    }
    const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
    if (magic !== EDGE_INFER_MAGIC) {
      const hex = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
      throw decodeError(topic, 'E_INPUT_VALUE', `bytes 0-3 are ${hex}, not the edge-infer header magic 'EIF1' (45 49 46 31): is the decoder's header setting right?`);
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, EDGE_INFER_HEADER_BYTES);
    const timestampMs = checkTimestamp(view.getFloat64(8, true), topic, 'header timestampMs (float64 at byte offset 8)');
    return { seq: view.getUint32(4, true), timestampMs };
  }

  /** Samples per channel, after checking the block's length against the channel count and samplesPerMessage. */
  private sampleCount(bytes: Uint8Array, topic: string): number {
    const body = bytes.byteLength - this.headerBytes;
    const after = this.headerBytes ? ' after the 16-byte header' : '';
    if (body === 0) throw decodeError(topic, 'E_INPUT_SHAPE', `block is empty: no samples${after}`);
    if (body % this.frameBytes !== 0) {
      throw decodeError(
        topic,
        'E_INPUT_SHAPE',
        `block of ${body} bytes${after} is not a multiple of ${this.frameBytes} bytes (${this.names.length} channel${this.names.length === 1 ? '' : 's'} × 4-byte float32): truncated, or the wrong channel count`,
      );
    }
    const n = body / this.frameBytes;
    const expected = this.config.samplesPerMessage;
    if (expected !== undefined && n !== expected) {
      throw decodeError(topic, 'E_INPUT_SHAPE', `block holds ${n} samples per channel (${body} bytes), expected ${expected} (samplesPerMessage)`);
    }
    return n;
  }

  /** The samples as a Float32Array over the payload's memory, when its offset and the host allow one. */
  private view(bytes: Uint8Array, count: number): Float32Array | undefined {
    const at = bytes.byteOffset + this.headerBytes;
    return LITTLE_ENDIAN_HOST && at % FLOAT32_BYTES === 0 ? new Float32Array(bytes.buffer, at, count) : undefined;
  }

  private readPlanar(bytes: Uint8Array, n: number): Float32Array[] {
    const c = this.names.length;
    let all = this.view(bytes, n * c);
    if (!all && LITTLE_ENDIAN_HOST) {
      // Unaligned (Buffer slices often are): one copy into fresh, aligned memory. Not
      // bytes.slice(): on a Buffer that is a view of the same memory.
      const copy = new Uint8Array(n * c * FLOAT32_BYTES);
      copy.set(bytes.subarray(this.headerBytes));
      all = new Float32Array(copy.buffer);
    }
    if (all) {
      const whole = all;
      return this.names.map((_, k) => whole.subarray(k * n, (k + 1) * n));
    }
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return this.names.map((_, k) => {
      const dst = new Float32Array(n);
      for (let i = 0, at = this.headerBytes + k * n * FLOAT32_BYTES; i < n; i++, at += FLOAT32_BYTES) dst[i] = dv.getFloat32(at, true);
      return dst;
    });
  }

  private readInterleaved(bytes: Uint8Array, n: number): Float32Array[] {
    const c = this.names.length;
    const out = this.names.map(() => new Float32Array(n));
    const src = this.view(bytes, n * c);
    if (src) {
      for (let k = 0; k < c; k++) {
        const dst = out[k];
        for (let i = 0, j = k; i < n; i++, j += c) dst[i] = src[j];
      }
      return out;
    }
    // Unaligned or big-endian: read each value in place rather than copying the block twice.
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let k = 0; k < c; k++) {
      const dst = out[k];
      for (let i = 0, at = this.headerBytes + k * FLOAT32_BYTES; i < n; i++, at += this.frameBytes) dst[i] = dv.getFloat32(at, true);
    }
    return out;
  }

  private checkFinite(channels: Float32Array[], n: number, topic: string): void {
    const c = this.names.length;
    for (let k = 0; k < c; k++) {
      const a = channels[k];
      for (let i = 0; i < n; i++) {
        const v = a[i];
        // v - v is 0 for every finite value and NaN for NaN and ±Infinity.
        if (v - v !== 0) {
          const at = this.headerBytes + (this.config.layout === 'planar' ? k * n + i : i * c + k) * FLOAT32_BYTES;
          throw decodeError(topic, 'E_INPUT_VALUE', `channel '${this.names[k]}' sample ${i} (byte offset ${at}) is ${v}, expected a finite number`);
        }
      }
    }
  }
}
