// Schema problems in words a person can act on: where (the field path as it is written in the
// JSON or YAML, `streams[0].channels[1].unit`) and what came. Cards, device profiles, plants,
// decoder and gateway configs all word their errors this way.

/** How many of something: `1 item`, `3 items`. */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** A value as an error message shows it: `nothing`, `null`, `"abc"`, `3 items`, `an object`. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return count(v.length, 'item');
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** The value at a path inside a parsed document, or undefined. */
export function valueAt(obj: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

/**
 * `input.channels[2].unit`. With a `prefix` (an argument's name) every path starts with it; an
 * empty path reads as `whole`, e.g. `(card)`.
 */
export function formatPath(path: readonly PropertyKey[], whole: string, prefix = ''): string {
  let out = prefix;
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out || whole;
}
