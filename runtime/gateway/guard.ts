// The last line of defence of a gateway process: a promise rejected with nobody to handle it
// (a bug in a stage, a library's stray rejection) is reported and counted, and the gateway keeps
// running; by default Node ends the process, and a journaled message that caused it would then
// end every restart too. An exception thrown out of the event loop leaves the process in a state
// nobody can vouch for: it is reported, and the process ends as Node would (the service manager
// restarts it; the replay's attempt count stops a message that keeps doing it).
import type { GatewayMetrics } from '../serve/metrics';

export interface ProcessGuard {
  /** Rejections caught so far. */
  readonly caught: number;
  /** Removes the handlers. */
  dispose(): void;
}

export function guardProcess(report: (err: unknown) => void, metrics?: GatewayMetrics): ProcessGuard {
  let caught = 0;
  const onRejection = (reason: unknown): void => {
    caught++;
    metrics?.internalErrors.inc({ pipeline: '', stage: 'process' });
    const message = reason instanceof Error ? reason.stack ?? reason.message : String(reason);
    report(new Error(`unexpected error, caught so the gateway keeps running: ${message}`));
  };
  const onException = (err: Error, origin: string): void => {
    if (origin === 'uncaughtException') report(new Error(`fatal error, the process ends: ${err.stack ?? err.message}`));
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtExceptionMonitor', onException);
  return {
    get caught() {
      return caught;
    },
    dispose() {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtExceptionMonitor', onException);
    },
  };
}
