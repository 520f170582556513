// `npm run bundle -- --arch arm64|x64 [--out dir]`: the offline release bundle for a gateway.
// One tarball, edge-infer-<version>-linux-<arch>.tar.gz, whose single folder holds the built
// package, its production node_modules with better-sqlite3 compiled for the target and
// onnxruntime-node's binary for it, Node-RED 4.1, and the deploy files (install.sh, the systemd
// units, the default config). install.sh is written beside it, for the first install.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCommand } from './command';
import { expectElf } from './elf';
import { BundleError } from './errors';
import { type Arch, buildBetterSqlite3, hostArch, reuseHostBuild } from './native';
import { nodeHeadersFor } from './node-headers';
import { checkBuilt, pruneForTarget, stageDependencies, stagePackage } from './stage';

export const ARCHES: readonly Arch[] = ['arm64', 'x64'];

/** The repository this file belongs to (devices/raspberry-pi/ → the root), from sources or from dist/. */
export function repoRoot(from: string = __dirname): string {
  let dir = from;
  while (!existsSync(path.join(dir, 'package-lock.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new BundleError('E_BUNDLE_INPUT', `no package-lock.json above ${from}: bundles are built from a checkout of the repository`);
    dir = up;
  }
  return dir;
}

/** The deploy files' folder in the repository, and in the bundle. */
const DEPLOY_SOURCES = (repo: string): string => path.join(repo, 'devices', 'raspberry-pi');
const DEPLOY_FILES = ['install.sh', 'config.yaml', 'self-check.js', 'node-red-dir.js', 'README.md'];

export interface BundleOptions {
  arch: 'arm64' | 'x64';
  /** Where the tarball (and install.sh beside it) is written; made when missing. */
  outDir: string;
  /** Each line of progress and of the commands' output. */
  log?: (line: string) => void;
  /** The repository to bundle (default: this file's). */
  repo?: string;
  /** Where Node headers for cross builds are kept between runs (default: <repo>/.cache/edge-infer). */
  cacheDir?: string;
}

/** The tarball's file name for a version and an arch. */
export const bundleName = (version: string, arch: string): string => `edge-infer-${version}-linux-${arch}`;

/**
 * Builds the bundle for `arch` from the built repository (`npm run build` first). Takes about a
 * minute and a half for arm64 (better-sqlite3 is cross-compiled); for this machine's arch the
 * repository's own better-sqlite3 build is taken when it fits, and then it takes half a minute.
 */
export async function buildBundle(o: BundleOptions): Promise<{ tarball: string; version: string; arch: string }> {
  if (!ARCHES.includes(o.arch)) throw new BundleError('E_ARGUMENT', `arch: expected ${ARCHES.join(' or ')}, got '${String(o.arch)}' (armv7 is not supported: onnxruntime-node has no 32-bit ARM binary)`);
  if (typeof o.outDir !== 'string' || o.outDir === '') throw new BundleError('E_ARGUMENT', 'outDir: expected the folder to write the bundle in');
  const log = o.log ?? (() => undefined);
  const repo = path.resolve(o.repo ?? repoRoot());
  checkBuilt(repo);
  const version = (JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string }).version;
  const name = bundleName(version, o.arch);
  const outDir = path.resolve(o.outDir);
  mkdirSync(outDir, { recursive: true });
  const work = mkdtempSync(path.join(os.tmpdir(), `edge-infer-bundle-${o.arch}-`));
  try {
    const top = path.join(work, name);
    log(`staging ${name} in ${work}`);
    await stagePackage(repo, work, top, log);
    await stageDependencies(repo, work, top, o.arch, log);
    pruneForTarget(top, o.arch);
    const moduleDir = path.join(top, 'node_modules', 'better-sqlite3');
    if (!reuseHostBuild({ moduleDir, arch: o.arch, from: path.join(repo, 'node_modules', 'better-sqlite3'), log })) {
      const nodedir = o.arch === hostArch() ? localNodeDir() : await nodeHeadersFor({ arch: o.arch, cacheDir: o.cacheDir ?? path.join(repo, '.cache', 'edge-infer'), log });
      log(`building better-sqlite3 for linux-${o.arch} against ${nodedir}`);
      await buildBetterSqlite3({ moduleDir, arch: o.arch, nodedir, log });
    }
    expectElf(path.join(top, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', o.arch, 'onnxruntime_binding.node'), o.arch);
    stageDeployFiles(repo, top, version, o.arch);
    linkNodeRed(top);
    const tarball = path.join(outDir, `${name}.tar.gz`);
    const partial = `${tarball}.partial`;
    log(`packing ${tarball}`);
    // Owned by root in the tarball whoever built it; written under another name and renamed, so
    // a tarball with the final name is always complete.
    await runCommand('tar', ['--owner=0', '--group=0', '--numeric-owner', '-czf', partial, '-C', work, name], { cwd: work });
    renameSync(partial, tarball);
    copyExecutable(path.join(DEPLOY_SOURCES(repo), 'install.sh'), path.join(outDir, 'install.sh'));
    log(`${tarball}: ${(statSync(tarball).size / 2 ** 20).toFixed(1)} MiB`);
    return { tarball, version, arch: o.arch };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** This Node's own headers (include/node), for a build for this machine; node-gyp would download them otherwise. */
function localNodeDir(): string {
  const prefix = path.dirname(path.dirname(process.execPath));
  if (!existsSync(path.join(prefix, 'include', 'node', 'node.h'))) throw new BundleError('E_BUNDLE_INPUT', `${prefix}/include/node/node.h: this Node has no headers; install Node with them (the official tarball or NodeSource's package has them)`);
  return prefix;
}

function copyExecutable(from: string, to: string): void {
  copyFileSync(from, to);
  chmodSync(to, 0o755);
}

/**
 * The deploy files, where they are in the repository (devices/raspberry-pi/ in the bundle; the
 * units' Documentation= points there): install.sh, the units, the default config, the helpers
 * install.sh runs, the docs, and bundle.env (what install.sh reads first).
 */
function stageDeployFiles(repo: string, top: string, version: string, arch: string): void {
  const src = DEPLOY_SOURCES(repo);
  const deploy = path.join(top, 'devices', 'raspberry-pi');
  mkdirSync(path.join(deploy, 'systemd'), { recursive: true });
  for (const f of DEPLOY_FILES) {
    if (!existsSync(path.join(src, f))) throw new BundleError('E_BUNDLE_INPUT', `${path.join(src, f)}: missing; the bundle needs it`);
    copyFileSync(path.join(src, f), path.join(deploy, f));
  }
  // Other docs of the folder (the units' SERVICE.md, once it is there) go along.
  for (const f of readdirSync(src)) if (f.endsWith('.md') && !DEPLOY_FILES.includes(f)) copyFileSync(path.join(src, f), path.join(deploy, f));
  chmodSync(path.join(deploy, 'install.sh'), 0o755);
  const units = path.join(src, 'systemd');
  for (const f of existsSync(units) ? readdirSync(units) : []) if (f.endsWith('.service')) copyFileSync(path.join(units, f), path.join(deploy, 'systemd', f));
  // Plain `key=value` lines: install.sh reads them with sed, never sources them.
  writeFileSync(path.join(deploy, 'bundle.env'), `name=edge-infer\nversion=${version}\narch=${arch}\nnode_major=20\nglibc=2.34\n`);
}

/**
 * Node-RED where the Node-RED unit starts it, node-red/node_modules/node-red/red.js: a link into
 * the bundle's node_modules, where it was installed from the lockfile with its dependencies
 * (Node resolves them from the link's target, so nothing is installed twice).
 */
function linkNodeRed(top: string): void {
  const at = path.join(top, 'node-red', 'node_modules');
  mkdirSync(at, { recursive: true });
  if (!existsSync(path.join(top, 'node_modules', 'node-red', 'red.js'))) throw new BundleError('E_BUNDLE_INPUT', `${top}/node_modules/node-red/red.js: Node-RED was not installed`);
  symlinkSync(path.join('..', '..', 'node_modules', 'node-red'), path.join(at, 'node-red'), 'dir');
}

/** The command line: `--arch arm64|x64 [--out dir]`. Throws E_ARGUMENT naming the bad option. */
export function parseBundleArgs(argv: readonly string[], cwd = process.cwd()): { arch: Arch; outDir: string } {
  let arch: string | undefined;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    if (flag !== '--arch' && flag !== '--out') throw new BundleError('E_ARGUMENT', `${a}: unknown argument; usage: npm run bundle -- --arch arm64|x64 [--out dir]`);
    const value = inline ?? argv[++i];
    if (value === undefined || value === '' || value.startsWith('--')) throw new BundleError('E_ARGUMENT', `${flag}: expected a value${flag === '--arch' ? ' (arm64 or x64)' : ' (a folder)'}`);
    if (flag === '--arch') arch = value;
    else out = value;
  }
  if (arch === undefined) throw new BundleError('E_ARGUMENT', '--arch: missing; expected arm64 or x64');
  if (!ARCHES.includes(arch as Arch)) throw new BundleError('E_ARGUMENT', `--arch: expected arm64 or x64, got '${arch}'${arch.startsWith('arm') ? ' (32-bit ARM is not supported: onnxruntime-node has no binary for it)' : ''}`);
  return { arch: arch as Arch, outDir: path.resolve(cwd, out ?? 'bundles') };
}

async function main(): Promise<number> {
  try {
    const args = parseBundleArgs(process.argv.slice(2));
    const started = Date.now();
    const r = await buildBundle({ ...args, log: (line) => process.stderr.write(`  ${line}\n`) });
    process.stdout.write(`${r.tarball} (edge-infer ${r.version}, linux-${r.arch}) in ${((Date.now() - started) / 1000).toFixed(0)} s; install with: sudo ${path.join(path.dirname(r.tarball), 'install.sh')} ${r.tarball}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`edge-infer bundle: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

if (require.main === module) void main().then((code) => (process.exitCode = code));
