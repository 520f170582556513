// The messages to the service manager, through Debian's real systemd-notify binary to a real
// AF_UNIX datagram socket; and what the gateway reads of the environment systemd gives it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceFor } from '../../runtime/gateway/service';
import { takeServiceEnv } from '../../runtime/gateway/service-env';
import { SystemdNotify } from '../../runtime/gateway/systemd-notify';
import { type NotifySocket, startNotifySocket } from '../helpers/notify-socket';
import { tempDir, waitFor } from '../helpers/gateway';
import * as path from 'node:path';

describe('SystemdNotify', () => {
  let socket: NotifySocket;
  beforeAll(async () => {
    socket = await startNotifySocket();
  });
  afterAll(async () => {
    await socket?.stop();
  });

  it('should send the fields with MAINPID= naming the gateway, and resolve true', async () => {
    const reports: Error[] = [];
    const n = new SystemdNotify({ socket: socket.path, pid: process.pid, report: (e) => reports.push(e) });
    expect(await n.send(['READY=1', 'STATUS=running: 2 pipelines'])).toBe(true);
    const m = await socket.next('READY=1', 5000);
    expect(m.fields).toEqual([`MAINPID=${process.pid}`, 'READY=1', 'STATUS=running: 2 pipelines']);
    expect(n.sent).toBe(1);
    expect(reports).toEqual([]);
  });

  it('should deliver messages in the order they were sent', async () => {
    const n = new SystemdNotify({ socket: socket.path, pid: process.pid, report: () => undefined });
    const since = Date.now() - 1;
    await Promise.all(['STATUS=first', 'STATUS=second', 'STATUS=third'].map((f) => n.send([f])));
    const statuses = socket.messages.filter((m) => m.t > since).flatMap((m) => m.fields.filter((f) => f.startsWith('STATUS=')));
    expect(statuses).toEqual(['STATUS=first', 'STATUS=second', 'STATUS=third']);
  });

  it('should refuse a field that is not NAME=value on one line, and an empty message', () => {
    const n = new SystemdNotify({ socket: socket.path, pid: process.pid, report: () => undefined });
    expect(() => n.send(['STATUS=two\nREADY=1'])).toThrow(/expected NAME=value on one line, got "STATUS=two\\nREADY=1"/);
    expect(() => n.send(['ready'])).toThrow(/expected NAME=value/);
    expect(() => n.send([])).toThrow(/at least one NAME=value field/);
  });

  it('should refuse an empty socket path and a pid that is not a process id', () => {
    expect(() => new SystemdNotify({ socket: '', pid: 1, report: () => undefined })).toThrow(/socket: expected the NOTIFY_SOCKET path/);
    expect(() => new SystemdNotify({ socket: socket.path, pid: 0, report: () => undefined })).toThrow(/pid: expected a process id, got 0/);
  });

  it('should report a missing binary once, resolve false every time, and never throw', async () => {
    const reports: Error[] = [];
    const n = new SystemdNotify({ socket: socket.path, pid: process.pid, binary: '/nonexistent/systemd-notify', report: (e) => reports.push(e) });
    expect(await n.send(['WATCHDOG=1'])).toBe(false);
    expect(await n.send(['WATCHDOG=1'])).toBe(false);
    expect(await n.send(['STOPPING=1'])).toBe(false);
    expect(n.failed).toBe(3);
    expect(reports.map((e) => e.message)).toEqual([expect.stringMatching(/cannot tell the service manager .*\/nonexistent\/systemd-notify is not installed \(Debian: apt-get install systemd\).*said once/)]);
  });

  it('should report a socket that is gone once, with what systemd-notify said', async () => {
    const reports: Error[] = [];
    const gone = path.join(tempDir('edge-infer-notify-gone-'), 'notify.sock');
    const n = new SystemdNotify({ socket: gone, pid: process.pid, report: (e) => reports.push(e) });
    expect(await n.send(['READY=1'])).toBe(false);
    expect(await n.send(['WATCHDOG=1'])).toBe(false);
    expect(reports).toHaveLength(1);
    expect(reports[0].message).toContain(`NOTIFY_SOCKET=${gone}`);
    expect(reports[0].message).toMatch(/systemd-notify failed: .*No such file or directory/);
  });
});

describe('takeServiceEnv', () => {
  it('should read the socket and the watchdog interval, and remove the variables so children do not inherit them', () => {
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4242', PATH: '/usr/bin' };
    expect(takeServiceEnv(env, 4242)).toEqual({ socket: '/run/systemd/notify', watchdogMs: 30_000 });
    expect(env).toEqual({ PATH: '/usr/bin' });
  });

  it('should say there is no service manager when NOTIFY_SOCKET is unset or empty', () => {
    expect(takeServiceEnv({ WATCHDOG_USEC: '1000000' }, 1)).toBeUndefined();
    expect(takeServiceEnv({ NOTIFY_SOCKET: '' }, 1)).toBeUndefined();
  });

  it('should leave the watchdog to the process WATCHDOG_PID names when that is another one, and take it without WATCHDOG_PID', () => {
    expect(takeServiceEnv({ NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '2000000', WATCHDOG_PID: '99' }, 100)).toEqual({ socket: '/s', watchdogMs: undefined });
    expect(takeServiceEnv({ NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '2000000' }, 100)).toEqual({ socket: '/s', watchdogMs: 2000 });
    expect(takeServiceEnv({ NOTIFY_SOCKET: '/s' }, 100)).toEqual({ socket: '/s', watchdogMs: undefined });
  });

  it('should throw, naming the variable, for a value that is not a number, and still remove them all', () => {
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '30s' };
    expect(() => takeServiceEnv(env, 1)).toThrow(/WATCHDOG_USEC: expected a positive whole number of microseconds, got "30s"/);
    expect(env).toEqual({});
    expect(() => takeServiceEnv({ NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '0' }, 1)).toThrow(/WATCHDOG_USEC/);
    expect(() => takeServiceEnv({ NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '1000', WATCHDOG_PID: 'me' }, 1)).toThrow(/WATCHDOG_PID: expected a process id, got "me"/);
  });
});

describe('serviceFor', () => {
  it('should do nothing at all without NOTIFY_SOCKET', () => {
    const reports: Error[] = [];
    expect(serviceFor({ WATCHDOG_USEC: '1000000' }, (e) => reports.push(e))).toBeUndefined();
    expect(reports).toEqual([]);
  });

  it('should report a watchdog variable it cannot read and still say READY=1, without pings', async () => {
    const socket = await startNotifySocket();
    try {
      const reports: Error[] = [];
      const service = serviceFor({ NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: 'soon' }, (e) => reports.push(e))!;
      expect(reports.map((e) => e.message)).toEqual([expect.stringMatching(/WATCHDOG_USEC: .*got "soon": the gateway runs without systemd's watchdog/)]);
      await service.start({ health: () => ({ broker: 'connected', brokerSince: null, commitsFailingSince: null }) }, 'running');
      await socket.next('READY=1', 5000);
      await new Promise((r) => setTimeout(r, 1500));
      expect(socket.with('WATCHDOG=1')).toEqual([]);
      await service.stopping();
      await socket.next('STOPPING=1', 5000);
      await expect(service.start({ health: () => ({ broker: 'connected', brokerSince: null, commitsFailingSince: null }) }, 'again')).rejects.toThrow(/start\(\) after/);
    } finally {
      await socket.stop();
    }
  });

  it('should tolerate the broker away fifteen minutes and a spread chosen at random, then withhold pings', async () => {
    const socket = await startNotifySocket();
    const services: Array<ReturnType<typeof serviceFor>> = [];
    try {
      const awayFor = (ms: number) => ({ health: () => ({ broker: 'connecting', brokerSince: new Date(Date.now() - ms).toISOString(), commitsFailingSince: null }) });
      const reports: string[] = [];
      // Half the spread: 15 min 30 s. One gateway 10 s short of it, one 10 s past it.
      for (const [pid, ms] of [
        [1001, 15 * 60_000 + 20_000],
        [1002, 15 * 60_000 + 40_000],
      ]) {
        const service = serviceFor({ NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: '1000000' }, (e) => reports.push(e.message), { pid, random: () => 0.5 })!;
        services.push(service);
        await service.start(awayFor(ms), 'running');
      }
      await waitFor(() => socket.with('WATCHDOG=1').length >= 3, 10_000, 'pings');
      expect(new Set(socket.with('WATCHDOG=1').map((m) => m.fields[0]))).toEqual(new Set(['MAINPID=1001']));
      expect(reports).toEqual([expect.stringMatching(/the broker has been connecting for 15 min 40 s .*longer than the 15 min 30 s tolerated/)]);
    } finally {
      for (const s of services) await s?.stopping();
      await socket.stop();
    }
  });

  it('should say STOPPING=1 once for a stop before READY=1, however often it is asked', async () => {
    const socket = await startNotifySocket();
    try {
      const service = serviceFor({ NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: '1000000' }, () => undefined)!;
      await service.stopping('stopping: the start failed');
      await service.stopping('stopping: the start failed');
      expect(socket.with('STOPPING=1').map((m) => m.fields)).toEqual([[`MAINPID=${process.pid}`, 'STOPPING=1', 'STATUS=stopping: the start failed']]);
      expect(socket.with('READY=1')).toEqual([]);
    } finally {
      await socket.stop();
    }
  });

  it('should report a tolerance that is not a number and use the default', () => {
    const reports: Error[] = [];
    serviceFor({ NOTIFY_SOCKET: '/s', EDGE_INFER_WATCHDOG_BROKER_S: 'long' }, (e) => reports.push(e));
    expect(reports.map((e) => e.message)).toEqual([expect.stringMatching(/EDGE_INFER_WATCHDOG_BROKER_S: expected seconds .*got "long"; the default is used/)]);
  });
});
