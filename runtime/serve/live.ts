// The live feed: what the log commits (results, alerts) pushed to the dashboard's browsers as
// server-sent events, only the new points, never the history (that comes from the log). A browser
// that cannot keep up is let go rather than buffered without end: dashboards that resend or queue
// everything are what runs a Pi out of memory after hours. What the log commits within one flush
// interval (100 ms by default: well inside the second a result may take to reach a pixel) leaves
// as one write per browser, serialized once for all browsers that follow the same machines: at
// thousands of results a second, five open dashboards must not cost the gateway five times the
// JSON.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EdgeInferError } from '../errors';
import type { AlertRecord, CommitUnit, ResultRecord } from '../store';
import type { LiveAlert, LivePoint } from './dashboard-contract';

export type { LiveAlert, LivePoint };

export interface LiveFeedOptions {
  /** Browsers connected at once; past it a new one is answered 503 (default 64). */
  maxClients?: number;
  /** Bytes written to a browser and not yet taken by its socket; past it the browser is let go (default 1 MiB). */
  maxBufferedBytes?: number;
  /** A comment line this often keeps proxies and the browser from closing an idle stream, ms (default 15 s). */
  heartbeatMs?: number;
  /** What commits within this long leaves in one write, ms (default 100). */
  flushMs?: number;
}

export const LIVE_DEFAULTS = { maxClients: 64, maxBufferedBytes: 1 << 20, heartbeatMs: 15_000, flushMs: 100 } as const;

interface Client {
  res: ServerResponse;
  /** Only this device's events, when set. */
  device: string | undefined;
}

export class LiveFeed {
  private readonly clients = new Set<Client>();
  private readonly options: Required<LiveFeedOptions>;
  private readonly heartbeat: NodeJS.Timeout;
  private flushing: NodeJS.Timeout | undefined;
  private eventId = 0;
  /** Committed since the last flush, for every browser (each takes its part). */
  private points: LivePoint[] = [];
  private alerts: LiveAlert[] = [];
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
    const client: Client = { res, device: device === '' ? undefined : device };
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
    for (const r of results) this.points.push(pointOf(r));
    for (const a of alerts) this.alerts.push(alertOf(a));
    this.flushing ??= setTimeout(() => this.flush(), this.options.flushMs);
  }

  /** Ends every stream (the gateway is stopping). */
  close(): void {
    clearInterval(this.heartbeat);
    clearTimeout(this.flushing);
    this.flushing = undefined;
    this.points = [];
    this.alerts = [];
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }

  private flush(): void {
    this.flushing = undefined;
    const points = this.points;
    const alerts = this.alerts;
    this.points = [];
    this.alerts = [];
    // One text per set of machines followed (all, or one device), made once for its browsers.
    const texts = new Map<string | undefined, string>();
    const textFor = (device: string | undefined): string => {
      let text = texts.get(device);
      if (text !== undefined) return text;
      const ps = device === undefined ? points : points.filter((p) => p.device === device);
      const as = device === undefined ? alerts : alerts.filter((a) => a.device === device);
      text = '';
      if (ps.length) text += `id: ${++this.eventId}\nevent: results\ndata: ${JSON.stringify(ps)}\n\n`;
      if (as.length) text += `id: ${++this.eventId}\nevent: alerts\ndata: ${JSON.stringify(as)}\n\n`;
      texts.set(device, text);
      return text;
    };
    for (const c of this.clients) {
      const text = textFor(c.device);
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
  return { device: r.device, model: r.model, variant: r.variant, timeMs: r.timeMs, score: r.score, label: r.label, anomaly: r.anomaly, rms: r.rms ?? null, processedMs: r.processedMs ?? Date.now() };
}

function alertOf(a: AlertRecord): LiveAlert {
  return { device: a.device, model: a.model, variant: a.variant, kind: a.kind, label: a.label, score: a.score, threshold: a.threshold, message: a.message, timeMs: a.timeMs };
}
