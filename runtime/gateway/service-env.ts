// What the service manager tells a process it starts (sd_notify(3), sd_watchdog_enabled(3)): where
// to send notifications, and how often it wants to hear that the process is alive.
import { EdgeInferError } from '../errors';

export interface ServiceEnv {
  /** NOTIFY_SOCKET: where notifications go. */
  socket: string;
  /** The watchdog's interval, ms: WATCHDOG_USEC, when it is meant for this process. */
  watchdogMs: number | undefined;
}

const NAMES = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'] as const;

/**
 * Reads and removes the service manager's variables from `env` (as sd_notify's
 * unset_environment does), so that child processes (Node-RED beside the gateway, npm) cannot
 * speak for the gateway. Undefined when NOTIFY_SOCKET is not set: not run by a service manager
 * that listens. A watchdog whose WATCHDOG_PID names another process is not ours. A value that is
 * not a number throws, naming the variable.
 */
export function takeServiceEnv(env: NodeJS.ProcessEnv, pid: number): ServiceEnv | undefined {
  const [socket, usec, watchdogPid] = NAMES.map((n) => env[n]);
  for (const n of NAMES) delete env[n];
  if (!socket) return undefined;
  let watchdogMs: number | undefined;
  if (usec !== undefined && usec !== '') {
    if (!/^\d+$/.test(usec) || Number(usec) === 0) throw new EdgeInferError('E_ARGUMENT', `WATCHDOG_USEC: expected a positive whole number of microseconds, got ${JSON.stringify(usec)}`);
    watchdogMs = Number(usec) / 1000;
  }
  if (watchdogPid !== undefined && watchdogPid !== '') {
    if (!/^\d+$/.test(watchdogPid)) throw new EdgeInferError('E_ARGUMENT', `WATCHDOG_PID: expected a process id, got ${JSON.stringify(watchdogPid)}`);
    if (Number(watchdogPid) !== pid) watchdogMs = undefined;
  }
  return { socket, watchdogMs };
}
