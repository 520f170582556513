// Password hashes of the dashboard's users: bcrypt ($2a$/$2b$/$2y$), the format Node-RED's
// adminAuth uses, so a user can reuse theirs; and scrypt from node:crypto, written by
// `edge-infer hash-password` as `scrypt$N$r$p$salt$hash` (salt and hash in base64).
import { randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { EdgeInferError } from '../errors';

/** What hash-password writes: 2^15 × 8 × 128 bytes = 32 MiB and about 0.1 s per check on a Pi 4. */
export const SCRYPT_DEFAULTS = { N: 1 << 15, r: 8, p: 1, saltBytes: 16, keyBytes: 32 } as const;
/** Largest cost a config may ask for: beyond it one login could take the gateway's memory. */
const SCRYPT_MAX_N = 1 << 20;
const SCRYPT_MAX_MEMORY = 128 * SCRYPT_MAX_N * 8 * 2;

const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export type PasswordHash = { kind: 'bcrypt'; text: string } | { kind: 'scrypt'; N: number; r: number; p: number; salt: Buffer; hash: Buffer };

/** Reads a stored hash; E_ARGUMENT says what is wrong with it (the caller names the field). */
export function parsePasswordHash(text: unknown): PasswordHash {
  if (typeof text !== 'string' || text === '') throw new EdgeInferError('E_ARGUMENT', 'expected a bcrypt ($2b$...) or scrypt (scrypt$N$r$p$salt$hash) password hash, got nothing');
  if (text.startsWith('$2')) {
    const m = BCRYPT.exec(text);
    if (!m) throw new EdgeInferError('E_ARGUMENT', 'expected a bcrypt hash of 60 characters ($2a$, $2b$ or $2y$, two-digit cost, 53 characters of salt and hash), got a malformed one');
    const cost = Number(m[1]);
    if (cost < 4 || cost > 31) throw new EdgeInferError('E_ARGUMENT', `expected a bcrypt cost from 04 to 31, got ${m[1]}`);
    return { kind: 'bcrypt', text };
  }
  if (text.startsWith('scrypt$')) {
    const parts = text.split('$');
    if (parts.length !== 6) throw new EdgeInferError('E_ARGUMENT', `expected scrypt$N$r$p$salt$hash (6 parts separated by $), got ${parts.length} parts`);
    const [, n, r, p, salt, hash] = parts;
    const N = Number(n);
    if (!/^\d+$/.test(n) || N < 2 || N > SCRYPT_MAX_N || (N & (N - 1)) !== 0) throw new EdgeInferError('E_ARGUMENT', `scrypt N: expected a power of 2 from 2 to ${SCRYPT_MAX_N}, got ${n}`);
    const R = Number(r);
    const P = Number(p);
    if (!/^\d+$/.test(r) || R < 1 || R > 32) throw new EdgeInferError('E_ARGUMENT', `scrypt r: expected a whole number from 1 to 32, got ${r}`);
    if (!/^\d+$/.test(p) || P < 1 || P > 16) throw new EdgeInferError('E_ARGUMENT', `scrypt p: expected a whole number from 1 to 16, got ${p}`);
    if (!BASE64.test(salt) || Buffer.from(salt, 'base64').length < 8) throw new EdgeInferError('E_ARGUMENT', 'scrypt salt: expected at least 8 bytes in base64');
    if (!BASE64.test(hash) || Buffer.from(hash, 'base64').length < 16) throw new EdgeInferError('E_ARGUMENT', 'scrypt hash: expected at least 16 bytes in base64');
    return { kind: 'scrypt', N, r: R, p: P, salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') };
  }
  throw new EdgeInferError('E_ARGUMENT', 'expected a bcrypt ($2a$, $2b$, $2y$) or scrypt (scrypt$N$r$p$salt$hash, from `edge-infer hash-password`) password hash');
}

function scryptKey(password: string, salt: Buffer, keyBytes: number, o: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(password.normalize('NFC'), salt, keyBytes, { N: o.N, r: o.r, p: o.p, maxmem: SCRYPT_MAX_MEMORY }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** A new scrypt hash line of a password (what `edge-infer hash-password` prints). An empty password is refused. */
export async function hashPassword(password: string, options: { N?: number; r?: number; p?: number } = {}): Promise<string> {
  if (typeof password !== 'string' || password === '') throw new EdgeInferError('E_ARGUMENT', 'password: expected at least one character, got an empty password');
  const o = { N: options.N ?? SCRYPT_DEFAULTS.N, r: options.r ?? SCRYPT_DEFAULTS.r, p: options.p ?? SCRYPT_DEFAULTS.p };
  const salt = randomBytes(SCRYPT_DEFAULTS.saltBytes);
  const key = await scryptKey(password, salt, SCRYPT_DEFAULTS.keyBytes, o);
  const line = `scrypt$${o.N}$${o.r}$${o.p}$${salt.toString('base64')}$${key.toString('base64')}`;
  parsePasswordHash(line); // the options make a hash we can read back
  return line;
}

/** Whether the password matches the hash; compares in constant time. */
export async function verifyPassword(password: string, hash: PasswordHash): Promise<boolean> {
  if (hash.kind === 'bcrypt') return bcrypt.compare(password, hash.text);
  const key = await scryptKey(password, hash.salt, hash.hash.length, hash);
  return timingSafeEqual(key, hash.hash);
}
