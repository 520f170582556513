// Which machine a native file is built for, read from its ELF header, so that a bundle for the
// Pi cannot ship an x86 better-sqlite3 (it would fail only on the Pi, at the gateway's start).
import { openSync, readSync, closeSync } from 'node:fs';
import { BundleError } from './errors';

/** ELF e_machine values of the targets, and the names `file` gives them. */
const MACHINES: Record<number, string> = { 0x03: 'x86', 0x28: 'arm', 0x3e: 'x86-64', 0xb7: 'aarch64' };

/** The bundle's arch names as ELF machines. */
export const ARCH_MACHINE = { arm64: 'aarch64', x64: 'x86-64', armv7l: 'arm' } as const;

/** The machine of an ELF file (`aarch64`, `x86-64`, `arm`, `x86`, or `e_machine 0x..`); throws for a file that is not ELF. */
export function elfMachine(file: string): string {
  const head = Buffer.alloc(20);
  let read: number;
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new BundleError('E_BUNDLE_ARCH', `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  try {
    read = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (read < head.length || head.readUInt32BE(0) !== 0x7f454c46) throw new BundleError('E_BUNDLE_ARCH', `${file}: not an ELF file (a native module built for Linux is expected)`);
  // EI_DATA (byte 5): 1 little-endian, 2 big-endian; e_machine is the half-word at 18.
  const machine = head[5] === 2 ? head.readUInt16BE(18) : head.readUInt16LE(18);
  return MACHINES[machine] ?? `e_machine 0x${machine.toString(16)}`;
}

/** Throws unless `file` is an ELF file for `arch`. */
export function expectElf(file: string, arch: keyof typeof ARCH_MACHINE): void {
  const machine = elfMachine(file);
  if (machine !== ARCH_MACHINE[arch]) throw new BundleError('E_BUNDLE_ARCH', `${file}: built for ${machine}, expected ${ARCH_MACHINE[arch]} (linux-${arch})`);
}
