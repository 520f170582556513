// `edge-infer hash-password` as a user runs it: a password piped in becomes a scrypt hash line
// that logs in; an empty password or no input is refused with one line; on a terminal the
// password is read in raw mode (no echo) after a prompt on stderr.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readPassword } from '../../runtime/cli/hash-password';
import { packageRoot } from '../../runtime/paths';
import { parsePasswordHash, verifyPassword } from '../../runtime/serve/passwords';

function run(args: string[], input: string | null): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(packageRoot(), 'test', 'helpers', 'edge-infer-main.ts'), 'hash-password', ...args], {
    input: input ?? '',
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('edge-infer hash-password', () => {
  it('should print one scrypt hash line of the first line piped in, which verifies', async () => {
    const r = run([], 'correct horse battery\nsecond line is not read\n');
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const lines = r.out.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const hash = parsePasswordHash(lines[0]);
    expect(await verifyPassword('correct horse battery', hash)).toBe(true);
    expect(await verifyPassword('correct horse', hash)).toBe(false);
  });

  it('should take a password without a final newline, and one ending in CRLF', async () => {
    expect(await verifyPassword('no newline', parsePasswordHash(run([], 'no newline').out.trim()))).toBe(true);
    expect(await verifyPassword('windows', parsePasswordHash(run([], 'windows\r\n').out.trim()))).toBe(true);
  });

  it('should refuse an empty password with one line and exit 1', () => {
    const r = run([], '\n');
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe('edge-infer: password: expected at least one character, got an empty password\n');
  });

  it('should refuse an input that ends before any password', () => {
    const r = run([], null);
    expect(r.code).toBe(1);
    expect(r.err).toBe('edge-infer: password: stdin ended before a password was given\n');
  });

  it('should explain itself with --help', () => {
    const r = run(['--help'], null);
    expect(r.code).toBe(0);
    expect(r.out).toContain('Usage: edge-infer hash-password');
    expect(r.out).toContain('http.users[].passwordHash');
    expect(r.out).toContain('bcrypt');
  });
});

describe('readPassword on a terminal', () => {
  /** A terminal as readPassword sees one: a stream with isTTY and setRawMode, recording the modes set. */
  function terminal(): PassThrough & { isTTY: boolean; modes: boolean[]; setRawMode(mode: boolean): void } {
    const t = Object.assign(new PassThrough(), { isTTY: true, modes: [] as boolean[] });
    return Object.assign(t, { setRawMode: (mode: boolean) => void t.modes.push(mode) });
  }

  it('should prompt on the prompt stream, read in raw mode (no echo), take backspace, and leave raw mode', async () => {
    const tty = terminal();
    const prompt = new PassThrough();
    let shown = '';
    prompt.on('data', (d) => (shown += String(d)));
    const reading = readPassword(tty, prompt);
    tty.write('hunter3\u007f2\r');
    expect(await reading).toBe('hunter2');
    expect(tty.modes).toEqual([true, false]);
    expect(shown).toBe('Password: \n');
  });

  it('should stop at Ctrl-C without a password', async () => {
    const tty = terminal();
    const reading = readPassword(tty, new PassThrough());
    tty.write('abc\u0003');
    await expect(reading).rejects.toThrow('hash-password: cancelled');
    expect(tty.modes).toEqual([true, false]);
  });
});
