// The arm64 bundle that test/deploy/bundle.test.ts builds, kept for the ARM64 run that comes after
// the rest of `npm test` (test/deploy/arm64.test.ts): built from the same files, it is the same
// bundle, and building it twice costs CI minutes (most of them compiling SQLite for aarch64). It is
// kept under a fingerprint of everything a bundle is made of, so a bundle of other sources is never
// taken for it: any change to the package, the lockfile or the deploy files makes a new one.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';

const REPO = path.join(__dirname, '..', '..');
/** What a bundle is made of: the package's files (package.json "files"), the flows, the lockfile and the deploy folder. */
const SOURCES = ['package.json', 'package-lock.json', '.npmrc', 'bin', 'dist', 'models', 'nodes', 'examples', 'flows', 'devices/profiles', 'devices/plants', 'devices/raspberry-pi', 'README.md', 'LICENSE'];

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

const keptDir = (): string => path.join(REPO, '.cache', 'edge-infer', 'test-bundles');
const keptName = (arch: string, fingerprint: string): string => path.join(keptDir(), `edge-infer-${fingerprint}-linux-${arch}.tar.gz`);

/** Keeps a bundle just built from these sources (the only one kept: older ones go). */
export function keepBundle(tarball: string, arch: string, fingerprint: string): void {
  mkdirSync(keptDir(), { recursive: true });
  for (const old of readdirSync(keptDir())) if (old.endsWith(`-linux-${arch}.tar.gz`)) rmSync(path.join(keptDir(), old), { force: true });
  const partial = `${keptName(arch, fingerprint)}.partial`;
  copyFileSync(tarball, partial);
  renameSync(partial, keptName(arch, fingerprint));
}

/** The bundle kept for exactly these sources, if one is. */
export function keptBundle(arch: string, fingerprint = bundleFingerprint()): string | undefined {
  const file = keptName(arch, fingerprint);
  return existsSync(file) ? file : undefined;
}
