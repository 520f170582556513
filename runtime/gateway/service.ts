// The gateway's side of a systemd unit, put together from the environment: what `edge-infer run`
// calls. Undefined, and nothing happens, when no service manager listens.
import { EdgeInferError } from '../errors';
import { type ServiceEnv, takeServiceEnv } from './service-env';
import { ServiceNotifier } from './service-notify';
import { SystemdNotify } from './systemd-notify';
import { BROKER_AWAY_MS, BROKER_AWAY_SPREAD_MS, COMMITS_FAILING_MS, type HealthView } from './watchdog-health';

/** Seconds the broker may be away before pings stop (default fifteen minutes and up to one more, at random). */
export const BROKER_AWAY_ENV = 'EDGE_INFER_WATCHDOG_BROKER_S';
/** Seconds commits may fail before pings stop (default 60). */
export const COMMITS_FAILING_ENV = 'EDGE_INFER_WATCHDOG_COMMITS_S';

/** What the watchdog reads of a gateway (a Gateway): /health's view, the journal's failures included. */
export interface WatchedGateway {
  health(): HealthView;
}

export interface GatewayService {
  /** READY=1 with `status`; the watchdog's checks read the gateway's health from now on. */
  start(gateway: WatchedGateway, status: string): Promise<void>;
  /** STOPPING=1; no ping after it. Idempotent. */
  stopping(status?: string): Promise<void>;
}

export interface ServiceForOptions {
  /** The gateway's process id (default this process's). */
  pid?: number;
  /** The systemd-notify binary (default found on PATH). */
  binary?: string;
  /** Chooses the spread of the broker tolerance, in [0, 1) (default Math.random). */
  random?: () => number;
}

/**
 * Reads (and removes, see takeServiceEnv) the service manager's variables from `env`, and the
 * tolerances from EDGE_INFER_WATCHDOG_BROKER_S and EDGE_INFER_WATCHDOG_COMMITS_S. A variable
 * that cannot be read is reported and the gateway goes on: without a watchdog when it was
 * WATCHDOG_*, with the default when it was a tolerance.
 */
export function serviceFor(env: NodeJS.ProcessEnv, report: (err: Error) => void, options: ServiceForOptions = {}): GatewayService | undefined {
  const pid = options.pid ?? process.pid;
  let service: ServiceEnv | undefined;
  const socket = env.NOTIFY_SOCKET;
  try {
    service = takeServiceEnv(env, pid);
  } catch (err) {
    report(new EdgeInferError('E_ARGUMENT', `${(err as Error).message}: the gateway runs without systemd's watchdog`));
    service = socket ? { socket, watchdogMs: undefined } : undefined;
  }
  if (!service) return undefined;
  const spread = Math.floor((options.random ?? Math.random)() * BROKER_AWAY_SPREAD_MS);
  const rules = {
    brokerAwayMs: seconds(env, BROKER_AWAY_ENV, report) ?? BROKER_AWAY_MS + spread,
    commitsFailingMs: seconds(env, COMMITS_FAILING_ENV, report) ?? COMMITS_FAILING_MS,
  };
  const notify = new SystemdNotify({ socket: service.socket, pid, binary: options.binary, report });
  const manager = service;
  let notifier: ServiceNotifier | undefined;
  let stopped = false;
  return {
    async start(gateway, status) {
      if (notifier || stopped) throw new EdgeInferError('E_ARGUMENT', 'service: start() after start() or stopping()');
      notifier = new ServiceNotifier({ env: manager, notify, health: () => gateway.health(), rules, report });
      await notifier.ready(status);
    },
    async stopping(status) {
      if (stopped) return;
      stopped = true;
      // A stop before READY=1 (something failed between the gateway's start and it) says so too.
      if (notifier) await notifier.stopping(status);
      else await notify.send(['STOPPING=1', ...(status ? [`STATUS=${status.replace(/\s*\n\s*/g, ' ')}`] : [])]);
    },
  };
}

/** A tolerance in seconds from the environment, in ms; undefined (and reported) when not a number. */
function seconds(env: NodeJS.ProcessEnv, name: string, report: (err: Error) => void): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (Number.isFinite(n) && n >= 0) return n * 1000;
  report(new EdgeInferError('E_ARGUMENT', `${name}: expected seconds (a number, 0 or more), got ${JSON.stringify(v)}; the default is used`));
  return undefined;
}
