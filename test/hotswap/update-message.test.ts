// The MQTT update payload: what a good one reads as, and each way a bad one is refused, named.
import { describe, expect, it } from 'vitest';
import { UPDATE_FORMAT, encodeUpdatePayload, parseUpdatePayload, sha256Hex } from '../../runtime/hotswap';
import { exampleVariant } from '../helpers/hotswap';

const SRC = 'mqtt:edge-infer/models/fault-classifier/update';
const v = exampleVariant('fault-classifier', 'int8');
const good = () => JSON.parse(String(encodeUpdatePayload(v.onnx, v.cardText, undefined, 'json'))) as Record<string, unknown>;
/** The binary form with its header changed, and the model bytes given. */
const binary = (change: (h: Record<string, unknown>) => void, body: Uint8Array = v.onnx) => {
  const payload = encodeUpdatePayload(v.onnx, v.cardText);
  const head = JSON.parse(String(payload.subarray(0, payload.indexOf(10))));
  change(head);
  return parseUpdatePayload(Buffer.concat([Buffer.from(JSON.stringify(head)), Buffer.from('\n'), body]), 'fault-classifier', SRC, 64 * 2 ** 20);
};
const parse = (body: unknown, max = 64 * 2 ** 20) => parseUpdatePayload(Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), 'fault-classifier', SRC, max);

describe('parseUpdatePayload', () => {
  it.each(['binary', 'json'] as const)('should read back what encodeUpdatePayload wrote in the %s form: the bytes, the card text, their sha256', (form) => {
    const payload = encodeUpdatePayload(v.onnx, v.cardText, 'c2lnbmF0dXJl', form);
    const c = parseUpdatePayload(payload, 'fault-classifier', SRC, 64 * 2 ** 20);
    expect(Buffer.from(c.onnx).equals(Buffer.from(v.onnx))).toBe(true);
    expect(c).toMatchObject({ model: 'fault-classifier', cardText: v.cardText, sha256: sha256Hex(v.onnx), signature: 'c2lnbmF0dXJl', source: SRC });
    // The binary form carries the model as it is: a header line longer, not a third larger.
    if (form === 'binary') expect(payload.length).toBeLessThan(v.onnx.byteLength + v.cardText.length * 2 + 300);
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
    ['base64 with other characters', () => parse({ ...good(), onnx: 'ab!d' }), /onnx: expected the model bytes in base64, got text with other characters/],
    ['a binary header without onnxBytes', () => binary((h) => delete h.onnxBytes), /onnxBytes: expected the length of the model bytes after the header line/],
    ['a binary body shorter than its header says', () => binary(() => undefined, v.onnx.subarray(0, 1000)), /the header says \d+ bytes of model follow it, 1000 do \(incomplete or corrupted\)/],
    ['base64 in a binary header', () => binary((h) => (h.onnx = 'AAAA')), /unknown field 'onnx' in the header line, expected format, card, sha256, signature, onnxBytes/],
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
