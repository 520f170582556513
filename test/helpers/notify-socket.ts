// A real NOTIFY_SOCKET for the tests: an AF_UNIX datagram socket bound by a python3 child process
// (notify-socket.py), which records every message systemd-notify sends, with when it came. A
// separate process, so that it keeps receiving while the test's own event loop is blocked.
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { tempDir, waitFor } from './gateway';

export interface NotifyMessage {
  /** When it came, ms since the epoch. */
  t: number;
  /** The sender's process id as the socket saw it (SCM_CREDENTIALS). */
  pid: number | null;
  /** Its NAME=value fields. */
  fields: string[];
}

export interface NotifySocket {
  /** The socket's path: NOTIFY_SOCKET. */
  path: string;
  /** Every message so far, in order. */
  readonly messages: NotifyMessage[];
  /** The messages holding this field (`WATCHDOG=1`), or a field starting so (`STATUS=`). */
  with(field: string): NotifyMessage[];
  /** Resolves with the first message holding `field` that came after `sinceMs` (default: any). */
  next(field: string, withinMs: number, sinceMs?: number): Promise<NotifyMessage>;
  stop(): Promise<void>;
}

const receivers = new Set<ChildProcess>();
process.on('exit', () => {
  for (const r of receivers) r.kill('SIGKILL');
});

function holds(m: NotifyMessage, field: string): boolean {
  return field.endsWith('=') ? m.fields.some((f) => f.startsWith(field)) : m.fields.includes(field);
}

/** Binds a fresh socket in a temp folder; resolves once it listens. A missing python3 fails with what to install. */
export async function startNotifySocket(): Promise<NotifySocket> {
  const at = path.join(tempDir('edge-infer-notify-'), 'notify.sock');
  const proc = spawn('python3', [path.join(__dirname, 'notify-socket.py'), at], { stdio: ['ignore', 'pipe', 'pipe'] });
  receivers.add(proc);
  const messages: NotifyMessage[] = [];
  let listening = false;
  let failure = '';
  let rest = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      const m = JSON.parse(line) as NotifyMessage | { listening: string };
      if ('listening' in m) listening = true;
      else messages.push(m);
    }
  });
  proc.stderr!.on('data', (chunk: Buffer) => (failure += chunk.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.once('error', (err) => (failure += `${err.message} (the notify socket tests need python3: apt-get install python3)`));
  await waitFor(() => listening || failure, 10_000, 'the notify socket to listen');
  if (!listening) throw new Error(`notify socket: ${failure}`);
  return {
    path: at,
    messages,
    with: (field) => messages.filter((m) => holds(m, field)),
    next: (field, withinMs, sinceMs = 0) => waitFor(() => messages.find((m) => m.t > sinceMs && holds(m, field)), withinMs, `${field} on the notify socket`) as Promise<NotifyMessage>,
    async stop() {
      proc.kill('SIGTERM');
      await exited;
      receivers.delete(proc);
    },
  };
}
