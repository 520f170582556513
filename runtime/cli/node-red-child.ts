// Node-RED as a child process of `edge-infer run`: found among the installed packages, started on
// a user directory, its output prefixed line by line, stopped with SIGTERM and then SIGKILL.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { EdgeInferError } from '../errors';
import { packageRoot } from '../paths';

/** red.js of the installed `node-red` package, or undefined when it is not installed (edge-infer without its dev dependencies). */
export function resolveNodeRed(from: string = __dirname): string | undefined {
  try {
    return require.resolve('node-red/red.js', { paths: [from] });
  } catch {
    return undefined;
  }
}

/**
 * Whether `port` can be listened on at `host` now. Checked before starting Node-RED, which would
 * otherwise say so in a stack of log lines and exit.
 */
export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export interface NodeRedChildOptions {
  /** red.js of the node-red package. */
  redJs: string;
  userDir: string;
  port: number;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Each line Node-RED writes, and whether it wrote it on stderr. */
  onLine: (line: string, stderr: boolean) => void;
  /** Node-RED ended without being asked to: its exit code or signal, and its last line of output. */
  onUnexpectedExit: (how: string, lastLine: string) => void;
  /** Node.js options for the child (memory limits). */
  nodeOptions?: string[];
}

/** The guard Node-RED loads so that it stops when this process dies (see node-red-parent-guard.ts). */
function parentGuard(): string | undefined {
  const built = path.join(packageRoot(), 'dist', 'runtime', 'cli', 'node-red-parent-guard.js');
  return existsSync(built) ? built : undefined;
}

export class NodeRedChild {
  private readonly proc: ChildProcess;
  private stopping = false;
  private lastLine = '';
  readonly exited: Promise<void>;

  private constructor(private readonly options: NodeRedChildOptions) {
    const guard = parentGuard();
    const args = [...(options.nodeOptions ?? []), ...(guard ? ['--require', guard] : []), options.redJs, '--userDir', options.userDir, '--port', String(options.port)];
    // Its own process group: Ctrl-C in the terminal reaches the gateway only, which stops Node-RED
    // first and itself after. The IPC channel is how Node-RED notices the gateway is gone.
    this.proc = spawn(process.execPath, args, { cwd: options.userDir, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true });
    for (const [stream, stderr] of [[this.proc.stdout!, false], [this.proc.stderr!, true]] as const) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        if (line.trim() === '') return;
        this.lastLine = line;
        options.onLine(line, stderr);
      });
    }
    this.exited = new Promise((resolve) => {
      // 'close', not 'exit': by then every line it wrote has been read, its last one included.
      this.proc.once('close', (code, signal) => {
        if (!this.stopping) options.onUnexpectedExit(signal ? `signal ${signal}` : `exit code ${code}`, this.lastLine);
        resolve();
      });
      this.proc.once('error', (err) => {
        // The spawn itself failed (no 'exit' follows).
        if (this.proc.exitCode === null && this.proc.signalCode === null && this.proc.pid === undefined) {
          if (!this.stopping) options.onUnexpectedExit(`could not start: ${err.message}`, this.lastLine);
          resolve();
        }
      });
    });
  }

  /** Starts Node-RED; it runs until `stop`, or ends on its own (reported through onUnexpectedExit). */
  static start(options: NodeRedChildOptions): NodeRedChild {
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) throw new EdgeInferError('E_ARGUMENT', `Node-RED port: expected a whole number from 1 to 65535, got ${options.port}`);
    if (!existsSync(options.redJs)) throw new EdgeInferError('E_ARGUMENT', `${options.redJs}: Node-RED's red.js is not there`);
    return new NodeRedChild(options);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return this.proc.pid !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The editor's address. */
  get url(): string {
    return `http://127.0.0.1:${this.options.port}/`;
  }

  /**
   * Resolves true once the editor answers HTTP (any status: a login page is an answer), false
   * when Node-RED ends first or `withinMs` passes.
   */
  async answering(withinMs: number): Promise<boolean> {
    const end = Date.now() + withinMs;
    while (this.running && Date.now() < end) {
      const ok = await fetch(this.url, { signal: AbortSignal.timeout(2000) }).then(
        async (r) => {
          await r.body?.cancel();
          return true;
        },
        () => false,
      );
      if (ok) return this.running;
      await new Promise((r) => setTimeout(r, 250).unref());
    }
    return false;
  }

  /**
   * Stops Node-RED: SIGTERM (it closes its flows, and our nodes commit what they hold), then
   * SIGKILL when it has not ended within `withinMs`. Resolves when the process is gone.
   */
  async stop(withinMs = 10_000): Promise<void> {
    this.stopping = true;
    if (!this.running) return this.exited;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (this.running) this.proc.kill('SIGKILL');
    }, withinMs);
    await this.exited;
    clearTimeout(timer);
  }
}
