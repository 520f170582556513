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

/** After the server refused the stream (a 401, 503 while full), when to ask again. */
const REOPEN_MS = 5000;

export function openLive(handlers: LiveHandlers, device?: string): LiveFeed {
  const url = device === undefined ? 'api/live' : `api/live?device=${encodeURIComponent(device)}`;
  let source: EventSource | null = null;
  let broken = false;
  let closed = false;
  let timer: number | undefined;
  const open = (): void => {
    const s = (source = new EventSource(url));
    s.addEventListener('open', () => {
      handlers.state?.(true);
      if (broken) handlers.reconnected?.();
      broken = false;
    });
    s.addEventListener('error', () => {
      broken = true;
      handlers.state?.(false);
      // A dropped stream the browser reopens by itself; one answered with an error status it gives up.
      if (s.readyState === EventSource.CLOSED && !closed) timer = window.setTimeout(open, REOPEN_MS);
    });
    s.addEventListener('results', (e) => {
      const receivedAt = performance.now();
      const points = JSON.parse((e as MessageEvent<string>).data) as LivePoint[];
      stats.received(points.length);
      handlers.results?.(points, receivedAt);
    });
    s.addEventListener('alerts', (e) => {
      handlers.alerts?.(JSON.parse((e as MessageEvent<string>).data) as LiveAlert[]);
    });
  };
  open();
  return {
    close: () => {
      closed = true;
      clearTimeout(timer);
      source?.close();
    },
  };
}
