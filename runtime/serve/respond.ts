// How the dashboard answers: JSON with the headers every answer carries, and errors as ApiError
// JSON with the status that says what kind (the contract's table).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isEdgeInferError } from '../errors';
import type { ApiError } from './dashboard-contract';

/** An answer other than 200 that a route decides on itself (a login needed, nothing by that name). */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
    /** Seconds to send as Retry-After (429, 503). */
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = 'ApiFailure';
  }
}

/** Seconds a browser waits before asking a busy log again. */
const BUSY_RETRY_S = 2;

/** The status, body and Retry-After of an error: the runtime's codes mapped as the contract says. */
export function failureOf(err: unknown): { status: number; body: ApiError; retryAfterS?: number } {
  if (err instanceof ApiFailure) return { status: err.status, body: withCode(err.message, err.code), retryAfterS: err.retryAfterS };
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof code === 'string' && (isEdgeInferError(err) || code.startsWith('E_'))) {
    if (code === 'E_ARGUMENT') return { status: 400, body: { error: message, code } };
    if (code === 'E_NOT_FOUND') return { status: 404, body: { error: message, code } };
    if (code === 'E_CONFLICT') return { status: 409, body: { error: message, code } };
    if (code === 'E_BUSY' || code === 'E_QUERY_TIMEOUT' || code === 'E_STORE_CLOSED' || code === 'E_STORE_WRITE') return { status: 503, body: { error: message, code }, retryAfterS: BUSY_RETRY_S };
    return { status: 500, body: { error: message, code } };
  }
  return { status: 500, body: { error: message } };
}

const withCode = (error: string, code: string | undefined): ApiError => (code ? { error, code } : { error });

/**
 * Headers on every dashboard answer: no script but the page's own files, no framing (Node-RED's
 * editor may frame its own pages), no MIME sniffing, no referrer to other sites.
 */
export function securityHeaders(host: 'gateway' | 'node-red'): Record<string, string> {
  const frame = host === 'node-red' ? "'self'" : "'none'";
  return {
    'content-security-policy': `default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors ${frame}`,
    'x-content-type-options': 'nosniff',
    'x-frame-options': host === 'node-red' ? 'SAMEORIGIN' : 'DENY',
    'referrer-policy': 'same-origin',
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

export function sendError(res: ServerResponse, err: unknown, headers: Record<string, string> = {}): void {
  const f = failureOf(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, f.status, f.body, f.retryAfterS ? { ...headers, 'retry-after': String(f.retryAfterS) } : headers);
}

/** Most bytes a POST body may have: logins and acknowledgements are tiny. */
const MAX_BODY_BYTES = 16 * 1024;

/**
 * A POST's JSON body. Only `content-type: application/json` is taken: a form on another site can
 * send a POST with a cookie, but not with that type without the browser asking us first (CORS).
 */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') throw new ApiFailure(415, `content-type: expected application/json, got ${type === '' ? 'none' : type}`, 'E_ARGUMENT');
  // Inside Node-RED an express body parser may have read the stream already.
  const parsed = (req as { body?: unknown }).body;
  if (req.readableEnded && parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) && !Buffer.isBuffer(parsed)) return parsed as Record<string, unknown>;
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > MAX_BODY_BYTES) throw new ApiFailure(413, `body: expected at most ${MAX_BODY_BYTES} bytes`, 'E_ARGUMENT');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiFailure(400, 'body: expected JSON, got text that does not parse', 'E_ARGUMENT');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ApiFailure(400, 'body: expected a JSON object', 'E_ARGUMENT');
  return value as Record<string, unknown>;
}
