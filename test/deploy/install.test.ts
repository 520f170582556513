// install.sh on a real x64 bundle, into throwaway roots: first install, a second run that changes
// nothing, the installed gateway started from `current`, an upgrade, failed upgrades (a truncated
// tarball, a version whose self-check fails, another arch) that leave `current` where it was,
// old versions pruned, uninstall with and without --purge, and bad command lines.
// systemctl is never reached: with --root the script leaves the running system alone.
import { type SpawnSyncReturns, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleName } from '../../devices/raspberry-pi/bundle';
import { sharedBundle } from '../helpers/shared-bundle';

const REPO = path.resolve(__dirname, '..', '..');
const VERSION = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const NEXT = `${VERSION}-next.1`;
const BROKEN = `${VERSION}-broken.1`;

let tmp: string;
/** install.sh as the build wrote it, beside the tarball. */
let installSh: string;
let bundle: string;
let next: string;
let broken: string;
let truncated: string;
/** A folder with a `node` link to this Node, so the units' /usr/bin/node is rewritten. */
let nodeBin: string;

function sh(args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(installSh, args, { encoding: 'utf8', env: { ...process.env, PATH: `${nodeBin}:${process.env.PATH}`, ...env }, timeout: 120_000 });
}

/** Every entry under `root`: type, size, modification time and link target, to compare two runs. */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const s = lstatSync(p);
      out.push(`${path.relative(root, p)} ${s.isSymbolicLink() ? `-> ${readlinkSync(p)}` : s.isDirectory() ? 'dir' : s.size} ${s.mtimeMs} ${s.mode.toString(8)}`);
      // A version's own files are many and checked by its bundle's sha: its folder's entry is enough.
      if (s.isDirectory() && !p.includes(`${path.sep}versions${path.sep}`)) walk(p);
    }
  };
  walk(root);
  return out;
}

/** A copy of the bundle's folder as another version, packed. */
function repack(from: string, version: string, edit: (top: string) => void): string {
  const top = path.join(tmp, 'variants', bundleName(version, 'x64'));
  renameSync(from, top);
  const env = path.join(top, 'devices/raspberry-pi/bundle.env');
  writeFileSync(env, readFileSync(env, 'utf8').replace(/^version=.*$/m, `version=${version}`));
  const pkg = path.join(top, 'package.json');
  writeFileSync(pkg, readFileSync(pkg, 'utf8').replace(`"version": "${VERSION}"`, `"version": "${version}"`));
  edit(top);
  // Not compressed: install.sh lets tar tell, and the test saves half a minute of gzip.
  const out = path.join(tmp, `${bundleName(version, 'x64')}.tar`);
  execFileSync('tar', ['-cf', out, '-C', path.dirname(top), path.basename(top)]);
  return out;
}

/** A tarball holding only the given files: for bundles that install.sh must refuse early. */
function tinyTarball(name: string, files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmp, 'tiny-'));
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    writeFileSync(path.join(dir, f), text);
  }
  const out = path.join(tmp, name);
  execFileSync('tar', ['-czf', out, '-C', dir, ...Object.keys(files).map((f) => f.split('/')[0]).filter((v, i, a) => a.indexOf(v) === i)]);
  return out;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const current = (root: string): string => readlinkSync(path.join(root, 'opt/edge-infer/current'));
const versions = (root: string): string[] => readdirSync(path.join(root, 'opt/edge-infer/versions')).sort();

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-install-test-'));
  nodeBin = path.join(tmp, 'node-bin');
  mkdirSync(nodeBin);
  symlinkSync(process.execPath, path.join(nodeBin, 'node'));
  // Built by buildBundle in the background while the rest of the suite ran (or here and now when
  // this file runs alone).
  const built = await sharedBundle('x64');
  bundle = built.tarball;
  installSh = path.join(built.outDir, 'install.sh');
  // The next version: the same bundle under another version.
  mkdirSync(path.join(tmp, 'variants'));
  execFileSync('tar', ['-xzf', bundle, '-C', path.join(tmp, 'variants')]);
  const unpacked = path.join(tmp, 'variants', bundleName(VERSION, 'x64'));
  next = repack(unpacked, NEXT, () => undefined);
  // A version that does not start: its dist/ is missing, so its self-check fails.
  const brokenTop = bundleName(BROKEN, 'x64');
  broken = tinyTarball('broken.tar.gz', {
    [`${brokenTop}/devices/raspberry-pi/bundle.env`]: `name=edge-infer\nversion=${BROKEN}\narch=x64\n`,
    [`${brokenTop}/devices/raspberry-pi/self-check.js`]: readFileSync(path.join(REPO, 'devices/raspberry-pi/self-check.js'), 'utf8'),
    [`${brokenTop}/bin/edge-infer.js`]: readFileSync(path.join(REPO, 'bin/edge-infer.js'), 'utf8'),
    [`${brokenTop}/package.json`]: JSON.stringify({ name: 'edge-infer', version: BROKEN }),
  });
  rmSync(path.join(tmp, 'variants'), { recursive: true });
  truncated = path.join(tmp, 'truncated.tar.gz');
  // Cut where a copy to the gateway might stop: half way through the gzip stream.
  const whole = readFileSync(bundle);
  writeFileSync(truncated, whole.subarray(0, whole.length >> 1));
}, 25 * 60_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('install.sh into a throwaway root', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(path.join(tmp, 'root-'));
  });

  it('should install the bundle: the version, current, the config, the models, Node-RED\'s folder and the command', () => {
    const r = sh(['--root', root, bundle]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`checking edge-infer ${VERSION} before switching to it`);
    expect(r.stdout).toContain(`install.sh: edge-infer ${VERSION} installed (linux-x64)`);
    expect(current(root)).toBe(`versions/${VERSION}`);
    expect(readFileSync(path.join(root, 'opt/edge-infer/versions', VERSION, '.bundle-sha256'), 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(readFileSync(path.join(root, 'etc/edge-infer/config.yaml'), 'utf8')).toMatch(/^profile: sd$/m);
    expect(readdirSync(path.join(root, 'var/lib/edge-infer/models')).sort()).toEqual(['fault-classifier', 'fault-transformer', 'vibration-anomaly']);
    expect(readlinkSync(path.join(root, 'var/lib/edge-infer/node-red/node_modules/edge-infer'))).toBe('../../../../../opt/edge-infer/current');
    expect(existsSync(path.join(root, 'var/lib/edge-infer/node-red/flows.json'))).toBe(true);
    expect(readFileSync(path.join(root, 'etc/edge-infer/node-red-settings.js'), 'utf8')).toMatch(/credentialSecret: '[0-9a-f]{48}'/);
    expect(readlinkSync(path.join(root, 'usr/local/bin/edge-infer'))).toBe('../../../opt/edge-infer/current/bin/edge-infer.js');
    // The units, with this Node (not /usr/bin/node here) in their ExecStart; systemctl is left alone.
    expect(readFileSync(path.join(root, 'etc/systemd/system/edge-infer.service'), 'utf8')).toContain(`ExecStart=${nodeBin}/node /opt/edge-infer/current/bin/edge-infer.js run --config /etc/edge-infer/config.yaml`);
    expect(readFileSync(path.join(root, 'etc/systemd/system/edge-infer-node-red.service'), 'utf8')).toMatch(new RegExp(`^ExecStart=${nodeBin}/node .* /opt/edge-infer/current/node-red/node_modules/node-red/red\\.js --userDir /var/lib/edge-infer/node-red --settings /etc/edge-infer/node-red-settings\\.js$`, 'm'));
    expect(readFileSync(path.join(root, 'etc/systemd/system/edge-infer.service'), 'utf8')).not.toContain('/usr/bin/node');
    // What the Node-RED unit starts and reads is there.
    expect(existsSync(path.join(root, 'opt/edge-infer/current/node-red/node_modules/node-red/red.js'))).toBe(true);
    expect(existsSync(path.join(root, 'opt/edge-infer/current/devices/raspberry-pi/SERVICE.md'))).toBe(true);
    // The command, through its link, answers with the version.
    expect(execFileSync(path.join(root, 'usr/local/bin/edge-infer'), ['--version'], { encoding: 'utf8' }).trim()).toBe(VERSION);
  });

  it('should change nothing when run again with the same bundle, and say so', () => {
    const before = snapshot(root);
    const r = sh(['--root', root, bundle]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`is edge-infer ${VERSION}, installed already`);
    expect(r.stdout).toContain(`install.sh: edge-infer ${VERSION} is installed and current; nothing changed`);
    expect(snapshot(root)).toEqual(before);
  });

  it('should install a config the installed gateway accepts', () => {
    const loader = path.join(root, 'opt/edge-infer/current/dist/runtime/gateway/config.js');
    const out = execFileSync(process.execPath, ['-e', `require(${JSON.stringify(loader)}).loadGatewayConfig(process.argv[1]).then((c) => console.log(c.profile, c.models, c.storage.path, c.pipelines.map((p) => p.model).join()))`, path.join(root, 'etc/edge-infer/config.yaml')], { encoding: 'utf8' });
    expect(out.trim()).toBe('sd /var/lib/edge-infer/models /var/lib/edge-infer/edge-infer.db vibration-anomaly');
  });

  it('should carry the TensorFlow.js a fine-tune trains with, its WASM backend loading from the pruned bundle', () => {
    const dir = path.join(root, 'opt/edge-infer/current');
    const probe = `const tf = require('@tensorflow/tfjs-core'); require('@tensorflow/tfjs-backend-wasm');
      tf.setBackend('wasm').then((ok) => console.log(ok, tf.getBackend(), Array.from(tf.matMul(tf.ones([2, 3]), tf.ones([3, 1])).dataSync()).join()));`;
    const out = execFileSync(process.execPath, ['-e', probe], { cwd: dir, encoding: 'utf8' });
    expect(out.trim()).toBe('true wasm 3,3');
  });

  it('should have a self-check that fails on a better-sqlite3 that does not load', () => {
    const dir = path.join(root, 'opt/edge-infer/current');
    const addon = path.join(dir, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node');
    const good = readFileSync(addon);
    writeFileSync(addon, 'not a shared object');
    try {
      const r = spawnSync(process.execPath, [path.join(dir, 'devices/raspberry-pi/self-check.js'), dir], { encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^self-check of .*: better-sqlite3 does not load: .*better_sqlite3\.node: (invalid ELF header|file too short)\n$/);
    } finally {
      writeFileSync(addon, good);
    }
    const ok = spawnSync(process.execPath, [path.join(dir, 'devices/raspberry-pi/self-check.js'), dir], { encoding: 'utf8' });
    expect(ok.stdout).toMatch(new RegExp(`: edge-infer ${VERSION.replace(/\./g, '\\.')}, better-sqlite3 and onnxruntime-node load\n$`));
  });

  it('should run the installed gateway from current: results logged with the native backend, and Node-RED from the bundle', async () => {
    const work = mkdtempSync(path.join(tmp, 'run-'));
    const db = path.join(work, 'gateway.db');
    const port = await freePort();
    const child = spawn(process.execPath, [path.join(root, 'opt/edge-infer/current/bin/edge-infer.js'), 'run', '--seconds', '20', '--every', '4', '--speed', '4', '--db', db, '--broker-port', '0', '--http-port', '0', '--node-red-port', String(port)], { cwd: work });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code, out).toBe(0);
    expect(out).toMatch(/vibration-anomaly: plant\/\{device\}\/vibration → vibration-anomaly \[[^\]]+, native\]/);
    expect(out).toMatch(/^\d\d:\d\d:\d\d fan-1 +fault-classifier \S+/m);
    expect(out).toContain(`Node-RED editor: http://127.0.0.1:${port}/`);
    const log = new Database(db, { readonly: true });
    try {
      expect((log.prepare('select count(*) as n from results').get() as { n: number }).n).toBeGreaterThan(20);
    } finally {
      log.close();
    }
  }, 90_000);

  it('should upgrade to a new version: current switches, the previous one stays', () => {
    const r = sh(['--root', root, next]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`current: ${NEXT} (was ${VERSION}, kept in`);
    expect(current(root)).toBe(`versions/${NEXT}`);
    expect(versions(root)).toEqual([VERSION, NEXT].sort());
    expect(execFileSync(path.join(root, 'usr/local/bin/edge-infer'), ['--version'], { encoding: 'utf8' }).trim()).toBe(NEXT);
    // What the user owns stays as it was.
    expect(readFileSync(path.join(root, 'etc/edge-infer/config.yaml'), 'utf8')).toBe(readFileSync(path.join(REPO, 'devices/raspberry-pi/config.yaml'), 'utf8'));
  });

  it('should leave current on the previous version when the tarball is truncated', () => {
    const r = sh(['--root', root, truncated]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^install\.sh: error: .*truncated\.tar\.gz: cannot unpack \(.+\): truncated or corrupt\? Nothing was changed$/m);
    expect(current(root)).toBe(`versions/${NEXT}`);
    expect(versions(root)).toEqual([VERSION, NEXT].sort());
  });

  it('should leave current on the previous version when the new one fails its self-check', () => {
    const r = sh(['--root', root, broken]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^self-check of .*: edge-infer --version failed: Error: Cannot find module '\.\.\/dist\/runtime\/cli\/index\.js'$/m);
    expect(r.stderr).toContain(`install.sh: error: edge-infer ${BROKEN} failed its self-check (above); nothing was changed, ${NEXT} stays current`);
    expect(current(root)).toBe(`versions/${NEXT}`);
    expect(versions(root)).toEqual([VERSION, NEXT].sort());
  });

  it('should refuse a bundle for another arch, a tarball that is not a bundle, and another build of the current version, in one line each', () => {
    const arm = tinyTarball('arm.tar.gz', { [`${bundleName('9.9.9', 'arm64')}/devices/raspberry-pi/bundle.env`]: 'name=edge-infer\nversion=9.9.9\narch=arm64\n' });
    let r = sh(['--root', root, arm]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`install.sh: error: ${arm} is for linux-arm64 and this machine is linux-x64; build the bundle with npm run bundle -- --arch x64\n`);
    const other = tinyTarball('other.tar.gz', { 'photos/cat.txt': 'meow' });
    r = sh(['--root', root, other]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`install.sh: error: ${other}: no devices/raspberry-pi/bundle.env in it; not an edge-infer bundle (make one with npm run bundle)\n`);
    // Another build under the version that is current: its folder cannot be replaced under the running gateway.
    const rebuilt = tinyTarball('rebuilt.tar.gz', { [`${bundleName(NEXT, 'x64')}/devices/raspberry-pi/bundle.env`]: `name=edge-infer\nversion=${NEXT}\narch=x64\n` });
    r = sh(['--root', root, rebuilt]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^install\\.sh: error: edge-infer ${NEXT.replace(/\./g, '\\.')} is installed and current from another bundle \\([0-9a-f]{12}…, this one [0-9a-f]{12}…\\): give the new build a new version, or uninstall first\n$`));
    expect(current(root)).toBe(`versions/${NEXT}`);
    expect(existsSync(path.join(root, 'opt/edge-infer/versions', NEXT, 'bin/edge-infer.js'))).toBe(true);
    expect(readdirSync(path.join(root, 'opt/edge-infer/versions')).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('should go back to an installed version without unpacking it again', () => {
    const r = sh(['--root', root, bundle]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`current: ${VERSION} (was ${NEXT}`);
    expect(r.stdout).not.toContain('unpacking');
    expect(current(root)).toBe(`versions/${VERSION}`);
  });

  it('should keep at most --keep old versions besides the current and the previous one', () => {
    // Two older versions, as earlier installs would have left them.
    const base = path.join(root, 'opt/edge-infer/versions');
    for (const [v, age] of [['0.0.1', 300], ['0.0.2', 200]] as const) {
      mkdirSync(path.join(base, v));
      writeFileSync(path.join(base, v, '.bundle-sha256'), `${v}\n`);
      const t = Date.now() / 1000 - age;
      utimesSync(path.join(base, v, '.bundle-sha256'), t, t);
    }
    const r = sh(['--root', root, '--keep', '2', next]);
    expect(r.status).toBe(0);
    // Current NEXT; old, newest first: VERSION (the previous), 0.0.2, 0.0.1.
    expect(r.stdout).toContain('old version 0.0.1 removed (keeping 2)');
    expect(versions(root)).toEqual(['0.0.2', VERSION, NEXT].sort());
  });

  it('should uninstall the units, the links and the versions, and keep the config and the data', () => {
    writeFileSync(path.join(root, 'var/lib/edge-infer/edge-infer.db'), 'the log');
    const r = sh(['uninstall', '--root', root]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    for (const gone of ['opt/edge-infer', 'usr/local/bin/edge-infer', 'etc/systemd/system/edge-infer.service', 'etc/systemd/system/edge-infer-node-red.service']) expect(existsSync(path.join(root, gone)), gone).toBe(false);
    expect(readFileSync(path.join(root, 'var/lib/edge-infer/edge-infer.db'), 'utf8')).toBe('the log');
    expect(existsSync(path.join(root, 'etc/edge-infer/config.yaml'))).toBe(true);
    expect(r.stdout).toContain('kept (config and data; uninstall --purge removes them)');
    const again = sh(['uninstall', '--root', root]);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain(`edge-infer is not installed in ${root}; nothing to remove`);
  });

  it('should remove the config and the data too with --purge', () => {
    const r = sh(['uninstall', '--purge', '--root', root]);
    expect(r.status).toBe(0);
    expect(existsSync(path.join(root, 'etc/edge-infer'))).toBe(false);
    expect(existsSync(path.join(root, 'var/lib/edge-infer'))).toBe(false);
  });
});

describe('install.sh with a service manager', () => {
  /**
   * A stand-in for systemctl (EDGE_INFER_SYSTEMCTL): it records each call, and the gateway's unit
   * is active unless `current` points at a version listed in the `failing` file, as a gateway
   * that cannot start on that version would be.
   */
  function serviceManager(root: string): { env: Record<string, string>; calls: () => string[]; fail: (version: string) => void } {
    const dir = mkdtempSync(path.join(tmp, 'systemctl-'));
    const script = path.join(dir, 'systemctl');
    writeFileSync(script, `#!/bin/sh
echo "$*" >>"${dir}/calls"
if [ "$1" = is-active ]; then
  v=$(basename "$(readlink "${root}/opt/edge-infer/current")")
  grep -qx "$v" "${dir}/failing" 2>/dev/null && exit 3
fi
exit 0
`);
    chmodSync(script, 0o755);
    return {
      env: { EDGE_INFER_SYSTEMCTL: script, EDGE_INFER_SETTLE_S: '1' },
      calls: () => (existsSync(path.join(dir, 'calls')) ? readFileSync(path.join(dir, 'calls'), 'utf8').trim().split('\n') : []),
      fail: (version) => writeFileSync(path.join(dir, 'failing'), `${version}\n`),
    };
  }

  it('should reload, enable and restart the units, and check that the gateway stays up', () => {
    const root = mkdtempSync(path.join(tmp, 'root-systemd-'));
    const systemd = serviceManager(root);
    const r = sh(['--root', root, bundle], systemd.env);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(systemd.calls()).toEqual(['daemon-reload', 'enable --quiet edge-infer-node-red.service', 'enable --quiet edge-infer.service', 'restart edge-infer.service', 'is-active --quiet edge-infer.service', 'is-active --quiet edge-infer.service', 'restart edge-infer-node-red.service']);
    expect(r.stdout).toContain(`edge-infer.service is running ${VERSION}`);
  });

  it('should switch back and restart the previous version when the gateway does not stay up on the new one', () => {
    const root = mkdtempSync(path.join(tmp, 'root-rollback-'));
    const systemd = serviceManager(root);
    expect(sh(['--root', root, bundle], systemd.env).status).toBe(0);
    systemd.fail(NEXT);
    const before = systemd.calls().length;
    const r = sh(['--root', root, next], systemd.env);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`install.sh: error: edge-infer.service did not stay up on ${NEXT} (journalctl -u edge-infer says why): switched back to ${VERSION} and restarted it; ${NEXT} stays in ${root}/opt/edge-infer/versions\n`);
    expect(current(root)).toBe(`versions/${VERSION}`);
    expect(versions(root)).toEqual([VERSION, NEXT].sort());
    expect(systemd.calls().slice(before)).toEqual(['daemon-reload', 'enable --quiet edge-infer-node-red.service', 'enable --quiet edge-infer.service', 'restart edge-infer.service', 'is-active --quiet edge-infer.service', 'restart edge-infer.service']);
  });

  it('should disable and stop the units before removing them on uninstall', () => {
    const root = mkdtempSync(path.join(tmp, 'root-remove-'));
    const systemd = serviceManager(root);
    expect(sh(['--root', root, '--no-start', bundle], systemd.env).status).toBe(0);
    expect(systemd.calls()).toEqual([]);
    expect(sh(['uninstall', '--root', root], systemd.env).status).toBe(0);
    expect(systemd.calls()).toEqual(['disable --now --quiet edge-infer.service', 'disable --now --quiet edge-infer-node-red.service', 'daemon-reload']);
  });
});

describe('install.sh into a root with its own passwd', () => {
  it('should create the system user there (no login shell, no home) and give it the data', () => {
    const root = mkdtempSync(path.join(tmp, 'root-users-'));
    mkdirSync(path.join(root, 'etc'));
    writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\n');
    writeFileSync(path.join(root, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n');
    writeFileSync(path.join(root, 'etc/gshadow'), 'root:*::\n');
    const r = sh(['--root', root, '--no-start', bundle]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const line = readFileSync(path.join(root, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith('edge-infer:'));
    expect(line).toMatch(/^edge-infer:x:(\d+):(\d+)::\/nonexistent:\/usr\/sbin\/nologin$/);
    const uid = Number(line!.split(':')[2]);
    expect(lstatSync(path.join(root, 'var/lib/edge-infer/node-red/flows.json')).uid).toBe(uid);
    expect(lstatSync(path.join(root, 'etc/edge-infer/config.yaml')).gid).toBe(Number(line!.split(':')[3]));
    expect(r.stdout).toContain('--no-start: the service is not (re)started');
    const purge = sh(['uninstall', '--purge', '--root', root]);
    expect(purge.status).toBe(0);
    expect(readFileSync(path.join(root, 'etc/passwd'), 'utf8')).not.toContain('edge-infer:');
  });
});

describe('install.sh command line', () => {
  it.each([
    [[], /^install\.sh: error: no bundle given \(usage: install\.sh \[--root DIR\]/],
    [['--bogus', 'b.tar.gz'], /^install\.sh: error: --bogus: unknown option \(usage:/],
    [['--root'], /^install\.sh: error: --root: expected a folder \(usage:/],
    [['--keep', 'many', 'b.tar.gz'], /^install\.sh: error: --keep: expected a whole number of old versions to keep, got 'many'/],
    [['a.tar.gz', 'b.tar.gz'], /^install\.sh: error: b\.tar\.gz: one bundle at a time \(already given: a\.tar\.gz\)/],
    [['uninstall', 'b.tar.gz'], /^install\.sh: error: b\.tar\.gz: uninstall takes no bundle/],
    [['uninstall', '--no-start'], /^install\.sh: error: --no-start: only for an install/],
    [['--purge', 'b.tar.gz'], /^install\.sh: error: --purge: only for uninstall/],
  ])('should refuse %j with exit code 2 and one line', (args, message) => {
    const r = sh(args as string[]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
  });

  it('should name a bundle or a root that is not there, in one line', () => {
    const root = mkdtempSync(path.join(tmp, 'root-args-'));
    let r = sh(['--root', root, path.join(tmp, 'missing.tar.gz')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`install.sh: error: ${path.join(tmp, 'missing.tar.gz')}: no such file\n`);
    r = sh(['--root', path.join(tmp, 'no-root'), bundle]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`install.sh: error: --root ${path.join(tmp, 'no-root')}: no such folder\n`);
  });

  it('should refuse a Node older than 20, saying which one it found', () => {
    const old = path.join(tmp, 'old-node');
    mkdirSync(old, { recursive: true });
    writeFileSync(path.join(old, 'node'), '#!/bin/sh\ncase "$1" in -p) echo 18 ;; --version) echo v18.20.4 ;; esac\n');
    chmodSync(path.join(old, 'node'), 0o755);
    const root = mkdtempSync(path.join(tmp, 'root-old-'));
    const r = spawnSync(installSh, ['--root', root, bundle], { encoding: 'utf8', env: { ...process.env, PATH: `${old}:${process.env.PATH}` } });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`install.sh: error: Node.js 20 or newer is needed; ${old}/node is v18.20.4\n`);
    expect(existsSync(path.join(root, 'opt'))).toBe(false);
  });
});
