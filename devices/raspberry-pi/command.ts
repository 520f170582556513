// Runs the build's commands (npm, node-gyp, tar) with their output passed to the log line by
// line; a failure is one error naming the command, its folder and its last lines of output.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { BundleError } from './errors';

export interface CommandOptions {
  cwd: string;
  /** Added to this process's environment. */
  env?: Record<string, string | undefined>;
  /** Each line of output (stdout and stderr). */
  log?: (line: string) => void;
}

/** Runs `cmd args` and resolves with its stdout; rejects with E_BUNDLE_COMMAND when it fails. */
export function runCommand(cmd: string, args: readonly string[], o: CommandOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const shown = [cmd, ...args].join(' ');
    const child = spawn(cmd, args, { cwd: o.cwd, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const last: string[] = [];
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        last.push(line);
        if (last.length > 5) last.shift();
        o.log?.(line);
      });
    }
    child.once('error', (err) => reject(new BundleError('E_BUNDLE_COMMAND', `${shown}: cannot start (${(err as NodeJS.ErrnoException).code ?? err.message})`, { cause: err })));
    child.once('close', (code, signal) => {
      if (code === 0) return resolve(stdout);
      const tail = last.filter((l) => l.trim()).slice(-2).join(' / ');
      reject(new BundleError('E_BUNDLE_COMMAND', `${shown} (in ${o.cwd}) failed with ${signal ? `signal ${signal}` : `exit code ${code}`}${tail ? `: ${tail}` : ''}`));
    });
  });
}
