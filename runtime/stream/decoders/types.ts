// What every payload decoder returns and the interface the pipeline calls. The decoders turn one
// MQTT payload into sample groups; windows, features and the engine never see the wire format.

export type DecoderKind = 'json' | 'float32' | 'sparkplug';

export interface DecodedSamples {
  /** Device id (from the topic by the caller, or from the payload where the format carries it, e.g. Sparkplug). */
  device: string;
  /**
   * Samples by channel name; every channel the same length (1 for a single sample). Treat them
   * as read-only: a planar float32 block may return views of the payload's own memory.
   */
  channels: Record<string, Float32Array>;
  /** Time of the first sample, ms since the Unix epoch, when the payload carries one. */
  timestampMs?: number;
  /** Sample rate in Hz when the payload says so. */
  sampleRate?: number;
  /** The publisher's message number when the payload carries one (numbered messages; Sparkplug seq). */
  seq?: number;
}

export interface DecodeContext {
  /** The MQTT topic the payload came on; every error message starts with it. */
  topic: string;
  /** Device id the pipeline derived from the topic (may be overridden by the payload, e.g. Sparkplug). */
  device: string;
}

export interface Decoder {
  readonly kind: DecoderKind;
  /**
   * Decodes one MQTT payload into zero or more sample groups (Sparkplug: one per device/metric
   * group; BIRTH/DEATH give none). Throws only EdgeInferError, whose message names the topic.
   */
  decode(payload: Uint8Array, ctx: DecodeContext): DecodedSamples[];
  /**
   * Forgets what the decoder knows of message order (Sparkplug seq): the messages between the
   * last one it decoded and the next were handled elsewhere (by a run before a restart), so the
   * next number is taken as it comes. Decoders that keep no order need not have it.
   */
  resync?(): void;
}
