// A kind of JSON document the simulators are configured from (device profiles, plants): checked
// strictly, read from a file or from the folder shipped with the package, found by id. Errors
// name the file, the field and what was expected.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import { EdgeInferError } from '../runtime/errors';
import { formatIssues } from './issues';

export interface JsonCatalog<T extends { id: string }> {
  /** Validates a parsed document; `source` names the file in messages. */
  parse(value: unknown, source?: string): T;
  /** Parses JSON text; a syntax error names the file too. */
  parseJson(text: string, source?: string): T;
  /** Reads and validates a file. */
  load(file: string): Promise<T>;
  /** The documents shipped with the package, sorted by id; each call returns fresh copies. */
  builtins(): T[];
  /** A shipped document by id. */
  byId(id: string): T;
}

export function jsonCatalog<T extends { id: string }>(options: {
  schema: z.ZodType<T, unknown>;
  /** What one document is, in messages: 'device profile', 'plant'. */
  kind: string;
  /** What several are: 'profiles', 'plants'. */
  plural: string;
  /** The folder beside this module (TS source) or under the package's devices/ (compiled dist/). */
  folder: string;
}): JsonCatalog<T> {
  const { schema, kind, plural, folder } = options;
  const fail = (message: string, cause?: unknown): EdgeInferError => new EdgeInferError('E_DEVICE_PROFILE', message, cause === undefined ? undefined : { cause });
  const parse = (value: unknown, source = `<${kind}>`): T => {
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    throw fail(`${source}: invalid ${kind}: ${formatIssues(result.error.issues, value, '', `(${kind})`)}`);
  };
  const parseJson = (text: string, source = `<${kind}>`): T => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw fail(`${source}: not valid JSON (${err instanceof Error ? err.message : String(err)})`, err);
    }
    return parse(value, source);
  };
  let cached: T[] | undefined;
  const builtins = (): T[] => {
    if (!cached) {
      const here = path.join(__dirname, folder);
      const dir = existsSync(here) ? here : path.join(__dirname, '..', '..', 'devices', folder);
      cached = readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => parseJson(readFileSync(path.join(dir, f), 'utf8'), path.join(dir, f)))
        .sort((a, b) => a.id.localeCompare(b.id));
    }
    return cached.map((d) => structuredClone(d));
  };
  return {
    parse,
    parseJson,
    async load(file: string): Promise<T> {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        throw fail(`${file}: cannot read the ${kind} (${err instanceof Error ? err.message : String(err)})`, err);
      }
      return parseJson(text, file);
    },
    builtins,
    byId(id: string): T {
      const all = builtins();
      const found = all.find((d) => d.id === id);
      if (!found) throw fail(`unknown ${kind} '${id}'; known ${plural}: ${all.map((d) => d.id).join(', ')}`);
      return found;
    },
  };
}
