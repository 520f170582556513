// Signed model updates: ed25519 (node:crypto) over a short manifest that names the model and the
// sha256 of the ONNX bytes and of the card text, so neither can be swapped under a signature.
import { type KeyObject, createHash, createPublicKey, verify } from 'node:crypto';
import { EdgeInferError } from '../errors';

// SubjectPublicKeyInfo header of an ed25519 key: the 32 raw key bytes follow it.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** sha256 of bytes (or UTF-8 text), hex. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * An ed25519 public key from PEM (`-----BEGIN PUBLIC KEY-----`, as `openssl pkey -pubout` writes
 * it) or base64 (the 32 raw bytes, or the SPKI DER). Throws E_ARGUMENT saying what it got.
 */
export function parsePublicKey(text: string): KeyObject {
  let key: KeyObject;
  try {
    if (text.includes('-----BEGIN')) {
      key = createPublicKey(text);
    } else {
      if (!/^[A-Za-z0-9+/=\s]+$/.test(text)) throw new Error('not PEM and not base64');
      const der = Buffer.from(text.replace(/\s+/g, ''), 'base64');
      key = createPublicKey({ key: der.length === 32 ? Buffer.concat([ED25519_SPKI_PREFIX, der]) : der, format: 'der', type: 'spki' });
    }
  } catch (err) {
    throw new EdgeInferError('E_ARGUMENT', `expected an ed25519 public key as PEM or base64 (32 raw bytes or SPKI DER), got one that does not read (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new EdgeInferError('E_ARGUMENT', `expected an ed25519 public key, got a ${key.asymmetricKeyType ?? 'symmetric'} key`);
  return key;
}

/**
 * What a signature signs (UTF-8 text, each line ending in \n):
 *   edge-infer model update 1
 *   model <id>
 *   onnx-sha256 <hex>
 *   card-sha256 <hex of the card text's UTF-8 bytes>
 */
export function updateManifest(model: string, onnxSha256: string, cardSha256: string): Buffer {
  return Buffer.from(`edge-infer model update 1\nmodel ${model}\nonnx-sha256 ${onnxSha256}\ncard-sha256 ${cardSha256}\n`, 'utf8');
}

/** True when `signature` (base64) is the key's ed25519 signature of the manifest. */
export function verifyManifest(key: KeyObject, manifest: Buffer, signature: string): boolean {
  const sig = Buffer.from(signature, 'base64');
  if (sig.length !== 64) return false; // an ed25519 signature is 64 bytes
  return verify(null, manifest, key, sig);
}
