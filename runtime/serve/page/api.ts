// The page's requests to its server. URLs are relative to the page, so the same page works at
// the gateway's `/` and `/dashboard` and at Node-RED's `<httpNodeRoot>/edge-infer/`.
import type { ApiError } from '../dashboard-contract.js';

/** An answer other than 2xx: its status says what kind (400 argument, 401 login, 404 none, 503 busy). */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

async function answer<T>(res: Response, what: string): Promise<T> {
  if (res.ok) return (await res.json()) as T;
  let body: Partial<ApiError> = {};
  try {
    body = (await res.json()) as ApiError;
  } catch {
    // Not JSON (a proxy's page): the status still says what kind.
  }
  throw new ApiFailure(res.status, body.error ?? `${what}: ${res.status} ${res.statusText}`, body.code);
}

let loginNeeded: (() => void) | null = null;

/** What to do when a read answers 401 (a dashboard with users, a session that expired): the app opens the login form. */
export function onLoginNeeded(then: () => void): void {
  loginNeeded = then;
}

/** A GET; a 401 opens the login form unless `quiet` (a background poll that shows the 401 itself instead). */
export async function getJson<T>(path: string, signal?: AbortSignal, quiet = false): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' }, credentials: 'same-origin', signal });
  if (res.status === 401 && !quiet) loginNeeded?.();
  return answer<T>(res, path);
}

/** A POST with a JSON body: the content type is what the server checks against cross-site forms. */
export async function postJson<T>(path: string, body: unknown = {}): Promise<T> {
  const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, credentials: 'same-origin', body: JSON.stringify(body) });
  return answer<T>(res, path);
}

export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
