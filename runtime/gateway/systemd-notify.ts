// Messages to the service manager (sd_notify(3)) through Debian's systemd-notify binary: Node has
// no AF_UNIX datagram sockets, and the npm packages that add them build native code, which an
// offline ARM install cannot count on. Each message is one short-lived child process; the unit
// says NotifyAccess=all so that systemd takes it from a process that is not the main one. The
// child lives until systemd has read the message (systemd-notify follows it with BARRIER=1 and
// waits, up to 5 s, for systemd to close the barrier's pipe), so systemd can still find which
// unit the sender belongs to.
import { execFile } from 'node:child_process';
import { EdgeInferError } from '../errors';

export interface SystemdNotifyOptions {
  /** NOTIFY_SOCKET as the service manager set it. */
  socket: string;
  /** The process the messages speak for: the gateway's (sent as --pid, systemd's MAINPID=). */
  pid: number;
  /** The binary (default `systemd-notify`, looked up on PATH). */
  binary?: string;
  /** How long one message may take before its child is killed, ms (default 10000: past systemd-notify's own 5 s barrier). */
  timeoutMs?: number;
  /** Told once, at the first message that could not be sent; later failures are only counted. */
  report: (err: Error) => void;
}

/** A field systemd reads: an upper-case name, '=', a value on one line. */
const FIELD = /^[A-Z][A-Z0-9_]*=[^\n]*$/;

export class SystemdNotify {
  private chain: Promise<unknown> = Promise.resolve();
  private reported = false;
  /** Messages systemd-notify sent. */
  sent = 0;
  /** Messages it could not send. */
  failed = 0;

  constructor(private readonly o: SystemdNotifyOptions) {
    if (!o.socket) throw new EdgeInferError('E_ARGUMENT', 'systemd-notify: socket: expected the NOTIFY_SOCKET path, got an empty string');
    if (!Number.isInteger(o.pid) || o.pid <= 0) throw new EdgeInferError('E_ARGUMENT', `systemd-notify: pid: expected a process id, got ${o.pid}`);
  }

  /**
   * Sends one message of `NAME=value` fields once the ones before it have gone (READY before
   * WATCHDOG before STOPPING). Resolves true once systemd-notify sent it, false when it could
   * not; never rejects, so a service manager that cannot be told never stops the gateway.
   * A field that is not `NAME=value` on one line throws: a newline in a STATUS= text would make
   * the rest of it a field of its own.
   */
  send(fields: readonly string[]): Promise<boolean> {
    if (fields.length === 0) throw new EdgeInferError('E_ARGUMENT', 'systemd-notify: expected at least one NAME=value field, got none');
    for (const f of fields) if (!FIELD.test(f)) throw new EdgeInferError('E_ARGUMENT', `systemd-notify: expected NAME=value on one line, got ${JSON.stringify(f)}`);
    const sending = this.chain.then(() => this.run(fields));
    this.chain = sending;
    return sending;
  }

  private run(fields: readonly string[]): Promise<boolean> {
    const binary = this.o.binary ?? 'systemd-notify';
    return new Promise((resolve) => {
      execFile(binary, [`--pid=${this.o.pid}`, ...fields], { env: { ...process.env, NOTIFY_SOCKET: this.o.socket }, timeout: this.o.timeoutMs ?? 10_000, killSignal: 'SIGKILL' }, (err, _stdout, stderr) => {
        if (!err) {
          this.sent++;
          return resolve(true);
        }
        this.failed++;
        if (!this.reported) {
          this.reported = true;
          const code = (err as NodeJS.ErrnoException).code;
          const why =
            code === 'ENOENT'
              ? `${binary} is not installed (Debian: apt-get install systemd)`
              : err.killed
                ? `${binary} did not finish within ${this.o.timeoutMs ?? 10_000} ms`
                : `${binary} failed: ${String(stderr).trim() || err.message}`;
          this.o.report(new EdgeInferError('E_ARGUMENT', `cannot tell the service manager how the gateway is (NOTIFY_SOCKET=${this.o.socket}): ${why}; the gateway runs on, but a unit with Type=notify will not see it start and its watchdog will restart it (said once)`));
        }
        resolve(false);
      });
    });
  }
}
