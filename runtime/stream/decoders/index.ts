// Payload decoders: the public face of runtime/stream/decoders. Other folders import only this.
export type { DecodedSamples, DecodeContext, Decoder, DecoderKind } from './types';
export {
  DecoderConfigSchema,
  JsonDecoderConfigSchema,
  Float32DecoderConfigSchema,
  SparkplugDecoderConfigSchema,
  JSON_MAX_BYTES_DEFAULT,
  parseDecoderConfig,
} from './config';
export type {
  DecoderConfig,
  JsonDecoderConfig,
  Float32DecoderConfig,
  SparkplugDecoderConfig,
  ResolvedDecoderConfig,
  ResolvedJsonDecoderConfig,
  ResolvedFloat32DecoderConfig,
  ResolvedSparkplugDecoderConfig,
} from './config';
export { createDecoder } from './create';
export { encodeFloat32Block, EDGE_INFER_MAGIC, EDGE_INFER_HEADER_BYTES } from './float32-block';
export type { EncodeFloat32BlockOptions, Float32BlockHeader, Float32Layout } from './float32-block';
export { encodeJsonSamples } from './json-encode';
export type { EncodeJsonSamplesOptions } from './json-encode';
export { parseSparkplugTopic } from './sparkplug-topic';
export type { SparkplugTopic, SparkplugMessageType } from './sparkplug-topic';
