// When the gateway still earns its watchdog ping. A ping says "this process does its job"; a
// process that cannot (a blocked event loop, a log that does not commit, a broker connection that
// stays broken) is better restarted by systemd than left looking alive.
import { durationText } from '../problems';

/** What the rules read of the gateway: a part of Gateway.health(). */
export interface HealthView {
  /** 'connected', or the state of a connection that is not up. */
  broker: string;
  /** Since when the broker has been in that state, ISO time. */
  brokerSince: string | null;
  /** Since when commits fail, ISO time, or null while they succeed. */
  commitsFailingSince: string | null;
  /** Since when messages cannot be journaled, ISO time, or null. */
  journalFailingSince?: string | null;
}

export interface WatchdogRules {
  /** A check that runs later than this after it was due found the event loop blocked, ms. */
  loopLateMs: number;
  /**
   * How long the broker may be away, ms. Long enough for a broker's restart or its machine's
   * reboot, so that every gateway of a site is not restarted when the broker is; a gateway still
   * disconnected after that may hold a wedged client, which a new process replaces.
   */
  brokerAwayMs: number;
  /**
   * How long commits may fail, ms: a backup holding the log's lock for a few seconds is waited
   * out (the log retries), a log that stays stuck gets a new process and a new connection.
   */
  commitsFailingMs: number;
}

/**
 * Fifteen minutes: a broker restart, a reboot of its machine, a short maintenance. Not shorter: a
 * gateway cannot start without its broker, so one restarted while the broker is still away fails
 * its starts until systemd's start limit gives up on it (SERVICE.md).
 */
export const BROKER_AWAY_MS = 15 * 60_000;
/** Spread of the broker tolerance, so that a site's gateways are not all restarted in the same second. */
export const BROKER_AWAY_SPREAD_MS = 60_000;
/** One minute of failing commits. */
export const COMMITS_FAILING_MS = 60_000;
/** At most five seconds late (less when pings are due more often than every ten seconds). */
export const LOOP_LATE_MS = 5_000;

/** Why a ping is withheld: a key that stays the same while the cause does, and words for people. */
export interface Withheld {
  key: 'loop' | 'log' | 'commits' | 'broker';
  reason: string;
}

/**
 * The verdict of one check, due `lateMs` ago, at `nowMs`: undefined when the gateway is healthy,
 * else why not. `health` throwing (the log closed) counts as the log being unusable.
 */
export function judge(health: () => HealthView, lateMs: number, nowMs: number, rules: WatchdogRules): Withheld | undefined {
  if (lateMs > rules.loopLateMs) return { key: 'loop', reason: `the event loop was blocked: the watchdog check ran ${durationText(lateMs)} late (bound ${durationText(rules.loopLateMs)})` };
  let h: HealthView;
  try {
    h = health();
  } catch (err) {
    return { key: 'log', reason: `the gateway's state cannot be read: ${err instanceof Error ? err.message : String(err)}` };
  }
  // Results that cannot be committed, or messages that cannot be journaled: the log fails either way.
  const failing = [h.commitsFailingSince, h.journalFailingSince ?? null].filter((t): t is string => t !== null).sort()[0];
  if (failing !== undefined) {
    const forMs = nowMs - Date.parse(failing);
    if (forMs > rules.commitsFailingMs) return { key: 'commits', reason: `the log has not committed for ${durationText(forMs)} (since ${failing}; bound ${durationText(rules.commitsFailingMs)})` };
  }
  if (h.broker !== 'connected') {
    const forMs = h.brokerSince === null ? Infinity : nowMs - Date.parse(h.brokerSince);
    const how = h.brokerSince === null ? 'for an unknown time' : `for ${durationText(forMs)} (since ${h.brokerSince})`;
    if (forMs > rules.brokerAwayMs) return { key: 'broker', reason: `the broker has been ${h.broker} ${how}, longer than the ${durationText(rules.brokerAwayMs)} tolerated` };
  }
  return undefined;
}
