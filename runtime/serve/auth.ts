// Who may see the dashboard and acknowledge alerts. A dashboard only this machine can reach
// (bound to loopback) without users is open; with users every request needs a login; bound to
// the network without users it refuses to show anything (it would show the plant to anyone on
// the LAN and let them acknowledge alerts). Sessions live in memory: a restart logs users out.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { EdgeInferError } from '../errors';
import { type PasswordHash, parsePasswordHash, verifyPassword } from './passwords';

/** A dashboard user as the config gives it. */
export interface DashboardUser {
  user: string;
  /** bcrypt ($2a$/$2b$/$2y$) or scrypt (scrypt$N$r$p$salt$hash, from `edge-infer hash-password`). */
  passwordHash: string;
}

export interface AuthOptions {
  /** Users who may log in; none: the dashboard is open on loopback, closed elsewhere. */
  users?: readonly DashboardUser[];
  /** The address the server listens on (http.host), which decides whether it may be open. */
  listen: string;
  /** How long a session lasts after login, ms (default 12 h). */
  sessionTtlMs?: number;
  /** Failed logins from one address before it must wait (default 5). */
  maxFailures?: number;
  /** Failures count within this long, ms (default 15 min). */
  failureWindowMs?: number;
  /** The first wait after maxFailures, ms; each failure after a wait doubles it (default 30 s, at most 1 h). */
  lockMs?: number;
}

export const AUTH_DEFAULTS = { sessionTtlMs: 12 * 3600_000, maxFailures: 5, failureWindowMs: 15 * 60_000, lockMs: 30_000, maxLockMs: 3600_000 } as const;

/** The name the log records for acknowledgements on an open (loopback, no users) dashboard. */
export const LOCAL_USER = 'local';
export const SESSION_COOKIE = 'edge_infer_session';

/**
 * open: loopback and no users, anyone on this machine acts as 'local'; login: users configured,
 * a session is needed for everything but the login; closed: reachable from the network without
 * users, the dashboard answers 403.
 */
export type AuthMode = 'open' | 'login' | 'closed';

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and 'localhost': only this machine reaches them. */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** Login sessions: random 32-byte tokens kept only as their SHA-256, each with an expiry. */
export class Sessions {
  private readonly byDigest = new Map<string, { user: string; expiresMs: number }>();

  constructor(private readonly ttlMs: number = AUTH_DEFAULTS.sessionTtlMs) {}

  /** A new session for the user; the token goes into the cookie and nowhere else. */
  create(user: string, nowMs = Date.now()): { token: string; expiresMs: number } {
    this.prune(nowMs);
    const token = randomBytes(32).toString('base64url');
    const expiresMs = nowMs + this.ttlMs;
    this.byDigest.set(digest(token), { user, expiresMs });
    return { token, expiresMs };
  }

  /** The user of a live session, or null (unknown, expired, or no token). */
  user(token: string | undefined, nowMs = Date.now()): string | null {
    if (!token) return null;
    const key = digest(token);
    const s = this.byDigest.get(key);
    if (!s) return null;
    if (s.expiresMs <= nowMs) {
      this.byDigest.delete(key);
      return null;
    }
    return s.user;
  }

  /** Ends a session (logout); an unknown token is no error. */
  end(token: string | undefined): void {
    if (token) this.byDigest.delete(digest(token));
  }

  get size(): number {
    return this.byDigest.size;
  }

  private prune(nowMs: number): void {
    for (const [k, s] of this.byDigest) if (s.expiresMs <= nowMs) this.byDigest.delete(k);
  }
}

const digest = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Most addresses remembered at once: an attacker with many addresses must not grow it without end. */
const THROTTLE_MAX_ADDRESSES = 10_000;

/**
 * Failed logins per address: after maxFailures within the window the address waits lockMs, and
 * each failure after a wait doubles the next one (at most 1 h). A success forgets the address.
 */
export class LoginThrottle {
  private readonly byAddress = new Map<string, { failures: number; firstMs: number; lockedUntilMs: number; lockMs: number }>();

  constructor(private readonly o: { maxFailures: number; failureWindowMs: number; lockMs: number; maxLockMs: number } = AUTH_DEFAULTS) {}

  /** Seconds the address must still wait before it may try again (0: it may). */
  retryAfterS(address: string, nowMs = Date.now()): number {
    const a = this.byAddress.get(address);
    if (!a || a.lockedUntilMs <= nowMs) return 0;
    return Math.ceil((a.lockedUntilMs - nowMs) / 1000);
  }

  failed(address: string, nowMs = Date.now()): void {
    let a = this.byAddress.get(address);
    if (a && a.lockMs === 0 && nowMs - a.firstMs > this.o.failureWindowMs) a = undefined;
    if (!a) {
      if (this.byAddress.size >= THROTTLE_MAX_ADDRESSES) this.byAddress.delete(this.byAddress.keys().next().value!);
      a = { failures: 0, firstMs: nowMs, lockedUntilMs: 0, lockMs: 0 };
    }
    // Re-inserted: the map's order is the order of last failure, the oldest go first.
    this.byAddress.delete(address);
    this.byAddress.set(address, a);
    a.failures++;
    if (a.lockMs > 0) {
      a.lockMs = Math.min(a.lockMs * 2, this.o.maxLockMs);
      a.lockedUntilMs = nowMs + a.lockMs;
    } else if (a.failures >= this.o.maxFailures) {
      a.lockMs = this.o.lockMs;
      a.lockedUntilMs = nowMs + a.lockMs;
    }
  }

  succeeded(address: string): void {
    this.byAddress.delete(address);
  }
}

export type LoginResult = { ok: true; user: string; token: string; expiresMs: number } | { ok: false; retryAfterS: number };

/** A dashboard's users, sessions and login throttle, and the mode its listen address and users give. */
export class DashboardAuth {
  readonly mode: AuthMode;
  readonly sessions: Sessions;
  private readonly users: Array<{ user: string; hash: PasswordHash }>;
  private readonly throttle: LoginThrottle;

  /** Checks every user; a malformed hash is E_ARGUMENT naming `users[i].passwordHash`. */
  constructor(options: AuthOptions) {
    const o = options ?? ({} as AuthOptions);
    if (typeof o.listen !== 'string' || o.listen === '') throw new EdgeInferError('E_ARGUMENT', `auth.listen: expected the address the dashboard listens on, got ${String(o.listen)}`);
    const users = o.users ?? [];
    if (!Array.isArray(users)) throw new EdgeInferError('E_ARGUMENT', 'auth.users: expected a list of { user, passwordHash }');
    const seen = new Set<string>();
    this.users = users.map((u, i) => {
      if (typeof u?.user !== 'string' || u.user === '') throw new EdgeInferError('E_ARGUMENT', `users[${i}].user: expected a user name, got ${String(u?.user)}`);
      if (seen.has(u.user)) throw new EdgeInferError('E_ARGUMENT', `users[${i}].user: '${u.user}' is listed twice`);
      seen.add(u.user);
      try {
        return { user: u.user, hash: parsePasswordHash(u.passwordHash) };
      } catch (err) {
        throw new EdgeInferError('E_ARGUMENT', `users[${i}].passwordHash: ${(err as Error).message}`, { cause: err });
      }
    });
    this.mode = this.users.length > 0 ? 'login' : isLoopback(o.listen) ? 'open' : 'closed';
    this.sessions = new Sessions(o.sessionTtlMs ?? AUTH_DEFAULTS.sessionTtlMs);
    this.throttle = new LoginThrottle({
      maxFailures: o.maxFailures ?? AUTH_DEFAULTS.maxFailures,
      failureWindowMs: o.failureWindowMs ?? AUTH_DEFAULTS.failureWindowMs,
      lockMs: o.lockMs ?? AUTH_DEFAULTS.lockMs,
      maxLockMs: AUTH_DEFAULTS.maxLockMs,
    });
  }

  /**
   * Checks a login from an address. Refused while the address waits (retryAfterS > 0, nothing
   * checked), and on a wrong user or password alike (retryAfterS 0), after the same work.
   */
  async login(user: unknown, password: unknown, address: string, nowMs = Date.now()): Promise<LoginResult> {
    const wait = this.throttle.retryAfterS(address, nowMs);
    if (wait > 0) return { ok: false, retryAfterS: wait };
    const name = typeof user === 'string' ? user : '';
    const pass = typeof password === 'string' ? password : '';
    // Every name is compared, and an unknown one still costs a hash check: the answer's time
    // does not tell which names exist.
    let found: { user: string; hash: PasswordHash } | undefined;
    for (const u of this.users) if (sameText(u.user, name)) found = u;
    const hash = found?.hash ?? this.users[0]?.hash;
    const matches = hash ? await verifyPassword(pass, hash) : false;
    if (found && matches && pass !== '') {
      this.throttle.succeeded(address);
      return { ok: true, user: found.user, ...this.sessions.create(found.user, nowMs) };
    }
    this.throttle.failed(address, nowMs);
    return { ok: false, retryAfterS: 0 };
  }

  /** The user of the request's session cookie, or null. */
  userOf(req: IncomingMessage, nowMs = Date.now()): string | null {
    return this.sessions.user(sessionToken(req), nowMs);
  }

  logout(req: IncomingMessage): void {
    this.sessions.end(sessionToken(req));
  }
}

function sameText(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

/** The session cookie's value in the request, if any. */
export function sessionToken(req: IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === SESSION_COOKIE) return part.slice(at + 1).trim();
  }
  return undefined;
}
