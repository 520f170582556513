// Small integer hashes shared by the parts that need a stable, well-mixed number from a name or a
// seed: the device partition (runtime/stream/partition.ts) and the simulators' random streams
// (devices/random.ts).

/** murmur3's 32-bit finalizer: every input bit affects every output bit. Returns an unsigned 32-bit number. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
