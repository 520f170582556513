// The one way to get a decoder: the configuration is checked here, once, so decode() never has
// to wonder whether its settings make sense.
import { parseDecoderConfig, type DecoderConfig } from './config';
import { Float32Decoder } from './float32';
import { JsonDecoder } from './json';
import { SparkplugDecoder } from './sparkplug';
import type { Decoder } from './types';

/** A decoder for `config`; throws E_ARGUMENT naming the field when the configuration is wrong. */
export function createDecoder(config: DecoderConfig): Decoder {
  const c = parseDecoderConfig(config);
  switch (c.kind) {
    case 'json':
      return new JsonDecoder(c);
    case 'float32':
      return new Float32Decoder(c);
    case 'sparkplug':
      return new SparkplugDecoder(c);
  }
}
