// `edge-infer hash-password`: a password read from stdin, printed as a scrypt hash line for the
// gateway config's http.users[].passwordHash. The password never appears on the command line
// (where `ps` and the shell history would show it): typed without echo on a terminal, or the
// first line of a pipe.
import type { Command } from 'commander';
import { EdgeInferError } from '../errors';
import { hashPassword } from '../serve/passwords';
import { print } from './output';

/** Longest password read: far beyond any typed one, short of filling memory from a runaway pipe. */
const MAX_PASSWORD_CHARS = 1024;

interface Input extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?: (mode: boolean) => unknown;
}

/**
 * Reads one password: on a terminal without echo (prompting on `prompt`), else the first line.
 * Rejects E_ARGUMENT when stdin ends before a line, or on Ctrl-C at the prompt.
 */
export function readPassword(input: Input, prompt: NodeJS.WritableStream): Promise<string> {
  const tty = Boolean(input.isTTY && input.setRawMode);
  if (tty) {
    prompt.write('Password: ');
    input.setRawMode!(true);
  }
  input.setEncoding('utf8');
  return new Promise<string>((resolve, reject) => {
    let text = '';
    let got = false;
    const finish = (err: Error | null, value = ''): void => {
      input.removeListener('data', onData);
      input.removeListener('end', onEnd);
      input.removeListener('error', onError);
      if (tty) {
        input.setRawMode!(false);
        prompt.write('\n');
      }
      input.pause();
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string): void => {
      got = true;
      for (const ch of chunk) {
        if (ch === '\n' || ch === '\r' || ch === '\u0004') return finish(null, text);
        if (tty && ch === '\u0003') return finish(new EdgeInferError('E_CANCELLED', 'hash-password: cancelled'));
        if (tty && (ch === '\u007f' || ch === '\b')) text = text.slice(0, -1);
        else text += ch;
        if (text.length > MAX_PASSWORD_CHARS) return finish(new EdgeInferError('E_ARGUMENT', `password: expected at most ${MAX_PASSWORD_CHARS} characters`));
      }
    };
    const onEnd = (): void => (got ? finish(null, text) : finish(new EdgeInferError('E_ARGUMENT', 'password: stdin ended before a password was given')));
    const onError = (err: Error): void => finish(err);
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    input.resume();
  });
}

export function registerHashPassword(program: Command): void {
  program
    .command('hash-password')
    .description('read a password from stdin (typed without echo, or the first line of a pipe) and print its scrypt hash, for http.users[].passwordHash in the gateway config')
    .addHelpText('after', '\nExample:\n  edge-infer hash-password          (type the password)\n  printf "%s\\n" "$PASS" | edge-infer hash-password\n\nThe config also takes bcrypt hashes ($2a$/$2b$/$2y$), as in Node-RED\'s adminAuth.')
    .action(async () => {
      const password = await readPassword(process.stdin, process.stderr);
      if (password === '') throw new EdgeInferError('E_ARGUMENT', 'password: expected at least one character, got an empty password');
      print(await hashPassword(password));
    });
}
