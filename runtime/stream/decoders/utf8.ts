// Strict UTF-8 for JSON payloads: a binary payload sent to a JSON topic must be refused with the
// byte offset where it stops being text, not parsed as replacement characters.
import { isUtf8 } from 'node:buffer';

/** Non-fatal, BOM dropped; only ever given bytes that isUtf8 passed. */
const utf8 = new TextDecoder('utf-8');

/** The payload as text, or undefined when it is not valid UTF-8 (checked natively, without throwing). */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  return isUtf8(bytes) ? utf8.decode(bytes) : undefined;
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence; -1 when all are valid. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number; // smallest code point for this length: anything below is an overlong form
    if (b >= 0xc2 && b <= 0xdf) [need, min] = [1, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [need, min] = [2, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [need, min] = [3, 0x10000];
    else return i;
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}
