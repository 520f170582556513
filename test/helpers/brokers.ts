// Real brokers for the tests: Debian's mosquitto started on a free port with its own config and
// persistence file, and the embedded aedes broker, behind one shape so that a suite can run
// against both. A missing mosquitto fails the test with what to install; it never skips.
// Set EDGE_INFER_BROKER_DEBUG=1 to see mosquitto's log.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEmbeddedBroker } from '../../runtime/stream/embedded-broker';

export const MOSQUITTO = '/usr/sbin/mosquitto';
const DEBUG = Boolean(process.env.EDGE_INFER_BROKER_DEBUG);
const START_TIMEOUT_MS = 5000;

export interface TestBroker {
  /** mqtt://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Graceful stop (mosquitto: SIGTERM, which saves its persistence file); resolves on exit. */
  stop(): Promise<void>;
  /** Abrupt stop (mosquitto: SIGKILL, nothing saved since the last autosave). */
  kill(): Promise<void>;
  /** Starts again on the same port (stopping first if running); mosquitto reloads the same persistence file. */
  restart(): Promise<void>;
}

export interface MosquittoBroker extends TestBroker {
  /** Where mosquitto keeps mosquitto.db and its config. */
  dataDir: string;
  /** Freezes the broker process (SIGSTOP): connections stay open, nothing is acknowledged. */
  pause(): void;
  /** Lets a paused broker run again (SIGCONT). */
  resume(): void;
}

// Every child and temp dir, so that nothing outlives the test process however it ends.
const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let hooked = false;

function killAll(): void {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAll();
      // Nobody else handles it: die of the signal as the process would have without us.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Seconds between Mosquitto's saves of its state as Debian's package ships it (the benches' broker). */
export const DEBIAN_AUTOSAVE_S = 1800;

function mosquittoConfig(port: number, dataDir: string, extra: readonly string[], autosaveS: number): string {
  return [
    `listener ${port} 127.0.0.1`,
    ...extra,
    'allow_anonymous true',
    'persistence true',
    // mosquitto wants the trailing slash: it appends the file name to the string.
    `persistence_location ${dataDir}${path.sep}`,
    `autosave_interval ${autosaveS}`,
    'max_inflight_messages 100',
    'max_queued_messages 1000000',
    'log_dest stderr',
    ...(DEBUG ? ['log_type all'] : ['log_type error']),
    // As root mosquitto would switch to the 'mosquitto' user, who cannot write our temp dir.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    '',
  ].join('\n');
}

/**
 * Starts /usr/sbin/mosquitto on a free port with persistence in `dataDir` (default a fresh temp
 * dir, removed when the test process exits); resolves once the port accepts connections.
 */
export async function startMosquitto(
  options: {
    dataDir?: string;
    /** More mosquitto.conf lines (an acl_file...). */
    config?: readonly string[];
    /**
     * Seconds between saves of its in-memory state (default 1, so that a test that kills it
     * finds what it had; Debian's mosquitto ships with 1800). Each save stops its deliveries
     * while it writes.
     */
    autosaveS?: number;
  } = {},
): Promise<MosquittoBroker> {
  if (!existsSync(MOSQUITTO)) {
    throw new Error(
      process.env.CI
        ? `${MOSQUITTO} is missing: mosquitto must be installed on CI (apt-get install mosquitto) for the broker tests`
        : `${MOSQUITTO} is missing: the broker tests need Debian's mosquitto; run 'apt-get install mosquitto'`,
    );
  }
  hookExit();
  let dataDir = options.dataDir;
  if (!dataDir) {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-mosquitto-'));
    tempDirs.add(dataDir);
  }
  const dir = dataDir;
  const port = await freePort();
  // Every listener must accept before the broker counts as started: a WebSocket or TLS
  // listener given in the extra lines can come up after the plain one.
  const ports = [port, ...(options.config ?? []).flatMap((line) => /^listener\s+(\d+)/.exec(line)?.[1] ?? []).map(Number)];
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(conf, mosquittoConfig(port, dir, options.config ?? [], options.autosaveS ?? 1));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    const proc = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(proc);
    child = proc;
    let stderr = '';
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-8192);
      if (DEBUG) process.stderr.write(`[mosquitto :${port}] ${chunk.toString()}`);
    });
    let exitCode: string | undefined;
    exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        exitCode = signal ?? String(code);
        children.delete(proc);
        if (child === proc) child = undefined;
        resolve();
      });
      proc.once('error', (err) => {
        exitCode = err.message;
        children.delete(proc);
        if (child === proc) child = undefined;
        resolve();
      });
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exitCode !== undefined) throw new Error(`mosquitto on port ${port} exited (${exitCode}) while starting: ${stderr.trim() || '(no output)'}`);
      if ((await Promise.all(ports.map(canConnect))).every(Boolean)) return;
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`mosquitto did not accept connections on port ${port} within ${START_TIMEOUT_MS / 1000} s: ${stderr.trim() || '(no output)'}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const signalAndWait = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc) return;
    // A paused broker cannot act on SIGTERM.
    proc.kill('SIGCONT');
    proc.kill(signal);
    await exited;
  };

  await launch();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    dataDir: dir,
    stop: () => signalAndWait('SIGTERM'),
    kill: () => signalAndWait('SIGKILL'),
    restart: async () => {
      await signalAndWait('SIGTERM');
      await launch();
    },
    pause: () => {
      child?.kill('SIGSTOP');
    },
    resume: () => {
      child?.kill('SIGCONT');
    },
  };
}

/** The embedded aedes broker on a free port; restart() starts a fresh one there (aedes keeps sessions in memory only). */
export async function startAedes(): Promise<TestBroker> {
  let broker = await startEmbeddedBroker({ port: 0 });
  const port = broker.port;
  let running = true;
  const close = async (): Promise<void> => {
    if (!running) return;
    running = false;
    await broker.close();
  };
  return {
    url: broker.url,
    port,
    stop: close,
    kill: close,
    restart: async () => {
      await close();
      broker = await startEmbeddedBroker({ port });
      running = true;
    },
  };
}
