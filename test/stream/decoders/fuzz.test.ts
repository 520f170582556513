// Fuzz: 100,000 seeded random payloads (random bytes, JSON-ish text, truncated and mutated
// valid payloads of every format) fed to every decoder. A decoder may refuse them, but only with
// an EdgeInferError naming the topic; what it accepts must be well-formed; nothing may hang.
import { beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../../../devices';
import { EdgeInferError } from '../../../runtime/errors';
import type { DecodedSamples, Decoder } from '../../../runtime/stream/decoders';
import { MAX_TIMESTAMP_MS } from '../../../runtime/stream/decoders/timestamp';
import { mutate } from '../../helpers/mutate';
import { makeSamples, type DecoderFixture } from './contract';
import { FIXTURES } from './fixtures';
import { DEVICE, dbirth, nbirth, ndeath, rawData, topicOf } from './sparkplug-helpers';

const CASES = 100_000;
const SEED = 20_240_501;
/** Far above any decode of these small payloads, far below a hang. */
const SLOWEST_ALLOWED_MS = 1000;

interface Case {
  payload: Uint8Array;
  /** 0..1: picks the topic for decoders that read it (Sparkplug). */
  topicDraw: number;
}

/** Valid payloads of every format, to truncate and mutate. */
function validPool(): Uint8Array[] {
  const pool: Uint8Array[] = [];
  for (const f of FIXTURES) for (const n of [1, 3, 17]) for (const k of [0, 1]) pool.push(f.encode(makeSamples(n, n + k), k));
  pool.push(nbirth(), dbirth(1), ndeath(0), rawData(2, [{ alias: 11, floatValue: 1 }, { alias: 12, intValue: 7 }, { name: 'x', stringValue: 's' }, { alias: 1, isNull: true }]));
  pool.push(Buffer.from('{"data": {"vib_x": 1, "vib_y": 2, "vib_z": 3}, "ts": "2024-01-01T00:00:00Z", "seq": 3}'));
  pool.push(Buffer.from('[{"vib_x": 1, "vib_y": 2, "vib_z": 3}, {"vib_x": 4, "vib_y": 5, "vib_z": 6}]'));
  return pool;
}

const KEYS = ['vib_x', 'vib_y', 'vib_z', 'data', 'payload', 'samples', 'ts', 'seq', '__proto__', 'constructor', 'x', ''];
const NUMBERS = ['0', '-0', '1', '-1.5', '1e400', '-1e400', '1e39', '3.4e38', '5e-324', '1.', '.5', '01', '0x10', 'NaN', 'Infinity', '-Infinity', '9007199254740993'];
const STRINGS = ['"abc"', '"vib_x"', '"\\u0000"', '"2024-05-01T00:00:00Z"', '"é"', '"\\ud800"', '""'];

function jsonish(r: Random, depth: number): string {
  const pick = <T>(xs: readonly T[]): T => xs[r.int(xs.length)];
  const roll = r.int(10);
  if (depth <= 0 || roll < 4) return roll < 3 ? pick(NUMBERS) : pick([...STRINGS, 'true', 'false', 'null']);
  const n = r.int(6);
  if (roll < 7) return `[${Array.from({ length: n }, () => jsonish(r, depth - 1)).join(',')}]`;
  return `{${Array.from({ length: n }, () => `"${pick(KEYS)}":${jsonish(r, depth - 1)}`).join(',')}}`;
}


function generate(): Case[] {
  const r = new Random(SEED, 'decoder-fuzz');
  const pool = validPool();
  const cases: Case[] = [];
  for (let i = 0; i < CASES; i++) {
    let payload: Uint8Array;
    const kind = r.int(10);
    if (kind < 2) payload = Uint8Array.from({ length: r.int(200) }, () => r.int(256));
    else if (kind < 4) {
      payload = Buffer.from(jsonish(r, 4));
      if (r.int(4) === 0) payload = mutate(r, payload);
    } else {
      const valid = pool[r.int(pool.length)];
      payload = kind < 7 ? valid.subarray(0, r.int(valid.length)) : mutate(r, valid);
    }
    // Now and then at an odd offset in a larger buffer, as Buffer slices of a socket chunk arrive.
    if (r.int(4) === 0) {
      const backing = new Uint8Array(payload.length + 1 + r.int(7));
      backing.set(payload, backing.length - payload.length);
      payload = backing.subarray(backing.length - payload.length);
    }
    cases.push({ payload, topicDraw: r.uniform() });
  }
  return cases;
}

const SPARKPLUG_OTHER_TOPICS = [topicOf('NBIRTH'), topicOf('DBIRTH', DEVICE), topicOf('NDEATH'), topicOf('DDEATH', DEVICE), topicOf('NCMD'), 'spBv1.0/STATE/host', 'spBv1.0/plant/NDATA', 'plant/x'];

/** Sparkplug decoders see mostly their data topic, sometimes the other message types. */
function topicFor(f: DecoderFixture, draw: number): string {
  if (!f.prelude || draw < 0.75) return f.topic;
  return SPARKPLUG_OTHER_TOPICS[Math.floor(((draw - 0.75) / 0.25) * SPARKPLUG_OTHER_TOPICS.length)];
}

/** What is wrong with a decoder's output, or undefined when it is well-formed. */
function malformed(groups: unknown): string | undefined {
  if (!Array.isArray(groups)) return 'did not return an array';
  for (const g of groups as DecodedSamples[]) {
    if (typeof g.device !== 'string') return 'a group without a device';
    const arrays = Object.values(g.channels ?? {});
    if (arrays.length === 0) return 'a group without channels';
    for (const a of arrays) {
      if (!(a instanceof Float32Array)) return 'a channel that is not a Float32Array';
      if (a.length !== arrays[0].length || a.length === 0) return 'channels of unequal or zero length';
      for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return `a non-finite sample ${a[i]}`;
    }
    // Past the bound, a window's time would not be a Date (toISOString throws).
    if (g.timestampMs !== undefined && !(Math.abs(g.timestampMs) <= MAX_TIMESTAMP_MS)) return `a timestamp past the bound: ${g.timestampMs}`;
  }
  return undefined;
}

const hex = (b: Uint8Array) => Buffer.from(b.subarray(0, 64)).toString('hex');

describe('decoder fuzz', () => {
  let cases: Case[];
  beforeAll(() => {
    cases = generate();
  });

  it.each(FIXTURES.map((f) => [f.name, f] as const))(`should survive ${CASES} random payloads: %s`, (_, fixture) => {
    const problems: string[] = [];
    let decoder: Decoder = fixture.create();
    const prelude = fixture.prelude?.() ?? [];
    const prime = () => {
      decoder = fixture.create();
      for (const m of prelude) decoder.decode(m.payload, { topic: m.topic, device: 'unused' });
    };
    let slowest = 0;
    let accepted = 0;
    let stateMayHaveChanged = true;
    const started = performance.now();
    for (const c of cases) {
      // Stateful decoders start each case from their births, so that mutated DATA gets past the
      // seq check to the metrics. Priming costs two decodes, so it is skipped after a payload
      // refused as broken protobuf, which leaves the state as it was (except on NBIRTH topics).
      if (stateMayHaveChanged) prime();
      const topic = topicFor(fixture, c.topicDraw);
      stateMayHaveChanged = fixture.prelude !== undefined;
      const t0 = performance.now();
      try {
        const why = malformed(decoder.decode(c.payload, { topic, device: 'fuzz-device' }));
        if (why) problems.push(`${why}: ${hex(c.payload)}`);
        accepted++;
      } catch (err) {
        if (!(err instanceof EdgeInferError)) problems.push(`threw ${String(err)}: ${hex(c.payload)}`);
        else if (!err.message.startsWith(`${topic}: `)) problems.push(`message without the topic: ${err.message}`);
        else if (err.message.includes('not a valid Sparkplug B protobuf') && !topic.includes('/NBIRTH/')) stateMayHaveChanged = false;
      }
      slowest = Math.max(slowest, performance.now() - t0);
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`fuzz ${fixture.name}: ${CASES} payloads in ${seconds.toFixed(2)} s, ${accepted} accepted, slowest ${slowest.toFixed(1)} ms`);
    expect(problems.slice(0, 10)).toEqual([]);
    expect(slowest).toBeLessThan(SLOWEST_ALLOWED_MS);
  });
});
