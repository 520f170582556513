// Shared pieces of the dashboard suites: a real log filled through ResultStore, the dashboard on a
// real node:http server, a page folder, and raw HTTP requests (fetch would tidy the paths the
// traversal tests send as they are).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingHttpHeaders, type IncomingMessage, type Server, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Dashboard, type DashboardOptions, createDashboard } from '../../runtime/serve/dashboard';
import { LogReader } from '../../runtime/serve/log-reader';
import type { ModelStatic } from '../../runtime/serve/model-views';
import { ResultStore } from '../../runtime/store';

const dirs: string[] = [];
process.on('exit', () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-dash-'));
  dirs.push(d);
  return d;
}

/** A page folder as the page's build leaves it, and a secret file beside it that must never be served. */
export function pageFolder(): string {
  const root = tempDir();
  const dir = path.join(root, 'page');
  mkdirSync(path.join(dir, 'assets'), { recursive: true });
  writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>edge-infer</title><script src="app.js"></script>\n');
  writeFileSync(path.join(dir, 'app.js'), 'console.log("page");\n');
  writeFileSync(path.join(dir, 'style.css'), 'body { color: black; }\n');
  writeFileSync(path.join(root, 'secret.txt'), 'not for browsers\n');
  return dir;
}

export const MODELS: ModelStatic[] = [
  { pipeline: 'anomaly', model: 'vibration-anomaly', title: 'Vibration anomaly detector', task: 'anomaly', variant: 'int8', precision: 'int8', bytes: 12_345, backend: 'wasm', threshold: 0.8, labels: null, cardAgreement: 0.997 },
  { pipeline: 'anomaly-fp32', model: 'vibration-anomaly', title: 'Vibration anomaly detector', task: 'anomaly', variant: 'fp32', precision: 'fp32', bytes: 40_000, backend: 'wasm', threshold: 0.8, labels: null, cardAgreement: null },
  { pipeline: 'classifier', model: 'fault-classifier', title: 'Fault classifier', task: 'classification', variant: 'fp32', precision: 'fp32', bytes: 30_000, backend: 'wasm', threshold: 0.5, labels: ['normal', 'bearing', 'imbalance'], cardAgreement: null },
];

export interface Served {
  url: string;
  port: number;
  dashboard: Dashboard;
  reader: LogReader;
  server: Server;
  close(): Promise<void>;
}

/** The dashboard on a real HTTP server on 127.0.0.1 over a log the store writes. */
export async function serveDashboard(store: ResultStore, options: Partial<DashboardOptions> = {}): Promise<Served> {
  const reader = options.reader ?? (await LogReader.open({ path: store.path }));
  let dashboard: Dashboard;
  try {
    dashboard = createDashboard({
      alerts: { acknowledge: (id, user, atMs) => store.acknowledgeAlert(id, user, atMs), clear: (id, user, atMs) => store.clearAlert(id, user, atMs) },
      models: () => MODELS,
      health: () => ({ ok: true, broker: 'connected' }),
      auth: { listen: '127.0.0.1' },
      host: 'gateway',
      pageDir: pageFolder(),
      ...options,
      reader,
    });
  } catch (err) {
    await reader.close();
    throw err;
  }
  const server = createServer((req, res) => {
    void dashboard.handle(req, res).then((mine) => {
      if (!mine) res.writeHead(404, { 'content-type': 'text/plain' }).end('not mine\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dashboard,
    reader,
    server,
    async close() {
      dashboard.close();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      await reader.close();
    },
  };
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: <T = Record<string, unknown>>() => T;
}

/** One HTTP request with the path sent exactly as given. */
export function request(port: number, method: string, pathname: string, o: { headers?: Record<string, string>; body?: unknown; host?: string } = {}): Promise<Answer> {
  const body = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
  const headers: Record<string, string> = { ...(body !== undefined && !o.headers?.['content-type'] ? { 'content-type': 'application/json' } : {}), ...o.headers };
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: o.host ?? '127.0.0.1', port, method, path: pathname, headers, agent: false }, (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: <T>() => JSON.parse(text) as T }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** The session cookie's name=value from a login answer. */
export function cookieOf(a: Answer): string {
  const set = a.headers['set-cookie']?.[0];
  if (!set) throw new Error(`no set-cookie in the answer (status ${a.status}: ${a.text})`);
  return set.split(';')[0];
}
