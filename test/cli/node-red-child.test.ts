// Node-RED as a child process: found, started, its lines read, stopped (SIGTERM, then SIGKILL),
// its unexpected end reported. Stand-in "red.js" scripts are real processes that behave as a
// Node-RED that hangs at close or dies would.
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NodeRedChild, portFree, resolveNodeRed } from '../../runtime/cli/node-red-child';
import { freePort } from '../helpers/brokers';
import { tempDir, waitFor } from '../helpers/gateway';

function script(body: string): string {
  const file = path.join(tempDir('edge-infer-nr-child-'), 'red.js');
  writeFileSync(file, body);
  return file;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('resolveNodeRed', () => {
  it('should find the installed node-red, and nothing where none is installed', () => {
    expect(resolveNodeRed()).toMatch(/node-red[/\\]red\.js$/);
    expect(resolveNodeRed(tempDir('edge-infer-no-nr-'))).toBeUndefined();
  });
});

describe('portFree', () => {
  it('should say whether a port can be listened on', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const taken = (server.address() as net.AddressInfo).port;
    try {
      expect(await portFree(taken)).toBe(false);
    } finally {
      server.close();
    }
    expect(await portFree(await freePort())).toBe(true);
  });
});

describe('NodeRedChild', () => {
  const quiet = { onLine: () => undefined, onUnexpectedExit: () => undefined };

  it('should refuse a bad port and a red.js that is not there, naming them', () => {
    const userDir = tempDir();
    expect(() => NodeRedChild.start({ redJs: script(''), userDir, port: 0, ...quiet })).toThrow(/Node-RED port: expected a whole number from 1 to 65535, got 0/);
    expect(() => NodeRedChild.start({ redJs: path.join(userDir, 'nope.js'), userDir, port: 1880, ...quiet })).toThrow(/nope\.js: Node-RED's red\.js is not there/);
  });

  it('should pass its lines on, and report an end it was not asked for with the last line', async () => {
    const lines: string[] = [];
    const ends: string[] = [];
    const red = script("console.log('starting'); console.error('port in use'); setTimeout(() => process.exit(3), 50);");
    const child = NodeRedChild.start({ redJs: red, userDir: tempDir(), port: 1880, onLine: (l, err) => lines.push(`${err ? 'err' : 'out'} ${l}`), onUnexpectedExit: (how, last) => ends.push(`${how}: ${last}`) });
    await child.exited;
    expect(lines).toEqual(['out starting', 'err port in use']);
    expect(ends).toEqual(['exit code 3: port in use']);
  });

  it('should give it its user folder, port and environment', async () => {
    const lines: string[] = [];
    const userDir = tempDir();
    const red = script("console.log(JSON.stringify({ argv: process.argv.slice(2), cwd: process.cwd(), env: process.env.EDGE_INFER_X }));");
    const child = NodeRedChild.start({ redJs: red, userDir, port: 1999, env: { EDGE_INFER_X: 'y' }, onLine: (l) => lines.push(l), onUnexpectedExit: () => undefined });
    await child.exited;
    expect(JSON.parse(lines[0]!)).toEqual({ argv: ['--userDir', userDir, '--port', '1999'], cwd: userDir, env: 'y' });
  });

  it('should stop it with SIGTERM without reporting the end', async () => {
    const ends: string[] = [];
    const red = script("console.log('up'); process.on('SIGTERM', () => { console.log('closing'); setTimeout(() => process.exit(0), 100); }); setInterval(() => undefined, 1000);");
    const lines: string[] = [];
    const child = NodeRedChild.start({ redJs: red, userDir: tempDir(), port: 1880, onLine: (l) => lines.push(l), onUnexpectedExit: (how) => ends.push(how) });
    await waitFor(() => lines.includes('up'), 10_000, 'the child to start');
    await child.stop(5000);
    expect(child.running).toBe(false);
    expect(lines).toContain('closing');
    expect(ends).toEqual([]);
  });

  it('should kill one that does not end within the bound after SIGTERM', async () => {
    const red = script("console.log('up'); process.on('SIGTERM', () => console.log('ignoring SIGTERM')); setInterval(() => undefined, 1000);");
    const lines: string[] = [];
    const child = NodeRedChild.start({ redJs: red, userDir: tempDir(), port: 1880, onLine: (l) => lines.push(l), onUnexpectedExit: () => undefined });
    await waitFor(() => lines.includes('up'), 10_000, 'the child to start');
    const pid = child.pid!;
    const t0 = Date.now();
    await child.stop(300);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(lines).toContain('ignoring SIGTERM');
    expect(alive(pid)).toBe(false);
  });

  it('should say the editor never answered when the child ends first', async () => {
    const child = NodeRedChild.start({ redJs: script('setTimeout(() => process.exit(1), 200);'), userDir: tempDir(), port: await freePort(), ...quiet });
    expect(await child.answering(10_000)).toBe(false);
  });

  it('should say the editor answers once its port serves HTTP', async () => {
    const port = await freePort();
    const red = script(`require('node:http').createServer((q, s) => s.end('editor')).listen(${port}, '127.0.0.1');`);
    const child = NodeRedChild.start({ redJs: red, userDir: tempDir(), port, ...quiet });
    try {
      expect(await child.answering(10_000)).toBe(true);
      expect(child.url).toBe(`http://127.0.0.1:${port}/`);
    } finally {
      await child.stop(2000);
    }
  });
});
