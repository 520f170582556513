// Seeded pseudo-random numbers, so that a simulated machine is the same machine every time it is
// built from the same seed (training sets, tests and bug reports all depend on it). Never use
// Math.random in the simulators.
//
// The generator is xoshiro128** (Blackman & Vigna): 128 bits of state, 32-bit output, fast in
// plain JavaScript integer arithmetic. Its state is filled by splitmix32 from a hash of the seed
// and a list of tags, so that independent parts of a simulation (each stream, each channel's
// noise, the load process) draw from independent sequences: adding a channel never changes the
// numbers another channel sees.
import { fmix32 } from '../runtime/hash';

function mix(h: number, word: number): number {
  return fmix32((Math.imul(h ^ (word >>> 0), 0x9e3779b1) + 0x7f4a7c15) >>> 0);
}

/**
 * A 32-bit hash of a seed and tags. Any finite number is a seed (its float64 bits are hashed, so
 * 1 and 1.5 differ); tags are strings or numbers.
 */
export function hashSeed(seed: number, ...tags: readonly (string | number)[]): number {
  const bits = new DataView(new ArrayBuffer(8));
  let h = 0x6a09e667;
  const addNumber = (n: number): void => {
    bits.setFloat64(0, n === 0 ? 0 : n); // +0 and -0 are the same seed
    h = mix(h, bits.getUint32(0));
    h = mix(h, bits.getUint32(4));
  };
  addNumber(seed);
  for (const tag of tags) {
    if (typeof tag === 'number') {
      addNumber(tag);
    } else {
      h = mix(h, tag.length);
      for (let i = 0; i < tag.length; i++) h = mix(h, tag.charCodeAt(i));
    }
  }
  return h;
}

export class Random {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare = 0;
  private hasSpare = false;

  /** A generator for `seed`; tags select an independent sequence from the same seed. */
  constructor(seed: number, ...tags: readonly (string | number)[]) {
    // splitmix32 spreads the 32-bit hash over the 128-bit state (never all zero).
    let x = hashSeed(seed, ...tags);
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** The next 32-bit unsigned integer (xoshiro128**). */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in the open interval (lo, hi). */
  uniform(lo = 0, hi = 1): number {
    return lo + ((this.nextUint32() + 0.5) / 4294967296) * (hi - lo);
  }

  /** Normal with the given mean and standard deviation (Marsaglia's polar method, the second value kept). */
  gaussian(mean = 0, sd = 1): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return mean + sd * this.spare;
    }
    let u: number;
    let v: number;
    let q: number;
    do {
      u = 2 * this.uniform() - 1;
      v = 2 * this.uniform() - 1;
      q = u * u + v * v;
    } while (q >= 1 || q === 0);
    const r = Math.sqrt((-2 * Math.log(q)) / q);
    this.spare = v * r;
    this.hasSpare = true;
    return mean + sd * u * r;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** A uniformly drawn phase in radians, [0, 2π). */
  phase(): number {
    return this.uniform(0, 2 * Math.PI);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
