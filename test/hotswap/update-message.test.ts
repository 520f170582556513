// The MQTT update payload: what a good one reads as, and each way a bad one is refused, named.
import { describe, expect, it } from 'vitest';
import { UPDATE_FORMAT, encodeUpdatePayload, parseUpdatePayload, sha256Hex } from '../../runtime/hotswap';
import { exampleVariant } from '../helpers/hotswap';

const SRC = 'mqtt:edge-infer/models/fault-classifier/update';
const v = exampleVariant('fault-classifier', 'int8');
const good = () => JSON.parse(String(encodeUpdatePayload(v.onnx, v.cardText))) as Record<string, unknown>;
const parse = (body: unknown, max = 64 * 2 ** 20) => parseUpdatePayload(Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), 'fault-classifier', SRC, max);

describe('parseUpdatePayload', () => {
  it('should read back what encodeUpdatePayload wrote: the bytes, the card text, their sha256', () => {
    const c = parseUpdatePayload(encodeUpdatePayload(v.onnx, v.cardText, 'c2lnbmF0dXJl'), 'fault-classifier', SRC, 64 * 2 ** 20);
    expect(Buffer.from(c.onnx).equals(Buffer.from(v.onnx))).toBe(true);
    expect(c).toMatchObject({ model: 'fault-classifier', cardText: v.cardText, sha256: sha256Hex(v.onnx), signature: 'c2lnbmF0dXJl', source: SRC });
    expect(good().format).toBe(UPDATE_FORMAT);
  });

  it.each([
    ['over the size limit', () => parse(good(), 1000), /bytes, over the limit of 1000 \(modelUpdates\.maxBytes\)/],
    ['not JSON', () => parse('{nope'), /expected JSON of format edge-infer-model-update\/1, got text that is not JSON/],
    ['an array', () => parse([1]), /expected a JSON object/],
    ['another format', () => parse({ ...good(), format: 'x/2' }), /format: expected 'edge-infer-model-update\/1', got "x\/2"/],
    ['an unknown field', () => parse({ ...good(), extra: 1 }), /unknown field 'extra'/],
    ['a card that is an object', () => parse({ ...good(), card: {} }), /card: expected the card file's text as a string, got object/],
    ['a sha256 that is not hex', () => parse({ ...good(), sha256: 'xyz' }), /sha256: expected 64 lowercase hex digits/],
    ['a signature that is not base64', () => parse({ ...good(), signature: '!!' }), /signature: expected base64 text/],
    ['no model bytes', () => parse({ ...good(), onnx: '' }), /onnx: expected the model bytes in base64/],
    ['bytes that do not hash to the sha256', () => parse({ ...good(), sha256: '0'.repeat(64) }), /sha256: the ONNX bytes hash to [0-9a-f]{64}, the update says 0{64} \(corrupted or incomplete\)/],
  ])('should refuse %s with E_UPDATE naming the source', (_name, run, message) => {
    expect(run).toThrow(message);
    try {
      run();
    } catch (err) {
      expect((err as { code: string }).code).toBe('E_UPDATE');
      expect((err as Error).message.startsWith(`${SRC}: `)).toBe(true);
    }
  });
});
