// Mutations of a valid payload for the fuzz runs: the decoders' own and the gateway's.
import type { Random } from '../../devices/random';

/** Bit flips, random bytes, insertions, deletions and splices of the payload's own bytes. */
export function mutate(r: Random, src: Uint8Array): Buffer {
  const out = Array.from(src);
  for (let m = 1 + r.int(4); m > 0; m--) {
    const at = r.int(out.length + 1);
    switch (r.int(5)) {
      case 0:
        if (out.length) out[at % out.length] ^= 1 << r.int(8);
        break;
      case 1:
        if (out.length) out[at % out.length] = r.int(256);
        break;
      case 2:
        out.splice(at, 0, r.int(256));
        break;
      case 3:
        out.splice(at, 1 + r.int(8));
        break;
      default:
        out.splice(at, 0, ...out.slice(r.int(out.length + 1), r.int(out.length + 1)));
    }
  }
  return Buffer.from(out);
}
