// The offline bundles the deploy tests check (test/deploy/bundle.test.ts: arm64; install.test.ts:
// x64; arm64.test.ts runs the arm64 one under emulation), built once per run and shared. Building
// one is minutes of compiling and packing; `npm test` starts both in the background at its start
// (test/helpers/prebuild-bundles.ts), at the lowest CPU priority, so that they take the core the
// suite leaves idle while it waits on brokers and timers, and the deploy tests, which run last,
// find them ready. A bundle is kept under a fingerprint of everything it is made of, so a bundle
// of other sources is never taken for it: any change to the package, the lockfile or the deploy
// files makes a new one. Run by hand without a prebuilt one, a test builds it itself.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { buildBundle } from '../../devices/raspberry-pi/bundle';

const REPO = path.join(__dirname, '..', '..');
/** What a bundle is made of: the package's files (package.json "files"), the flows, the lockfile and the deploy folder. */
const SOURCES = ['package.json', 'package-lock.json', '.npmrc', 'bin', 'dist', 'models', 'nodes', 'examples', 'flows', 'devices/profiles', 'devices/plants', 'devices/raspberry-pi', 'README.md', 'LICENSE'];

export type BundleArch = 'arm64' | 'x64';

/** A kept bundle: the tarball with install.sh beside it, the cache its build used, and its build's log. */
export interface KeptBundle {
  tarball: string;
  version: string;
  arch: BundleArch;
  /** Where the tarball and install.sh were written. */
  outDir: string;
  /** The build's own cache (the arm64 Node headers it fetched), fresh for each build. */
  cacheDir: string;
  /** The build's log lines. */
  lines: string[];
}

function filesUnder(rel: string, out: string[]): void {
  const full = path.join(REPO, rel);
  if (!existsSync(full)) return;
  if (statSync(full).isDirectory()) {
    for (const name of readdirSync(full).sort()) filesUnder(path.join(rel, name), out);
  } else {
    out.push(rel);
  }
}

/** A sha256 over the paths and bytes of every file a bundle is built from. */
export function bundleFingerprint(): string {
  const files: string[] = [];
  for (const s of SOURCES) filesUnder(s, files);
  const hash = createHash('sha256');
  for (const f of files) hash.update(f).update('\u0000').update(readFileSync(path.join(REPO, f))).update('\u0000');
  return hash.digest('hex').slice(0, 16);
}

export const keptRoot = (): string => path.join(REPO, '.cache', 'edge-infer', 'test-bundles');
const keptDir = (arch: BundleArch, fingerprint: string): string => path.join(keptRoot(), `${arch}-${fingerprint}`);
/** Holds the pid of the process building that bundle, while it builds. */
export const buildingMarker = (arch: BundleArch, fingerprint: string): string => `${keptDir(arch, fingerprint)}.building`;
/** Written by a background build that failed: its error and the tail of its log. */
export const failedMarker = (arch: BundleArch, fingerprint: string): string => `${keptDir(arch, fingerprint)}.failed`;

/** The bundle kept for exactly these sources, if one is. */
export function keptBundle(arch: BundleArch, fingerprint = bundleFingerprint()): KeptBundle | undefined {
  const dir = keptDir(arch, fingerprint);
  const result = path.join(dir, 'result.json');
  if (!existsSync(result)) return undefined;
  const r = JSON.parse(readFileSync(result, 'utf8')) as { tarball: string; version: string };
  return { tarball: path.join(dir, 'out', r.tarball), version: r.version, arch, outDir: path.join(dir, 'out'), cacheDir: path.join(dir, 'cache'), lines: readFileSync(path.join(dir, 'build.log'), 'utf8').split('\n').filter(Boolean) };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The pid building that bundle now, if one is. */
export function builderOf(arch: BundleArch, fingerprint = bundleFingerprint()): number | undefined {
  const marker = buildingMarker(arch, fingerprint);
  if (!existsSync(marker)) return undefined;
  const pid = Number(readFileSync(marker, 'utf8'));
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
}

/**
 * Builds the bundle for these sources and keeps it (the only one kept for the arch: older ones
 * go). Built in a partial folder renamed when complete, so a kept bundle is always whole.
 */
export async function buildKept(arch: BundleArch, fingerprint = bundleFingerprint(), log?: (line: string) => void): Promise<KeptBundle> {
  const dir = keptDir(arch, fingerprint);
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  const lines: string[] = [];
  try {
    const r = await buildBundle({
      arch,
      outDir: path.join(partial, 'out'),
      cacheDir: path.join(partial, 'cache'),
      log: (l) => {
        lines.push(l);
        log?.(l);
      },
    });
    writeFileSync(path.join(partial, 'build.log'), `${lines.join('\n')}\n`);
    writeFileSync(path.join(partial, 'result.json'), JSON.stringify({ tarball: path.basename(r.tarball), version: r.version }));
    for (const old of readdirSync(keptRoot())) if (old.startsWith(`${arch}-`) && !old.includes('.')) rmSync(path.join(keptRoot(), old), { recursive: true, force: true });
    renameSync(partial, dir);
  } catch (err) {
    rmSync(partial, { recursive: true, force: true });
    throw new Error(`the ${arch} bundle did not build: ${(err as Error).message}\n${lines.slice(-20).join('\n')}`);
  }
  return keptBundle(arch, fingerprint)!;
}

/**
 * The bundle for these sources: the kept one, or the one being built in the background once it is
 * done (its failure with the tail of its log), or one built here and now.
 */
export async function sharedBundle(arch: BundleArch, waitMs = 20 * 60_000): Promise<KeptBundle> {
  const fingerprint = bundleFingerprint();
  const end = Date.now() + waitMs;
  while (builderOf(arch, fingerprint) !== undefined && Date.now() < end) await new Promise((r) => setTimeout(r, 500));
  const kept = keptBundle(arch, fingerprint);
  if (kept) return kept;
  if (builderOf(arch, fingerprint) !== undefined) throw new Error(`the ${arch} bundle is still building in the background after ${waitMs / 60_000} min`);
  if (existsSync(failedMarker(arch, fingerprint))) throw new Error(`in the background: ${readFileSync(failedMarker(arch, fingerprint), 'utf8')}`);
  mkdirSync(keptRoot(), { recursive: true });
  return buildKept(arch, fingerprint);
}
