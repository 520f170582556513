// The Raspberry Pi's systemd units, checked by the real systemd-analyze (Debian 12's systemd
// 252): `verify` finds nothing to say about them, and `security --offline=true` rates their
// exposure 3.0 or less. They are checked as the install script installs them: /usr/bin/node
// rewritten to where node is, when it is elsewhere.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../runtime/paths';
import { tempDir } from '../helpers/gateway';

const UNITS = path.join(packageRoot(), 'devices', 'raspberry-pi', 'systemd');
const ANALYZE = '/usr/bin/systemd-analyze';

/** The unit's text, /usr/bin/node rewritten to this node, written to a temp folder under its own name. */
function installed(unit: string, edit: (text: string) => string = (t) => t): string {
  const text = edit(readFileSync(path.join(UNITS, unit), 'utf8').replaceAll('/usr/bin/node', process.execPath));
  const file = path.join(tempDir('edge-infer-units-'), unit);
  writeFileSync(file, text);
  return file;
}

function analyze(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(ANALYZE, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${ANALYZE}: ${r.error.message} (the unit tests need Debian's systemd: apt-get install systemd)`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** The "Overall exposure level" systemd-analyze security gives the unit. */
function exposure(file: string): number {
  const r = analyze(['security', '--offline=true', '--no-pager', file]);
  const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.out);
  if (!m) throw new Error(`no exposure level in systemd-analyze's answer: ${r.out.slice(-500)}`);
  return Number(m[1]);
}

/** The unit's settings as NAME → values, comments and sections left out. */
function settings(unit: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of readFileSync(path.join(UNITS, unit), 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) out.set(m[1], [...(out.get(m[1]) ?? []), m[2]]);
  }
  return out;
}

describe('the systemd units', () => {
  for (const unit of ['edge-infer.service', 'edge-infer-node-red.service']) {
    it(`${unit}: should pass systemd-analyze verify with nothing to say`, () => {
      const r = analyze(['verify', installed(unit)]);
      expect(r.out).toBe('');
      expect(r.status).toBe(0);
    });

    it(`${unit}: should be rated an exposure of 3.0 or less by systemd-analyze security`, () => {
      expect(exposure(installed(unit))).toBeLessThanOrEqual(3.0);
    });

    it(`${unit}: should keep V8's JIT possible (no MemoryDenyWriteExecute) and the network (no PrivateNetwork), and bound memory`, () => {
      const s = settings(unit);
      expect(s.get('MemoryDenyWriteExecute')).toEqual(['no']);
      expect(s.has('PrivateNetwork')).toBe(false);
      expect(s.get('RestrictAddressFamilies')).toEqual(['AF_INET AF_INET6 AF_UNIX']);
      expect(s.get('MemoryMax')).toHaveLength(1);
      expect(s.get('User')).toEqual(['edge-infer']);
      expect(s.get('ProtectSystem')).toEqual(['strict']);
      expect(s.get('Restart')).toEqual(['on-failure']);
    });
  }

  it('edge-infer.service: should run the gateway as the install lays it out, as a notify service with a watchdog', () => {
    const s = settings('edge-infer.service');
    expect(s.get('ExecStart')).toEqual(['/usr/bin/node /opt/edge-infer/current/bin/edge-infer.js run --config /etc/edge-infer/config.yaml']);
    expect(s.get('Type')).toEqual(['notify']);
    // The notifications come from systemd-notify, a child of the gateway.
    expect(s.get('NotifyAccess')).toEqual(['all']);
    expect(s.get('WatchdogSec')).toEqual(['30s']);
    expect(s.get('StateDirectory')).toEqual(['edge-infer']);
  });

  it('should tell a unit that does not verify, and rate one without hardening above 3.0 (the checks above can fail)', () => {
    const missing = installed('edge-infer.service', (t) => t.replaceAll(process.execPath, '/nonexistent/node'));
    const r = analyze(['verify', missing]);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/\/nonexistent\/node/);
    const bare = installed('edge-infer.service', (t) => t.split('\n').filter((l) => /^(\[|Description|ExecStart|Type|User|Group)/.test(l)).join('\n'));
    expect(exposure(bare)).toBeGreaterThan(3.0);
  });
});
