// The watchdog's pings from a real gateway on a real Mosquitto, through systemd-notify to a real
// notify socket: every half interval while healthy, and none while the event loop is blocked (a
// synchronous busy loop in this process, the gateway's), the log is closed, commits fail past
// their bound (another process holds the log's write lock), or the broker is away past its
// tolerance. The verdict's words are checked on their own at the end.
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Gateway } from '../../runtime/gateway/gateway';
import { ServiceNotifier } from '../../runtime/gateway/service-notify';
import { SystemdNotify } from '../../runtime/gateway/systemd-notify';
import { type WatchdogRules, judge } from '../../runtime/gateway/watchdog-health';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { client, publish, waitFor } from '../helpers/gateway';
import { type NotifySocket, startNotifySocket } from '../helpers/notify-socket';
import { speedTableConfig } from '../helpers/speed-models';

/** Pings due every second. */
const WATCHDOG_MS = 2000;
const PERIOD_MS = WATCHDOG_MS / 2;
const SPEEDS = { name: 'speeds', topic: 'machine/{device}/speed', qos: 1, decoder: { kind: 'json', channels: ['speed'] }, model: 'speed-table' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Gaps between consecutive messages' arrival, ms. */
const gaps = (ts: number[]) => ts.slice(1).map((t, i) => t - ts[i]);

describe('the watchdog of a running gateway', () => {
  let broker: MosquittoBroker | undefined;
  let gateway: Gateway | undefined;
  let socket: NotifySocket | undefined;
  let notifier: ServiceNotifier | undefined;
  let pub: MqttClient | undefined;
  let reports: string[] = [];
  let gatewayReports: string[] = [];
  afterEach(async () => {
    notifier?.dispose();
    pub?.end(true);
    await gateway?.stop().catch(() => undefined);
    await broker?.stop();
    await socket?.stop();
    notifier = pub = gateway = broker = socket = undefined;
    reports = [];
  });

  async function start(rules: Partial<WatchdogRules> = {}): Promise<{ gateway: Gateway; socket: NotifySocket; notifier: ServiceNotifier }> {
    broker = await startMosquitto();
    socket = await startNotifySocket();
    gateway = new Gateway(speedTableConfig({ url: broker.url, protocol: 5, clientId: 'gw-watchdog', reconnectMs: 100 }, [SPEEDS], 'watchdog test config'), (e) => gatewayReports.push(e instanceof Error ? e.message : String(e)));
    await gateway.start();
    const g = gateway;
    const report = (e: Error): number => reports.push(e.message);
    notifier = new ServiceNotifier({
      env: { socket: socket.path, watchdogMs: WATCHDOG_MS },
      notify: new SystemdNotify({ socket: socket.path, pid: process.pid, report }),
      health: () => g.health(),
      // The event loop's bound is the production one (5 s) unless a test says otherwise: a
      // machine busy with other suites can delay a check by more than the half period the
      // default would allow at this watchdog's pace.
      rules: { brokerAwayMs: 60_000, commitsFailingMs: 60_000, loopLateMs: 5000, ...rules },
      report,
    });
    await notifier.ready('running');
    return { gateway, socket, notifier };
  }

  it('should say READY=1, then WATCHDOG=1 every half interval while healthy', async () => {
    const { socket } = await start();
    await socket.next('READY=1', 5000);
    await waitFor(() => socket.with('WATCHDOG=1').length >= 6, 15_000, 'six pings');
    const between = gaps(socket.with('WATCHDOG=1').map((m) => m.t));
    const median = [...between].sort((a, b) => a - b)[Math.floor(between.length / 2)];
    expect(median).toBeGreaterThan(PERIOD_MS * 0.85);
    expect(median).toBeLessThan(PERIOD_MS * 1.3);
    expect(reports).toEqual([]);
  }, 60_000);

  it('should send no ping for a check that ran late because the event loop was blocked, and ping again on the next', async () => {
    const { socket } = await start({ loopLateMs: PERIOD_MS / 2 });
    await waitFor(() => socket.with('WATCHDOG=1').length >= 2, 10_000, 'two pings');
    // The gateway's event loop is this one: a synchronous busy loop blocks it as a runaway
    // computation would.
    const blockedAt = Date.now();
    while (Date.now() - blockedAt < 3 * PERIOD_MS) {
      // busy
    }
    const freedAt = Date.now();
    const before = socket.with('WATCHDOG=1').filter((m) => m.t <= blockedAt).at(-1)!;
    const after = await socket.next('WATCHDOG=1', 10_000, freedAt);
    // The check that was due during the block ran at once when it ended, and sent nothing: the
    // next ping is a whole period later.
    expect(after.t - freedAt).toBeGreaterThan(PERIOD_MS * 0.8);
    expect(after.t - before.t).toBeGreaterThan(4 * PERIOD_MS * 0.95);
    expect(reports).toEqual(expect.arrayContaining([expect.stringMatching(/watchdog: no ping to systemd while the event loop was blocked: the watchdog check ran [\d.]+ (s|ms) late \(bound 500 ms\)/), expect.stringMatching(/watchdog: pings resume/)]));
    expect(notifier!.skipped).toBeGreaterThanOrEqual(1);
    // The STATUS= line of a gateway that is well comes back with the ping.
    expect(after.fields).toEqual([`MAINPID=${process.pid}`, 'WATCHDOG=1', 'STATUS=running']);
    expect(socket.messages.filter((m) => m.fields.some((f) => f.startsWith('STATUS=watchdog pings withheld: the event loop was blocked'))).length).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('should send no ping once the log is closed', async () => {
    const { gateway, socket } = await start();
    await waitFor(() => socket.with('WATCHDOG=1').length >= 2, 10_000, 'two pings');
    // The gateway's own stop closes the log (after its publisher, which reads it): the process
    // lives on, the notifier with it, as a gateway whose log is gone would.
    await gateway.stop();
    const closedAt = Date.now();
    await sleep(4 * PERIOD_MS);
    expect(socket.with('WATCHDOG=1').filter((m) => m.t > closedAt + 200)).toEqual([]);
    expect(reports).toEqual([expect.stringMatching(/no ping to systemd while the gateway's state cannot be read: .*is closed/)]);
  }, 60_000);

  it('should send no ping while commits fail longer than their bound, and ping again once they succeed', async () => {
    // The busy timeout blocks the loop up to 5 s a try while the lock is held: the loop's bound
    // is set above it, so that this test sees the commits' rule.
    const { gateway, socket } = await start({ commitsFailingMs: 0, loopLateMs: 10_000 });
    await waitFor(() => socket.with('WATCHDOG=1').length >= 2, 10_000, 'two pings');
    pub = await client(broker!.url);
    // Another process (a backup tool) takes the log's write lock and keeps it.
    const other = new Database(gateway.config.storage.path);
    other.exec('BEGIN IMMEDIATE');
    try {
      await publish(pub, 'machine/m-1/speed', JSON.stringify({ speed: 1 }), 1);
      // The message cannot be journaled: the gateway says so, and the log fails from then on.
      await waitFor(() => gateway.journalFailingSince !== null, 20_000, 'a failing journal');
      expect(gatewayReports.join('\n')).toMatch(/database is locked/);
      // /health says so too, before any commit has failed: no window completed to commit.
      expect(gateway.health()).toMatchObject({ ok: false, journalFailingSince: gateway.journalFailingSince });
      const failingAt = Date.now();
      await waitFor(() => reports.some((r) => r.includes('the log has not committed')), 10_000, 'the withheld ping reported');
      await sleep(3 * PERIOD_MS);
      // A check already running when the failure began may still have sent its ping.
      expect(socket.with('WATCHDOG=1').filter((m) => m.t > failingAt + PERIOD_MS)).toEqual([]);
    } finally {
      other.exec('COMMIT');
      other.close();
    }
    // The broker brings the message again (the gateway dropped the connection for that), and
    // it is journaled this time.
    await waitFor(() => gateway.journalFailingSince === null, 30_000, 'the journal to take messages again');
    await waitFor(() => gateway.health().ok, 10_000, '/health ok again');
    const committedAt = Date.now();
    await socket.next('WATCHDOG=1', 5 * PERIOD_MS, committedAt);
    expect(reports.at(-1)).toMatch(/watchdog: pings resume \(they were withheld: the log has not committed/);
  }, 90_000);

  it('should keep pinging through a broker outage shorter than its tolerance, and stop once it lasts longer', async () => {
    const { socket } = await start({ brokerAwayMs: 3 * PERIOD_MS });
    await waitFor(() => socket.with('WATCHDOG=1').length >= 2, 10_000, 'two pings');
    // A restart of the broker: within the tolerance, pings go on.
    await broker!.stop();
    const stoppedAt = Date.now();
    await sleep(PERIOD_MS * 1.5);
    await broker!.restart();
    await waitFor(() => gateway!.health().broker === 'connected', 10_000, 'the gateway to reconnect');
    expect(socket.with('WATCHDOG=1').filter((m) => m.t > stoppedAt).length).toBeGreaterThanOrEqual(1);
    expect(reports).toEqual([]);
    // Away for good: pings stop once the tolerance has passed.
    await broker!.stop();
    const goneAt = Date.now();
    await waitFor(() => reports.some((r) => /the broker has been \w+ for [\d.]+ s .*longer than the 3 s tolerated/.test(r)), 10_000, 'the withheld ping reported');
    const withheldAt = Date.now();
    await sleep(3 * PERIOD_MS);
    const late = socket.with('WATCHDOG=1').filter((m) => m.t > goneAt);
    // Pings while within the tolerance, none after it.
    expect(late.every((m) => m.t < goneAt + 3 * PERIOD_MS + PERIOD_MS)).toBe(true);
    expect(late.filter((m) => m.t > withheldAt)).toEqual([]);
  }, 90_000);
});

describe('judge', () => {
  const rules: WatchdogRules = { loopLateMs: 500, brokerAwayMs: 60_000, commitsFailingMs: 30_000 };
  const now = Date.parse('2026-12-01T10:00:00.000Z');
  const healthy = { broker: 'connected', brokerSince: '2026-12-01T09:00:00.000Z', commitsFailingSince: null };

  it('should find a healthy gateway healthy', () => {
    expect(judge(() => healthy, 20, now, rules)).toBeUndefined();
  });

  it('should tolerate a broker away and failing commits up to their bounds, not past them', () => {
    expect(judge(() => ({ ...healthy, broker: 'connecting', brokerSince: '2026-12-01T09:59:01.000Z' }), 0, now, rules)).toBeUndefined();
    expect(judge(() => ({ ...healthy, broker: 'connecting', brokerSince: '2026-12-01T09:58:59.000Z' }), 0, now, rules)).toEqual({ key: 'broker', reason: 'the broker has been connecting for 1 min 1 s (since 2026-12-01T09:58:59.000Z), longer than the 1 min tolerated' });
    expect(judge(() => ({ ...healthy, commitsFailingSince: '2026-12-01T09:59:31.000Z' }), 0, now, rules)).toBeUndefined();
    expect(judge(() => ({ ...healthy, commitsFailingSince: '2026-12-01T09:59:29.000Z' }), 0, now, rules)?.key).toBe('commits');
    // A journal that cannot be written is the log failing too; the older failure counts.
    expect(judge(() => ({ ...healthy, commitsFailingSince: '2026-12-01T09:59:50.000Z', journalFailingSince: '2026-12-01T09:59:00.000Z' }), 0, now, rules)).toEqual({ key: 'commits', reason: 'the log has not committed for 1 min (since 2026-12-01T09:59:00.000Z; bound 30 s)' });
    expect(judge(() => ({ ...healthy, journalFailingSince: '2026-12-01T09:59:50.000Z' }), 0, now, rules)).toBeUndefined();
  });

  it('should put a late check first, and count a health that throws as an unusable log', () => {
    expect(judge(() => ({ ...healthy, broker: 'disconnected', brokerSince: null }), 501, now, rules)?.key).toBe('loop');
    expect(judge(() => ({ ...healthy, broker: 'disconnected', brokerSince: null }), 0, now, rules)?.reason).toBe('the broker has been disconnected for an unknown time, longer than the 1 min tolerated');
    expect(
      judge(
        () => {
          throw new Error('outboxDepth: the store at /x/log.db is closed');
        },
        0,
        now,
        rules,
      ),
    ).toEqual({ key: 'log', reason: "the gateway's state cannot be read: outboxDepth: the store at /x/log.db is closed" });
  });
});

describe('ServiceNotifier', () => {
  const healthy = () => ({ broker: 'connected', brokerSince: null, commitsFailingSince: null });
  const rules = { brokerAwayMs: 60_000, commitsFailingMs: 60_000 };

  it('should refuse ready() twice and after stopping(), and say STOPPING=1 once however often it is asked', async () => {
    const socket = await startNotifySocket();
    try {
      const notify = new SystemdNotify({ socket: socket.path, pid: process.pid, report: () => undefined });
      const n = new ServiceNotifier({ env: { socket: socket.path, watchdogMs: WATCHDOG_MS }, notify, health: healthy, rules, report: () => undefined });
      await n.ready('running');
      await expect(n.ready('again')).rejects.toThrow(/ready\(\) after ready\(\)/);
      await n.stopping('stopping');
      await n.stopping('stopping');
      await expect(n.ready('again')).rejects.toThrow(/ready\(\) after stopping\(\)/);
      await sleep(2 * PERIOD_MS);
      expect(socket.with('STOPPING=1').map((m) => m.fields)).toEqual([[`MAINPID=${process.pid}`, 'STOPPING=1', 'STATUS=stopping']]);
      expect(socket.with('WATCHDOG=1')).toEqual([]);
    } finally {
      await socket.stop();
    }
  }, 30_000);

  it('should send no ping without a watchdog, nor after dispose(), and put a status on one line', async () => {
    const socket = await startNotifySocket();
    try {
      const notify = new SystemdNotify({ socket: socket.path, pid: process.pid, report: () => undefined });
      const without = new ServiceNotifier({ env: { socket: socket.path, watchdogMs: undefined }, notify, health: healthy, rules, report: () => undefined });
      expect(without.periodMs).toBeUndefined();
      await without.ready('running:\n  two lines');
      expect((await socket.next('READY=1', 5000)).fields).toContain('STATUS=running: two lines');
      const disposed = new ServiceNotifier({ env: { socket: socket.path, watchdogMs: WATCHDOG_MS }, notify, health: healthy, rules, report: () => undefined });
      expect(disposed.periodMs).toBe(PERIOD_MS);
      await disposed.ready('running');
      disposed.dispose();
      await sleep(2.5 * PERIOD_MS);
      expect(socket.with('WATCHDOG=1')).toEqual([]);
      expect(socket.with('STOPPING=1')).toEqual([]);
    } finally {
      await socket.stop();
    }
  }, 30_000);
});
