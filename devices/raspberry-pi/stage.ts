// The bundle's folder, put together in a staging folder: the package exactly as `npm pack` selects
// its files, and its production node_modules installed from the lockfile with nothing run and
// nothing downloaded that the npm cache already holds.
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { runCommand } from './command';
import { BundleError } from './errors';
import { type Lockfile, type Manifest, promoteToProduction } from './lockfile';

/** Dev dependencies of the repository that the bundle ships: the second unit's Node-RED, and the native onnxruntime. */
export const PROMOTED = ['node-red', 'onnxruntime-node'] as const;

/** Files that must exist in the repository before it can be bundled, and what makes them. */
const BUILT = [
  ['dist/runtime/cli/index.js', 'npm run build'],
  ['examples', 'npm run build'],
  ['package-lock.json', 'npm install'],
] as const;

/** Throws E_BUNDLE_INPUT naming the first missing file of the repository and the command that makes it. */
export function checkBuilt(repo: string): void {
  for (const [file, how] of BUILT) if (!existsSync(path.join(repo, file))) throw new BundleError('E_BUNDLE_INPUT', `${path.join(repo, file)}: missing; run \`${how}\` first`);
}

/** Unpacks the package's files (as `npm pack` selects them, without running its scripts) into `top`. */
export async function stagePackage(repo: string, work: string, top: string, log?: (line: string) => void): Promise<void> {
  const packed = JSON.parse(await runCommand('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: repo })) as Array<{ filename: string }>;
  const tarball = path.join(work, packed[0].filename);
  log?.(`package files: ${packed[0].filename}`);
  await runCommand('tar', ['-xzf', tarball, '-C', work], { cwd: work });
  rmSync(tarball);
  renameSync(path.join(work, 'package'), top);
  // The Node-RED user folder's example flows are read from flows/ (runtime/cli/node-red-flows.ts),
  // which the package leaves out (it ships them as examples/ for Node-RED's Import menu).
  cpSync(path.join(repo, 'flows'), path.join(top, 'flows'), { recursive: true });
}

/**
 * Installs the production dependencies (and PROMOTED) from the repository's lockfile into
 * `<top>/node_modules`, for linux-<arch>, with install scripts off: the native parts are built
 * afterwards for the target, not for this machine.
 */
export async function stageDependencies(repo: string, work: string, top: string, arch: string, log?: (line: string) => void): Promise<void> {
  const deps = path.join(work, 'deps');
  rmSync(deps, { recursive: true, force: true });
  const { manifest, lock } = promoteToProduction(JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as Manifest, JSON.parse(readFileSync(path.join(repo, 'package-lock.json'), 'utf8')) as Lockfile, PROMOTED);
  // The scripts are the repository's (build, test): none of them belongs to this install.
  delete manifest.scripts;
  mkdirSync(deps, { recursive: true });
  writeFileSync(path.join(deps, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(path.join(deps, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
  // The project's .npmrc (no CUDA download, build from source) applies here too.
  const npmrc = path.join(repo, '.npmrc');
  if (existsSync(npmrc)) writeFileSync(path.join(deps, '.npmrc'), readFileSync(npmrc));
  await runCommand('npm', ['ci', '--omit=dev', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', '--os=linux', `--cpu=${arch}`], { cwd: deps, log });
  renameSync(path.join(deps, 'node_modules'), path.join(top, 'node_modules'));
  rmSync(deps, { recursive: true, force: true });
}

/**
 * Removes what the target never loads: onnxruntime-node's binaries for other systems and archs
 * (about 250 MB), and TypeScript, which npm installs as i18next's optional peer (types only).
 */
export function pruneForTarget(top: string, arch: string): void {
  const ortBin = path.join(top, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
  if (!existsSync(path.join(ortBin, 'linux', arch))) throw new BundleError('E_BUNDLE_INPUT', `${ortBin}/linux/${arch}: onnxruntime-node carries no binary for linux-${arch}`);
  for (const os of readdirSync(ortBin)) if (os !== 'linux') rmSync(path.join(ortBin, os), { recursive: true, force: true });
  for (const a of readdirSync(path.join(ortBin, 'linux'))) if (a !== arch) rmSync(path.join(ortBin, 'linux', a), { recursive: true, force: true });
  pruneTensorflow(path.join(top, 'node_modules', '@tensorflow'));
  rmSync(path.join(top, 'node_modules', 'typescript'), { recursive: true, force: true });
  rmSync(path.join(top, 'node_modules', '.bin', 'tsc'), { force: true });
  rmSync(path.join(top, 'node_modules', '.bin', 'tsserver'), { force: true });
}

/**
 * TensorFlow.js (the fine-tune's training) as Node loads it: each package's main bundle and the
 * WASM backend's .wasm files, which it reads from beside that bundle. The browser bundles, the
 * per-file ES modules and the source maps are about 50 MB of an SD card's space it never reads.
 */
function pruneTensorflow(scope: string): void {
  if (!existsSync(scope)) return;
  for (const name of readdirSync(scope)) {
    const dir = path.join(scope, name);
    const main: unknown = (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { main?: unknown }).main;
    if (typeof main !== 'string' || path.dirname(main) !== 'dist') throw new BundleError('E_BUNDLE_INPUT', `${dir}/package.json: expected its main in dist/, got ${JSON.stringify(main)}`);
    const dist = path.join(dir, 'dist');
    for (const f of readdirSync(dist)) if (f !== path.basename(main) && !f.endsWith('.wasm')) rmSync(path.join(dist, f), { recursive: true, force: true });
  }
}

