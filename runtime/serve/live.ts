// The live feed: what the log commits (results, alerts) pushed to the dashboard's browsers as
// server-sent events, only the new points, never the history (that comes from the log). A browser
// that cannot keep up is let go rather than buffered without end: dashboards that resend or queue
// everything are what runs a Pi out of memory after hours. Events that arrive in one turn of the
// event loop (a burst of commits) leave as one write per browser.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EdgeInferError } from '../errors';
import type { AlertRecord, CommitUnit, ResultRecord } from '../store';

export interface LiveFeedOptions {
  /** Browsers connected at once; past it a new one is answered 503 (default 64). */
  maxClients?: number;
  /** Bytes written to a browser and not yet taken by its socket; past it the browser is let go (default 1 MiB). */
  maxBufferedBytes?: number;
  /** A comment line this often keeps proxies and the browser from closing an idle stream, ms (default 15 s). */
  heartbeatMs?: number;
}

export const LIVE_DEFAULTS = { maxClients: 64, maxBufferedBytes: 1 << 20, heartbeatMs: 15_000 } as const;

/** One result as the live feed sends it. */
export interface LivePoint {
  device: string;
  model: string;
  variant: string;
  /** Data time: the window's end, ms since the epoch. */
  timeMs: number;
  score: number;
  label: string | null;
  anomaly: boolean;
  /** RMS of the window's main channel, when logged. */
  rms: number | null;
}

/** One alert change as the live feed sends it. */
export type LiveAlert = Pick<AlertRecord, 'device' | 'model' | 'variant' | 'kind' | 'label' | 'score' | 'threshold' | 'message' | 'timeMs'>;

interface Client {
  res: ServerResponse;
  /** Only this device's events, when set. */
  device: string | undefined;
  points: LivePoint[];
  alerts: LiveAlert[];
}

export class LiveFeed {
  private readonly clients = new Set<Client>();
  private readonly options: Required<LiveFeedOptions>;
  private readonly heartbeat: NodeJS.Timeout;
  private flushing = false;
  private eventId = 0;
  /** Browsers let go because they could not keep up. */
  dropped = 0;

  constructor(options: LiveFeedOptions = {}) {
    this.options = { ...LIVE_DEFAULTS, ...options };
    for (const [name, v] of Object.entries(this.options)) {
      if (!Number.isSafeInteger(v) || v < 1) throw new EdgeInferError('E_ARGUMENT', `live feed: ${name} must be a whole number ≥ 1, got ${String(v)}`);
    }
    this.heartbeat = setInterval(() => this.beat(), this.options.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Browsers connected now. */
  get size(): number {
    return this.clients.size;
  }

  /**
   * Takes a browser's request as an event stream: `?device=<id>` limits it to one machine. Answers
   * 503 when as many browsers as allowed are connected.
   */
  attach(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= this.options.maxClients) {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '10' }).end(`live feed: ${this.options.maxClients} browsers are connected already\n`);
      return;
    }
    const device = new URL(req.url ?? '/', 'http://gateway').searchParams.get('device') ?? undefined;
    const client: Client = { res, device: device === '' ? undefined : device, points: [], alerts: [] };
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    // A browser that reconnects waits 2 s; what it missed meanwhile it reads from the log.
    res.write('retry: 2000\n\n');
    this.clients.add(client);
    const gone = (): void => {
      this.clients.delete(client);
    };
    res.once('close', gone);
    req.once('close', gone);
  }

  /** What one commit logged: its results and alerts go to the browsers that want them, in the next flush. */
  publish(unit: CommitUnit): void {
    const results = unit.results ?? [];
    const alerts = unit.alerts ?? [];
    if (this.clients.size === 0 || (results.length === 0 && alerts.length === 0)) return;
    const points = results.map(pointOf);
    const changes = alerts.map(alertOf);
    for (const c of this.clients) {
      for (const p of points) if (c.device === undefined || c.device === p.device) c.points.push(p);
      for (const a of changes) if (c.device === undefined || c.device === a.device) c.alerts.push(a);
    }
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  /** Ends every stream (the gateway is stopping). */
  close(): void {
    clearInterval(this.heartbeat);
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }

  private flush(): void {
    this.flushing = false;
    for (const c of this.clients) {
      let text = '';
      if (c.points.length) text += `id: ${++this.eventId}\nevent: results\ndata: ${JSON.stringify(c.points)}\n\n`;
      if (c.alerts.length) text += `id: ${++this.eventId}\nevent: alerts\ndata: ${JSON.stringify(c.alerts)}\n\n`;
      c.points = [];
      c.alerts = [];
      if (text) this.write(c, text);
    }
  }

  private beat(): void {
    for (const c of this.clients) this.write(c, ':\n\n');
  }

  /** Writes to a browser, or lets it go when what it has not taken yet (before this) passes the bound. */
  private write(c: Client, text: string): void {
    // Held by the response (before the socket takes it) and by the socket (before the kernel does).
    const pending = c.res.writableLength + (c.res.socket?.writableLength ?? 0);
    if (pending > this.options.maxBufferedBytes) {
      this.dropped++;
      this.clients.delete(c);
      // The browser reconnects after its retry and reads what it missed from the log.
      c.res.destroy();
      return;
    }
    c.res.write(text);
  }
}

function pointOf(r: ResultRecord): LivePoint {
  return { device: r.device, model: r.model, variant: r.variant, timeMs: r.timeMs, score: r.score, label: r.label, anomaly: r.anomaly, rms: r.rms ?? null };
}

function alertOf(a: AlertRecord): LiveAlert {
  return { device: a.device, model: a.model, variant: a.variant, kind: a.kind, label: a.label, score: a.score, threshold: a.threshold, message: a.message, timeMs: a.timeMs };
}
