// The page's files: index.html (always asked again: a new version shows at the next load) and
// its assets (ETag: asked again, answered 304 while unchanged). uPlot comes from its package.
// Only names made of plain path segments are served, resolved inside their folder: no '..',
// no encoded dots or slashes, no absolute paths, no NUL.
import { createReadStream, promises as fs } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as path from 'node:path';
import { packageRoot } from '../paths';
import { ApiFailure } from './respond';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webmanifest': 'application/manifest+json',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** The built page: dist/runtime/serve/page beside this module once compiled, or in the package's dist/ when run from the sources. */
export function defaultPageDir(): string {
  return path.extname(__filename) === '.ts' ? path.join(packageRoot(), 'dist', 'runtime', 'serve', 'page') : path.join(__dirname, 'page');
}

/** uPlot's dist folder, where assets/uPlot.* are served from when the page folder has none. */
export function uplotDir(): string | null {
  try {
    return path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
  } catch {
    return null;
  }
}

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * The file a page-relative name means, or null when the name is not one the page can have (a
 * request for it is answered 404, never read). `name` is the URL path after the page's base,
 * still percent-encoded.
 */
export function pageFile(pageDir: string, name: string): string | null {
  if (name.includes('%') || name.includes('\0') || name.includes('\\')) return null;
  const segments = name.split('/');
  if (segments.some((s) => !SEGMENT.test(s) || s.includes('..'))) return null;
  const file = path.resolve(pageDir, ...segments);
  const root = path.resolve(pageDir);
  return file.startsWith(root + path.sep) ? file : null;
}

export class PageFiles {
  private readonly uplot = uplotDir();

  constructor(
    readonly dir: string,
    private readonly headers: Record<string, string>,
  ) {}

  /** index.html, not cached (it names the assets of its version). */
  async index(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const file = path.join(this.dir, 'index.html');
    const stat = await fs.stat(file).catch(() => null);
    if (!stat?.isFile()) throw new ApiFailure(503, `the dashboard page is not built: ${file} is missing (run npm run build)`);
    this.send(req, res, file, stat.size, { 'cache-control': 'no-cache' });
  }

  /** An asset by its page-relative name; false when there is no such file. */
  async asset(req: IncomingMessage, res: ServerResponse, name: string): Promise<boolean> {
    let file = pageFile(this.dir, name);
    if (!file) return false;
    let stat = await fs.stat(file).catch(() => null);
    if (!stat?.isFile() && name.startsWith('assets/uPlot.') && this.uplot) {
      file = pageFile(this.uplot, name.slice('assets/'.length));
      stat = file ? await fs.stat(file).catch(() => null) : null;
    }
    if (!file || !stat?.isFile()) return false;
    const etag = `W/"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
    const headers = { 'cache-control': 'no-cache', etag };
    const match = req.headers['if-none-match'];
    if (match && match.split(',').some((t) => t.trim() === etag)) {
      res.writeHead(304, { ...this.headers, ...headers }).end();
      return true;
    }
    this.send(req, res, file, stat.size, headers);
    return true;
  }

  private send(req: IncomingMessage, res: ServerResponse, file: string, size: number, extra: Record<string, string>): void {
    const type = TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
    res.writeHead(200, { ...this.headers, ...extra, 'content-type': type, 'content-length': String(size) });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(file);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  }
}
