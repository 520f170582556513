// The gateway as a systemd service (Type=notify): READY=1 once it has started, WATCHDOG=1 every
// half of the watchdog's interval while it is healthy (watchdog-health.ts), STOPPING=1 when it
// stops. Nothing at all when no service manager listens (NOTIFY_SOCKET unset).
import { performance } from 'node:perf_hooks';
import { EdgeInferError } from '../errors';
import type { ServiceEnv } from './service-env';
import { type HealthView, LOOP_LATE_MS, type Withheld, type WatchdogRules, judge } from './watchdog-health';

/** What sends the messages (SystemdNotify, or anything that speaks sd_notify's fields). */
export interface Notifier {
  send(fields: readonly string[]): Promise<boolean>;
}

export interface ServiceNotifierOptions {
  env: ServiceEnv;
  notify: Notifier;
  /** The gateway's health, read at every check. */
  health: () => HealthView;
  /** When pings stop; loopLateMs defaults to five seconds or half the ping period, the shorter. */
  rules: Omit<WatchdogRules, 'loopLateMs'> & { loopLateMs?: number };
  /** Told when pings stop (once per cause) and when they resume. */
  report: (err: Error) => void;
}

export class ServiceNotifier {
  private timer: NodeJS.Timeout | undefined;
  private dueMs = 0;
  private withheld: Withheld | undefined;
  private readonly rules: WatchdogRules;
  private state: 'new' | 'ready' | 'stopping' = 'new';
  /** The STATUS= text of a gateway that is well, said again when pings resume. */
  private status = '';
  /** Watchdog pings sent (handed to the notifier). */
  pings = 0;
  /** Checks that withheld their ping. */
  skipped = 0;

  constructor(private readonly o: ServiceNotifierOptions) {
    const period = this.periodMs;
    this.rules = { ...o.rules, loopLateMs: o.rules.loopLateMs ?? Math.min(LOOP_LATE_MS, (period ?? Infinity) / 2) };
  }

  /** How often a ping is due, ms: half the watchdog's interval; undefined without a watchdog. */
  get periodMs(): number | undefined {
    return this.o.env.watchdogMs === undefined ? undefined : this.o.env.watchdogMs / 2;
  }

  /**
   * READY=1 with a STATUS= line, then the watchdog's checks. Resolves once the message is sent
   * (or could not be). Twice, or after stopping(), is an error.
   */
  async ready(status: string): Promise<void> {
    if (this.state !== 'new') throw new EdgeInferError('E_ARGUMENT', `service notifier: ready() after ${this.state === 'ready' ? 'ready()' : 'stopping()'}`);
    this.state = 'ready';
    this.status = oneLine(status);
    const sent = this.o.notify.send(['READY=1', `STATUS=${this.status}`]);
    if (this.periodMs !== undefined) this.schedule();
    await sent;
  }

  /** STOPPING=1 (with a STATUS= line when given); no ping after it. Idempotent. */
  async stopping(status?: string): Promise<void> {
    if (this.state === 'stopping') return;
    this.state = 'stopping';
    this.dispose();
    await this.o.notify.send(['STOPPING=1', ...(status ? [`STATUS=${oneLine(status)}`] : [])]);
  }

  /** Stops the checks without telling systemd anything. */
  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    const period = this.periodMs!;
    this.dueMs = performance.now() + period;
    this.timer = setTimeout(() => this.check(), period);
  }

  /**
   * One check: how late it ran says whether the event loop was free (a timer cannot fire while
   * the loop is busy), the gateway's health says the rest. The next one is due a period after
   * this one ran, so one blocked stretch withholds one ping, not a burst of catch-up ones.
   */
  private check(): void {
    if (this.state !== 'ready') return;
    const lateMs = performance.now() - this.dueMs;
    const verdict = judge(this.o.health, lateMs, Date.now(), this.rules);
    this.schedule();
    if (!verdict) {
      this.pings++;
      const resumed = this.withheld;
      this.withheld = undefined;
      if (resumed) this.o.report(new EdgeInferError('E_ARGUMENT', `watchdog: pings resume (they were withheld: ${resumed.reason})`));
      void this.o.notify.send(['WATCHDOG=1', ...(resumed ? [`STATUS=${this.status}`] : [])]);
      return;
    }
    this.skipped++;
    if (this.withheld?.key === verdict.key) return;
    this.withheld = verdict;
    this.o.report(new EdgeInferError('E_ARGUMENT', `watchdog: no ping to systemd while ${verdict.reason}; systemd restarts the gateway if this lasts`));
    void this.o.notify.send([`STATUS=watchdog pings withheld: ${oneLine(verdict.reason)}`]);
  }
}

/** A STATUS= text on one line. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}
