// The sample shapes a JSON payload may hold at its data field, turned into one Float32Array per
// channel. Each shape is one function; the first error names the exact path of the bad value.
import { decodeError, describeValue, float32Problem } from './fail';
import { childPath, isJsonObject, where } from './json-path';

export interface JsonSampleOptions {
  topic: string;
  /** Path of the data in messages ('' for the document itself). */
  path: string;
  /** Configured channel names, if any. */
  names: readonly string[] | undefined;
  /** Keys of a named-channel object that hold something else (the timestamp, seq, sample rate fields). */
  skipKeys: ReadonlySet<string>;
}

type Channels = Record<string, Float32Array>;

/**
 * Accepted shapes: a number (one sample; one channel name), an object of named channels with a
 * number each (one sample) or an array each (a block), an array of numbers (a block of one
 * channel), an array of rows [[x, y, z], ...] (named by `channels`), an array of records
 * [{ vib_x, vib_y }, ...].
 */
export function readJsonSamples(data: unknown, o: JsonSampleOptions): Channels {
  if (typeof data === 'number') return { [singleName(o, 'is a single number')]: Float32Array.of(sample(data, o.path, o)) };
  if (Array.isArray(data)) return readArray(data, o);
  if (isJsonObject(data)) return readNamed(data, o);
  throw decodeError(o.topic, 'E_INPUT_SHAPE', `${where(o.path)} is ${describeValue(data)}, expected samples: a number, an array, or an object of channels`);
}

/** The one channel name that unnamed single-channel data needs. */
function singleName(o: JsonSampleOptions, what: string): string {
  if (o.names?.length === 1) return o.names[0];
  const got = o.names ? `it names ${o.names.length} (${o.names.join(', ')})` : 'none is configured';
  throw decodeError(o.topic, 'E_INPUT_SHAPE', `${where(o.path)} ${what}, which needs exactly one name in the decoder's channels, but ${got}`);
}

/** One value as a float32 sample, or an error naming its path (and channel where the path does not). */
function sample(v: unknown, path: string, o: JsonSampleOptions, channel?: string): number {
  const about = channel === undefined ? where(path) : `${where(path)} (channel '${channel}')`;
  if (typeof v !== 'number') throw decodeError(o.topic, 'E_INPUT_VALUE', `${about} is ${describeValue(v)}, expected a number`);
  const problem = float32Problem(v);
  if (problem !== undefined) throw decodeError(o.topic, 'E_INPUT_VALUE', `${about} is ${problem}, expected a finite number`);
  return v;
}

function noSamples(o: JsonSampleOptions, path: string): never {
  throw decodeError(o.topic, 'E_INPUT_SHAPE', `${where(path)} holds no samples (an empty array)`);
}

/** { vib_x: 0.1, vib_y: 0.2 } or { vib_x: [...], vib_y: [...] } */
function readNamed(obj: Record<string, unknown>, o: JsonSampleOptions): Channels {
  const names = o.names ?? Object.keys(obj).filter((k) => !o.skipKeys.has(k));
  if (names.length === 0) throw decodeError(o.topic, 'E_INPUT_SHAPE', `${where(o.path)} holds no channels (an empty object)`);
  for (const name of names) {
    if (!Object.hasOwn(obj, name)) throw decodeError(o.topic, 'E_INPUT_SHAPE', `${where(o.path)} has no channel '${name}' (expected ${names.join(', ')})`);
  }
  const first = obj[names[0]];
  // Entries, not assignment: a channel may be called '__proto__' in JSON, and must stay a channel.
  const out: [string, Float32Array][] = [];
  if (!Array.isArray(first)) {
    for (const name of names) {
      const v = obj[name];
      if (Array.isArray(v)) throw mixed(o, names[0], name);
      out.push([name, Float32Array.of(sample(v, childPath(o.path, name), o))]);
    }
    return Object.fromEntries(out);
  }
  const n = first.length;
  if (n === 0) noSamples(o, childPath(o.path, names[0]));
  for (const name of names) {
    const values = obj[name];
    const path = childPath(o.path, name);
    if (!Array.isArray(values)) {
      if (typeof values === 'number') throw mixed(o, name, names[0]);
      throw decodeError(o.topic, 'E_INPUT_VALUE', `${where(path)} is ${describeValue(values)}, expected an array of numbers like ${where(childPath(o.path, names[0]))}`);
    }
    if (values.length !== n) {
      throw decodeError(o.topic, 'E_INPUT_SHAPE', `channels differ in length: ${where(childPath(o.path, names[0]))} has ${n} samples, ${where(path)} has ${values.length}`);
    }
    const dst = new Float32Array(n);
    for (let i = 0; i < n; i++) dst[i] = sample(values[i], `${path}[${i}]`, o);
    out.push([name, dst]);
  }
  return Object.fromEntries(out);
}

function mixed(o: JsonSampleOptions, single: string, block: string): Error {
  return decodeError(o.topic, 'E_INPUT_SHAPE', `${where(o.path)} mixes single values and arrays: '${single}' is a number but '${block}' is an array`);
}

function readArray(arr: unknown[], o: JsonSampleOptions): Channels {
  if (arr.length === 0) noSamples(o, o.path);
  const first = arr[0];
  if (Array.isArray(first)) return readRows(arr, o);
  if (isJsonObject(first)) return readRecords(arr, o);
  // Anything else is taken as an array of numbers, so a bad first value is named like any other.
  const name = singleName(o, 'is an array of numbers');
  const dst = new Float32Array(arr.length);
  for (let i = 0; i < arr.length; i++) dst[i] = sample(arr[i], childPath(o.path, i), o, name);
  return { [name]: dst };
}

/** [[x0, y0, z0], [x1, y1, z1], ...]: one row per sample, columns named by `channels`. */
function readRows(rows: unknown[], o: JsonSampleOptions): Channels {
  const names = o.names;
  if (!names) {
    throw decodeError(o.topic, 'E_INPUT_SHAPE', `${where(o.path)} is an array of rows, whose columns need names: set the decoder's channels`);
  }
  const width = names.length;
  const columns = names.map(() => new Float32Array(rows.length));
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    const rowPath = childPath(o.path, i);
    if (!Array.isArray(row)) throw decodeError(o.topic, 'E_INPUT_SHAPE', `${where(rowPath)} is ${describeValue(row)}, expected a row of ${width} numbers like ${where(childPath(o.path, 0))}`);
    if (row.length !== width) {
      throw decodeError(o.topic, 'E_INPUT_SHAPE', `${where(rowPath)} has ${row.length} values, expected ${width} (one per channel: ${names.join(', ')})`);
    }
    for (let c = 0; c < width; c++) columns[c][i] = sample(row[c], childPath(rowPath, c), o, names[c]);
  }
  return Object.fromEntries(names.map((name, c) => [name, columns[c]]));
}

/** [{ vib_x: .., vib_y: .. }, ...]: one record per sample. */
function readRecords(records: unknown[], o: JsonSampleOptions): Channels {
  const first = records[0] as Record<string, unknown>;
  const configured = o.names !== undefined;
  const names = o.names ?? Object.keys(first);
  if (names.length === 0) throw decodeError(o.topic, 'E_INPUT_SHAPE', `${where(childPath(o.path, 0))} holds no channels (an empty object)`);
  const columns = names.map(() => new Float32Array(records.length));
  for (let i = 0; i < records.length; i++) {
    const rec = records[i];
    const recPath = childPath(o.path, i);
    if (!isJsonObject(rec)) throw decodeError(o.topic, 'E_INPUT_SHAPE', `${where(recPath)} is ${describeValue(rec)}, expected a record of channels like ${where(childPath(o.path, 0))}`);
    for (let c = 0; c < names.length; c++) {
      if (!Object.hasOwn(rec, names[c])) throw decodeError(o.topic, 'E_INPUT_SHAPE', `${where(recPath)} has no channel '${names[c]}' (expected ${names.join(', ')})`);
      columns[c][i] = sample(rec[names[c]], childPath(recPath, names[c]), o);
    }
    // Without configured names the first record defines the channels; a record with more is ragged.
    if (!configured && Object.keys(rec).length !== names.length) {
      const extra = Object.keys(rec).find((k) => !names.includes(k));
      throw decodeError(o.topic, 'E_INPUT_SHAPE', `${where(recPath)} has channel '${extra}', which ${where(childPath(o.path, 0))} does not (expected ${names.join(', ')})`);
    }
  }
  return Object.fromEntries(names.map((name, c) => [name, columns[c]]));
}
