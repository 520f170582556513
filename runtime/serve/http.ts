// The gateway's HTTP endpoints: /health (JSON, 200 or 503) and /metrics (Prometheus text),
// always without a login (Prometheus and probes scrape them); everything else goes to the
// dashboard's handler when there is one. Plain node:http: a few routes need no framework.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EdgeInferError } from '../errors';

export interface HttpEndpoints {
  health: () => { ok: boolean } & Record<string, unknown>;
  metrics: () => Promise<string>;
  metricsContentType: string;
  /** The dashboard: answers what is its own and resolves true, or false for a 404. */
  dashboard?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
}

/** Listens on host:port (0 = a free port) and resolves with the port it got. */
export async function startHttp(port: number, host: string, endpoints: HttpEndpoints): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://gateway');
    void (async () => {
      try {
        if (url.pathname === '/health') {
          const h = endpoints.health();
          res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h));
        } else if (url.pathname === '/metrics') {
          const text = await endpoints.metrics();
          res.writeHead(200, { 'content-type': endpoints.metricsContentType }).end(text);
        } else if (!(await endpoints.dashboard?.(req, res))) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        }
      } catch (err) {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`${err instanceof Error ? err.message : String(err)}\n`);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new EdgeInferError('E_ARGUMENT', `http: cannot listen on ${host}:${port} (${err.code ?? err.message})`, { cause: err })));
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
