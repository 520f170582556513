// Dot paths into parsed JSON ('payload.samples', 'data.0.ts'). Only own properties are followed,
// so a path like 'constructor' or '__proto__' finds nothing instead of Object.prototype.

export type JsonPath = readonly string[];

export function splitPath(path: string | undefined): JsonPath {
  return path === undefined ? [] : path.split('.');
}

/** The value at `path`, or undefined when any step is missing. Numeric steps index arrays. */
export function valueAtPath(root: unknown, path: JsonPath): unknown {
  let cur = root;
  for (const step of path) {
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9]\d*)$/.test(step)) return undefined;
      cur = cur[Number(step)];
    } else if (isJsonObject(cur)) {
      if (!Object.hasOwn(cur, step)) return undefined;
      cur = cur[step];
    } else {
      return undefined;
    }
  }
  return cur;
}

export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Joins a field path and a step the way messages show it: `data.vib_y[17]`. */
export function childPath(base: string, step: string | number): string {
  if (typeof step === 'number') return `${base}[${step}]`;
  return base ? `${base}.${step}` : step;
}

/** "field 'data.vib_y[17]'", or "the payload" for the document itself. */
export function where(path: string): string {
  return path ? `field '${path}'` : 'the payload';
}
