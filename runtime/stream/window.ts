// Count-based sliding windows over a multi-channel sample stream: a window of `window` samples
// every `hop` samples (hop = window: tumbling windows).
import { EdgeInferError } from '../errors';

export interface Window {
  /** One array per channel, `window` samples each (copies: safe to keep). */
  channels: Float32Array[];
  /** Index in the stream of the window's first sample (0 = first sample ever pushed). */
  start: number;
  /** Index of the sample after the window's last. */
  end: number;
}

/** Samples a new window's buffers start with: a device seen once costs little memory. */
const INITIAL_CAPACITY = 256;

export class SlidingWindow {
  private buffers: Float32Array[];
  /** Samples currently held in the buffers. */
  private held = 0;
  /** Stream index of buffers[·][0]. */
  private firstIndex = 0;
  /** Stream index where the next window starts. */
  private nextStart = 0;

  /**
   * `shared`: each window's channels are views of one SharedArrayBuffer, so that a worker thread
   * reads them without a copy while this thread keeps them (to run the window again elsewhere).
   */
  constructor(readonly channels: number, readonly window: number, readonly hop: number, readonly shared = false) {
    for (const [name, v] of [['channels', channels], ['window', window], ['hop', hop]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new EdgeInferError('E_ARGUMENT', `${name} must be a whole number ≥ 1, got ${v}`);
    }
    if (hop > window) throw new EdgeInferError('E_ARGUMENT', `hop (${hop}) cannot exceed the window (${window})`);
    // They grow as samples come, up to room for one window plus one more block of a typical size
    // before compacting: a publisher that makes up device ids must not cost 2 windows each.
    this.buffers = Array.from({ length: channels }, () => new Float32Array(Math.min(window * 2, INITIAL_CAPACITY)));
  }

  /** Samples pushed so far. */
  get position(): number {
    return this.firstIndex + this.held;
  }

  /** Appends one block (one array per channel, equal lengths) and returns the windows it completes. */
  push(block: readonly ArrayLike<number>[]): Window[] {
    if (block.length !== this.channels) throw new EdgeInferError('E_INPUT_SHAPE', `expected ${this.channels} channels, got ${block.length}`);
    const n = block[0].length;
    if (block.some((c) => c.length !== n)) throw new EdgeInferError('E_INPUT_SHAPE', `channels differ in length (${block.map((c) => c.length).join(', ')})`);
    const out: Window[] = [];
    let offset = 0;
    while (offset < n) {
      this.makeRoom();
      const take = Math.min(n - offset, this.buffers[0].length - this.held);
      for (let c = 0; c < this.channels; c++) {
        const src = block[c];
        const dst = this.buffers[c];
        // Decoded blocks are Float32Arrays: one memory copy. Other arrays (tests, JSON) element by element.
        if (src instanceof Float32Array) dst.set(src.subarray(offset, offset + take), this.held);
        else for (let i = 0; i < take; i++) dst[this.held + i] = src[offset + i];
      }
      this.held += take;
      offset += take;
      while (this.nextStart + this.window <= this.position) {
        const from = this.nextStart - this.firstIndex;
        out.push({ channels: this.copyOut(from), start: this.nextStart, end: this.nextStart + this.window });
        this.nextStart += this.hop;
      }
    }
    return out;
  }

  /** The window starting at buffer offset `from`: a copy per channel, or views of one shared buffer. */
  private copyOut(from: number): Float32Array[] {
    if (!this.shared) return this.buffers.map((b) => b.slice(from, from + this.window));
    const all = new Float32Array(new SharedArrayBuffer(this.channels * this.window * 4));
    return this.buffers.map((b, c) => {
      const view = all.subarray(c * this.window, (c + 1) * this.window);
      view.set(b.subarray(from, from + this.window));
      return view;
    });
  }

  /** Drops the samples no future window needs (or grows the buffers), so they never grow past 2 windows. */
  private makeRoom(): void {
    const capacity = this.buffers[0].length;
    if (this.held < capacity) return;
    const keepFrom = Math.min(this.nextStart, this.position) - this.firstIndex;
    if (keepFrom < capacity / 2 && capacity < this.window * 2) {
      const size = Math.min(this.window * 2, capacity * 2);
      this.buffers = this.buffers.map((b) => {
        const grown = new Float32Array(size);
        grown.set(b.subarray(keepFrom, this.held));
        return grown;
      });
    } else {
      for (const b of this.buffers) b.copyWithin(0, keepFrom, this.held);
    }
    this.held -= keepFrom;
    this.firstIndex += keepFrom;
  }

  /** Bytes the buffers take (for the memory a device costs). */
  get bytes(): number {
    return this.buffers.length * this.buffers[0].byteLength;
  }

  /** Forgets everything held (after a gap in the stream); indices continue. */
  reset(): void {
    this.firstIndex = this.position;
    this.held = 0;
    this.nextStart = this.firstIndex;
  }
}
