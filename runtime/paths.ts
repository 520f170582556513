// Where the package's own files are, whether running from TypeScript sources or from dist/.
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

let root: string | undefined;

/** The folder of edge-infer's package.json. */
export function packageRoot(): string {
  if (root) return root;
  let dir = __dirname;
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name === 'edge-infer') return (root = dir);
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`edge-infer's package.json not found above ${__dirname}`);
    dir = parent;
  }
}

/** The package version. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** The example models shipped with the package. */
export function bundledModelsDir(): string {
  return path.join(packageRoot(), 'models');
}
