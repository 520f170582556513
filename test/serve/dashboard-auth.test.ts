// The dashboard's auth parts on their own: password hashes (bcrypt as Node-RED writes them, scrypt
// as hash-password writes them), sessions that expire, the login throttle that doubles its wait,
// which addresses count as this machine, and http.users in the gateway config.
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { DashboardAuth, LoginThrottle, Sessions, isLoopback } from '../../runtime/serve/auth';
import { hashPassword, parsePasswordHash, verifyPassword } from '../../runtime/serve/passwords';

// Small costs: these tests check formats and answers, not strength.
const FAST = { N: 1024, r: 8, p: 1 };

describe('password hashes', () => {
  it('should verify a scrypt hash it wrote, and refuse another password', async () => {
    const line = await hashPassword('correct horse', FAST);
    expect(line).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    const hash = parsePasswordHash(line);
    expect(await verifyPassword('correct horse', hash)).toBe(true);
    expect(await verifyPassword('correct horsE', hash)).toBe(false);
    // A new salt each time.
    expect(await hashPassword('correct horse', FAST)).not.toBe(line);
  });

  it('should verify bcrypt hashes of $2a$, $2b$ and $2y$ (Node-RED adminAuth writes $2b$ and $2a$)', async () => {
    const b = bcrypt.hashSync('node-red', 4);
    expect(await verifyPassword('node-red', parsePasswordHash(b))).toBe(true);
    expect(await verifyPassword('node-red!', parsePasswordHash(b))).toBe(false);
    for (const v of ['$2a$', '$2y$']) expect(await verifyPassword('node-red', parsePasswordHash(v + b.slice(4)))).toBe(true);
  });

  it('should refuse an empty password to hash', async () => {
    await expect(hashPassword('')).rejects.toThrow('password: expected at least one character, got an empty password');
  });

  for (const [hash, message] of [
    ['', /got nothing/],
    ['password', /^expected a bcrypt \(\$2a\$, \$2b\$, \$2y\$\) or scrypt/],
    ['$2b$10$tooShort', /^expected a bcrypt hash of 60 characters/],
    [`$2b$03$${'a'.repeat(53)}`, /^expected a bcrypt cost from 04 to 31, got 03/],
    ['scrypt$1024$8$1$abc', /^expected scrypt\$N\$r\$p\$salt\$hash \(6 parts separated by \$\), got 5 parts/],
    ['scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', /^scrypt N: expected a power of 2/],
    ['scrypt$1024$0$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', /^scrypt r: /],
    ['scrypt$1024$8$x$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', /^scrypt p: /],
    ['scrypt$1024$8$1$!!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', /^scrypt salt: /],
    ['scrypt$1024$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA', /^scrypt hash: expected at least 16 bytes/],
  ] as const) {
    it(`should refuse the hash ${JSON.stringify(hash)} saying what is wrong`, () => {
      expect(() => parsePasswordHash(hash)).toThrow(message);
    });
  }
});

describe('Sessions', () => {
  it('should name the user of a live token, nobody after its expiry or its end, nobody for a made-up one', () => {
    const s = new Sessions(1000);
    const { token, expiresMs } = s.create('alice', 10_000);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(expiresMs).toBe(11_000);
    expect(s.user(token, 10_999)).toBe('alice');
    expect(s.user(token, 11_000)).toBeNull();
    const other = s.create('bob', 20_000).token;
    expect(s.user('made-up', 20_000)).toBeNull();
    expect(s.user(undefined, 20_000)).toBeNull();
    s.end(other);
    expect(s.user(other, 20_000)).toBeNull();
  });
});

describe('LoginThrottle', () => {
  it('should let an address wait after 5 failures within the window, doubling the wait at each failure after one', () => {
    const t = new LoginThrottle({ maxFailures: 5, failureWindowMs: 60_000, lockMs: 30_000, maxLockMs: 3600_000 });
    for (let i = 0; i < 4; i++) t.failed('10.0.0.1', 1000);
    expect(t.retryAfterS('10.0.0.1', 1000)).toBe(0);
    t.failed('10.0.0.1', 1000);
    expect(t.retryAfterS('10.0.0.1', 1000)).toBe(30);
    expect(t.retryAfterS('10.0.0.2', 1000)).toBe(0);
    // After the wait, one more failure waits twice as long, and so on.
    t.failed('10.0.0.1', 31_000);
    expect(t.retryAfterS('10.0.0.1', 31_000)).toBe(60);
    t.failed('10.0.0.1', 91_000);
    expect(t.retryAfterS('10.0.0.1', 91_000)).toBe(120);
    t.succeeded('10.0.0.1');
    expect(t.retryAfterS('10.0.0.1', 91_000)).toBe(0);
  });

  it('should forget failures older than the window', () => {
    const t = new LoginThrottle({ maxFailures: 5, failureWindowMs: 60_000, lockMs: 30_000, maxLockMs: 3600_000 });
    for (let i = 0; i < 4; i++) t.failed('a', 0);
    t.failed('a', 61_000);
    expect(t.retryAfterS('a', 61_000)).toBe(0);
  });
});

describe('isLoopback and the auth mode', () => {
  it('should take 127.0.0.0/8, ::1 and localhost as this machine only', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'gateway.local', '128.0.0.1', '127.0.0.1.example.com']) expect(isLoopback(h), h).toBe(false);
  });

  it('should be open on loopback without users, closed elsewhere without users, login with users', () => {
    const hash = bcrypt.hashSync('x', 4);
    expect(new DashboardAuth({ listen: '127.0.0.1' }).mode).toBe('open');
    expect(new DashboardAuth({ listen: '0.0.0.0', users: [] }).mode).toBe('closed');
    expect(new DashboardAuth({ listen: '192.168.1.10' }).mode).toBe('closed');
    expect(new DashboardAuth({ listen: '127.0.0.1', users: [{ user: 'a', passwordHash: hash }] }).mode).toBe('login');
  });

  it('should refuse bad users naming them', () => {
    const hash = bcrypt.hashSync('x', 4);
    expect(() => new DashboardAuth({ listen: '127.0.0.1', users: [{ user: 'a', passwordHash: 'plain' }] })).toThrow(/^users\[0\]\.passwordHash: expected a bcrypt/);
    expect(() => new DashboardAuth({ listen: '127.0.0.1', users: [{ user: 'a', passwordHash: hash }, { user: 'a', passwordHash: hash }] })).toThrow("users[1].user: 'a' is listed twice");
    expect(() => new DashboardAuth({ listen: '' })).toThrow(/^auth\.listen: expected the address/);
  });
});

describe('http.users in the gateway config', () => {
  const base = { pipelines: [{ name: 'p', topic: 'plant/{device}/v', decoder: { kind: 'json', channels: ['v'] }, model: 'm' }] };

  it('should take bcrypt and scrypt hashes, and leave http as it was without users', async () => {
    const users = [{ user: 'alice', passwordHash: await hashPassword('x', FAST) }, { user: 'bob', passwordHash: bcrypt.hashSync('y', 4) }];
    expect(parseGatewayConfig({ ...base, http: { host: '0.0.0.0', users } }).http).toEqual({ port: 8080, host: '0.0.0.0', users });
    expect(parseGatewayConfig(base).http).toEqual({ port: 8080, host: '127.0.0.1' });
  });

  it('should refuse a malformed hash, naming the field', () => {
    expect(() => parseGatewayConfig({ ...base, http: { users: [{ user: 'alice', passwordHash: 'hunter2' }] } }, 'gw.yaml')).toThrow(/^gw\.yaml: http\.users\[0\]\.passwordHash: expected a bcrypt/);
    expect(() => parseGatewayConfig({ ...base, http: { users: [{ user: 'alice', password: 'hunter2' }] } }, 'gw.yaml')).toThrow(/^gw\.yaml: http\.users\[0\]/);
    expect(() => parseGatewayConfig({ ...base, http: { users: [{ user: 'a b', passwordHash: bcrypt.hashSync('y', 4) }] } }, 'gw.yaml')).toThrow(/^gw\.yaml: http\.users\[0\]\.user: expected a user name without spaces/);
  });
});
