// better-sqlite3 compiled from its sources for the bundle's target: with this machine's compiler
// for x64, with Debian's aarch64 cross compiler for arm64, against the target's Node headers.
// node-gyp is given --nodedir, so it downloads nothing.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { runCommand } from './command';
import { expectElf } from './elf';
import { BundleError } from './errors';

export type Arch = 'arm64' | 'x64';

/** The compilers for a target, when it is not this machine's own. */
export const CROSS: Record<Arch, { CC: string; CXX: string } | undefined> = {
  arm64: { CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-g++' },
  x64: undefined,
};

/** node-gyp's script: the project's copy, or the one npm bundles. */
export function nodeGypScript(from: string = __dirname): string {
  for (const base of [from, path.dirname(path.dirname(process.execPath))]) {
    for (const paths of [[base], [path.join(base, 'lib', 'node_modules', 'npm')]]) {
      try {
        return require.resolve('node-gyp/bin/node-gyp.js', { paths });
      } catch {
        // next place
      }
    }
  }
  throw new BundleError('E_BUNDLE_INPUT', 'node-gyp not found (neither in node_modules nor in npm\'s own copy); it builds better-sqlite3');
}

/** Whether `cmd` is on the PATH. */
function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((d) => d && existsSync(path.join(d, cmd)));
}

export interface NativeOptions {
  /** The better-sqlite3 package folder in the staged node_modules. */
  moduleDir: string;
  arch: Arch;
  /** Node headers for the target (holds include/node). */
  nodedir: string;
  log?: (line: string) => void;
}

/** Builds better_sqlite3.node for the target, checks its ELF machine, and removes what only the build needed. Returns the .node file. */
export async function buildBetterSqlite3(o: NativeOptions): Promise<string> {
  const cross = o.arch === hostArch() ? undefined : CROSS[o.arch];
  if (o.arch !== hostArch() && !cross) throw new BundleError('E_ARGUMENT', `--arch ${o.arch}: cannot build native modules for it on ${process.arch}`);
  if (cross && !onPath(cross.CXX)) throw new BundleError('E_BUNDLE_INPUT', `${cross.CXX} not found: install Debian's g++-aarch64-linux-gnu (apt-get install g++-aarch64-linux-gnu) to build the ${o.arch} bundle`);
  if (!existsSync(path.join(o.nodedir, 'include', 'node', 'node.h'))) throw new BundleError('E_BUNDLE_INPUT', `${o.nodedir}: no include/node/node.h; node-gyp would download headers`);
  const env = { ...(cross ? { CC: cross.CC, CXX: cross.CXX, LINK: cross.CXX, AR: cross.CC.replace(/gcc$/, 'ar') } : {}), npm_config_build_from_source: 'true', JOBS: '2' };
  await runCommand(process.execPath, [nodeGypScript(), 'rebuild', '--release', `--arch=${o.arch}`, `--nodedir=${o.nodedir}`, '--jobs=2'], { cwd: o.moduleDir, env, log: o.log });
  const built = path.join(o.moduleDir, 'build', 'Release', 'better_sqlite3.node');
  if (!existsSync(built)) throw new BundleError('E_BUNDLE_COMMAND', `${built}: node-gyp finished without building it`);
  expectElf(built, o.arch);
  keepOnlyBinary(o.moduleDir);
  return built;
}

/** Only the .node file is loaded at run time (through `bindings`): the sources and the objects are 10 MB. */
function keepOnlyBinary(moduleDir: string): void {
  const release = path.join(moduleDir, 'build', 'Release');
  for (const entry of readdirSync(release)) if (entry !== 'better_sqlite3.node') rmSync(path.join(release, entry), { recursive: true, force: true });
  for (const entry of readdirSync(path.join(moduleDir, 'build'))) if (entry !== 'Release') rmSync(path.join(moduleDir, 'build', entry), { recursive: true, force: true });
  for (const dir of ['deps', 'src']) rmSync(path.join(moduleDir, dir), { recursive: true, force: true });
}

const versionOf = (moduleDir: string): string | undefined => {
  try {
    return (JSON.parse(readFileSync(path.join(moduleDir, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
};

/**
 * For a bundle of this machine's arch, the repository's own better_sqlite3.node (`npm ci` built it
 * from the same sources, with the same compiler, against this Node) instead of compiling SQLite
 * again, which is most of the bundle's build time. Taken only when it is the staged version and
 * loads in this Node; otherwise undefined, and the caller compiles. Returns the staged .node file.
 */
export function reuseHostBuild(o: { moduleDir: string; arch: Arch; from: string; log?: (line: string) => void }): string | undefined {
  if (o.arch !== hostArch()) return undefined;
  const source = path.join(o.from, 'build', 'Release', 'better_sqlite3.node');
  const version = versionOf(o.moduleDir);
  if (!existsSync(source) || version === undefined || versionOf(o.from) !== version) return undefined;
  // In a child: a module that fails to load can take the process with it.
  const loads = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', source], { stdio: 'ignore', timeout: 30_000 }).status === 0;
  if (!loads) return undefined;
  const release = path.join(o.moduleDir, 'build', 'Release');
  mkdirSync(release, { recursive: true });
  const staged = path.join(release, 'better_sqlite3.node');
  copyFileSync(source, staged);
  expectElf(staged, o.arch);
  keepOnlyBinary(o.moduleDir);
  o.log?.(`better-sqlite3 ${version}: this machine's own build of it (${source}), for ${o.arch} and this Node`);
  return staged;
}

/** This machine's arch in the bundle's words. */
export function hostArch(): string {
  return process.arch;
}
