// The live feed: server-sent events from api/live with only the new points and alert changes.
// History never comes this way; after a reconnect the view reads what it missed from the log.
import * as stats from './stats.js';
import type { LiveAlert, LivePoint } from './types.js';

export interface LiveHandlers {
  results?(points: LivePoint[], receivedAt: number): void;
  alerts?(alerts: LiveAlert[]): void;
  /** The stream came back after a break: what happened meanwhile is only in the log. */
  reconnected?(): void;
  /** Connected or not, for the page's status line. */
  state?(connected: boolean): void;
}

export interface LiveFeed {
  close(): void;
}

export function openLive(handlers: LiveHandlers, device?: string): LiveFeed {
  const source = new EventSource(device === undefined ? 'api/live' : `api/live?device=${encodeURIComponent(device)}`);
  let broken = false;
  source.addEventListener('open', () => {
    handlers.state?.(true);
    if (broken) handlers.reconnected?.();
    broken = false;
  });
  source.addEventListener('error', () => {
    broken = true;
    handlers.state?.(false);
  });
  source.addEventListener('results', (e) => {
    const receivedAt = performance.now();
    const points = JSON.parse((e as MessageEvent<string>).data) as LivePoint[];
    stats.received(points.length);
    handlers.results?.(points, receivedAt);
  });
  source.addEventListener('alerts', (e) => {
    handlers.alerts?.(JSON.parse((e as MessageEvent<string>).data) as LiveAlert[]);
  });
  return { close: () => source.close() };
}
