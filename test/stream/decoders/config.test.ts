// Decoder configuration: defaults, and errors that name the field at createDecoder time.
import { describe, expect, it } from 'vitest';
import { EdgeInferError } from '../../../runtime/errors';
import { createDecoder, parseDecoderConfig, type DecoderConfig } from '../../../runtime/stream/decoders';

function refusedConfig(config: unknown): string {
  try {
    createDecoder(config as DecoderConfig);
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeInferError);
    expect((err as EdgeInferError).code).toBe('E_ARGUMENT');
    return (err as Error).message;
  }
  throw new Error('expected the configuration to be refused');
}

describe('decoder configuration', () => {
  it('should fill in the defaults', () => {
    expect(parseDecoderConfig({ kind: 'json' })).toEqual({ kind: 'json', maxBytes: 1024 * 1024 });
    expect(parseDecoderConfig({ kind: 'float32', channels: ['x'] })).toEqual({ kind: 'float32', channels: ['x'], layout: 'interleaved', header: 'none' });
    expect(parseDecoderConfig({ kind: 'sparkplug' })).toEqual({ kind: 'sparkplug' });
  });

  it('should make a decoder of each kind', () => {
    expect(createDecoder({ kind: 'json' }).kind).toBe('json');
    expect(createDecoder({ kind: 'float32', channels: ['x'] }).kind).toBe('float32');
    expect(createDecoder({ kind: 'sparkplug', channels: { 'Vibration/X': 'vib_x' } }).kind).toBe('sparkplug');
  });

  it('should refuse an unknown kind and a configuration that is not an object', () => {
    expect(refusedConfig({ kind: 'xml' })).toBe(`decoder config: kind: expected one of 'json', 'float32', 'sparkplug', got "xml"`);
    expect(refusedConfig(null)).toMatch(/decoder config: expected an object like \{ kind: 'json' \}, got null/);
    expect(refusedConfig({})).toMatch(/kind: expected one of .*, got nothing/);
  });

  it('should name a missing, empty or repeated channel list', () => {
    expect(refusedConfig({ kind: 'float32' })).toBe('float32 decoder config: channels: missing, expected array');
    expect(refusedConfig({ kind: 'float32', channels: [] })).toBe('float32 decoder config: channels: expected at least one name, got an empty list');
    expect(refusedConfig({ kind: 'float32', channels: ['x', 'y', 'x'] })).toBe("float32 decoder config: channels: channel 'x' is named twice");
    expect(refusedConfig({ kind: 'json', channels: ['x', ''] })).toBe('json decoder config: channels[1]: expected a non-empty string, got ""');
  });

  it('should name every bad field at once, and say which fields exist when one is misspelt', () => {
    const message = refusedConfig({ kind: 'float32', channels: ['x'], layout: 'rows', samplesPerMesage: 512 });
    expect(message).toContain('layout: expected "interleaved" or "planar", got "rows"');
    expect(message).toContain('samplesPerMesage: unknown field, expected one of kind, channels, layout, header, samplesPerMessage');
  });

  it('should refuse numbers out of range and paths that are not dot paths', () => {
    expect(refusedConfig({ kind: 'float32', channels: ['x'], samplesPerMessage: 0 })).toBe('float32 decoder config: samplesPerMessage: expected a number > 0, got 0');
    expect(refusedConfig({ kind: 'float32', channels: ['x'], samplesPerMessage: 2.5 })).toBe('float32 decoder config: samplesPerMessage: expected a whole number, got 2.5');
    expect(refusedConfig({ kind: 'json', maxBytes: -1 })).toBe('json decoder config: maxBytes: expected a number > 0, got -1');
    expect(refusedConfig({ kind: 'json', field: 'payload..samples' })).toBe('json decoder config: field: expected a dot path like "payload.samples", got "payload..samples"');
  });

  it('should refuse two Sparkplug metrics mapped to one channel', () => {
    expect(refusedConfig({ kind: 'sparkplug', channels: { 'Vibration/X': 'x', 'Accel/X': 'x' } })).toBe("sparkplug decoder config: channels: metrics 'Vibration/X' and 'Accel/X' both map to channel 'x'");
  });
});
