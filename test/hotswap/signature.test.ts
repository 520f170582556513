// Signed updates: the public key in each form the config takes, and the manifest's signature.
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parsePublicKey, sha256Hex, updateManifest, verifyManifest } from '../../runtime/hotswap';

const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const der = publicKey.export({ type: 'spki', format: 'der' });

describe('parsePublicKey', () => {
  it('should read PEM, base64 SPKI DER and the base64 of the 32 raw bytes as the same key', () => {
    const raw = der.subarray(der.length - 32).toString('base64');
    for (const text of [pem, der.toString('base64'), raw]) expect(parsePublicKey(text).equals(publicKey)).toBe(true);
  });

  it('should refuse a key that is not ed25519, and text that is no key, with E_ARGUMENT', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => parsePublicKey(rsa)).toThrow(/expected an ed25519 public key, got a rsa key/);
    expect(() => parsePublicKey('not a key!')).toThrow(/expected an ed25519 public key as PEM or base64/);
    expect(() => parsePublicKey('AAAA')).toThrow(/does not read/);
  });
});

describe('updateManifest and verifyManifest', () => {
  const manifest = updateManifest('fault-classifier', sha256Hex('onnx'), sha256Hex('card'));

  it('should spell the model and both hashes, one per line', () => {
    expect(manifest.toString()).toBe(`edge-infer model update 1\nmodel fault-classifier\nonnx-sha256 ${sha256Hex('onnx')}\ncard-sha256 ${sha256Hex('card')}\n`);
  });

  it('should verify the key\'s signature and nothing else', () => {
    const sig = sign(null, manifest, privateKey).toString('base64');
    expect(verifyManifest(publicKey, manifest, sig)).toBe(true);
    expect(verifyManifest(publicKey, updateManifest('fault-classifier', sha256Hex('onnx'), sha256Hex('other card')), sig)).toBe(false);
    const other = generateKeyPairSync('ed25519').privateKey;
    expect(verifyManifest(publicKey, manifest, sign(null, manifest, other).toString('base64'))).toBe(false);
    expect(verifyManifest(publicKey, manifest, 'c2hvcnQ=')).toBe(false); // not 64 bytes
  });
});
