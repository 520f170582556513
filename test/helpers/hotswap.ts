// Model updates for the hot-swap tests and bench: the example models' files as update payloads,
// signed or not, and variants made from a real model by changing its weights with the project's
// ONNX IO (a variant that disagrees, one that overflows on loud input).
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { encodeUpdatePayload, sha256Hex, updateManifest } from '../../runtime/hotswap';
import { decodeModel, encodeModel, floatTensor, floatValues, tensorDims } from '../../runtime/onnx';
import { bundledModelsDir } from '../../runtime/paths';

export interface VariantFiles {
  onnx: Uint8Array;
  cardText: string;
}

/** An example model's variant as files: `exampleVariant('fault-classifier', 'int8')`. */
export function exampleVariant(model: string, variant: string): VariantFiles {
  const stem = path.join(bundledModelsDir(), model, `${model}.${variant}`);
  return { onnx: readFileSync(`${stem}.onnx`), cardText: readFileSync(`${stem}.model.json`, 'utf8') };
}

/** The card text with another variant name (a made variant is not the file it came from). */
export function renamed(cardText: string, variant: string): string {
  return JSON.stringify({ ...JSON.parse(cardText), variant }, null, 2);
}

/** A model with some initializers' values changed by `change(name, values, dims)` (which edits them in place). */
export function withWeights(onnx: Uint8Array, change: (name: string, values: Float32Array, dims: number[]) => boolean): Uint8Array {
  const model = decodeModel(onnx, 'update test');
  const inits = model.graph!.initializer!;
  inits.forEach((t, i) => {
    const dims = tensorDims(t);
    const values = Float32Array.from(floatValues(t));
    if (change(t.name ?? '', values, dims)) inits[i] = floatTensor(t.name ?? '', dims, values);
  });
  return encodeModel(model);
}

export function keyPair(): { publicKey: KeyObject; privateKey: KeyObject; publicPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { publicKey, privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** The base64 ed25519 signature of an update's manifest. */
export function signUpdate(privateKey: KeyObject, model: string, v: VariantFiles): string {
  return sign(null, updateManifest(model, sha256Hex(v.onnx), sha256Hex(v.cardText)), privateKey).toString('base64');
}

/** An update payload of a variant (signed when a signature is given), binary unless `json`. */
export function updatePayload(v: VariantFiles, signature?: string, form: 'binary' | 'json' = 'binary'): Buffer {
  return encodeUpdatePayload(v.onnx, v.cardText, signature, form);
}

/** The header of an update payload (the JSON form's whole object). */
export function headerOf(payload: Buffer): Record<string, unknown> {
  const nl = payload.indexOf(10);
  return JSON.parse(String(nl < 0 ? payload : payload.subarray(0, nl)));
}
