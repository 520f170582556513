// Install benchmark, measured in one run: the time to build the bundle per arch, its size
// (tarball and unpacked), and the time to install it with install.sh into a throwaway root with
// the network cut off (goal: ≤ 60 s), then again (nothing to do), then an upgrade.
// Run: npm run build && npx tsx test/bench/install.bench.ts
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ARCHES, buildBundle, bundleName } from '../../devices/raspberry-pi/bundle';
import { fmt, machine, table } from './table';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-install-bench-'));
const MiB = 2 ** 20;
const seconds = (since: bigint): number => Number(process.hrtime.bigint() - since) / 1e9;

/** Unpacked size of a tarball's contents, from its listing. */
function unpackedBytes(tarball: string): number {
  const out = execFileSync('tar', ['-tvzf', tarball], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return out.split('\n').reduce((sum, line) => sum + (Number(line.split(/\s+/)[2]) || 0), 0);
}

/** install.sh with the network cut off (a new network namespace), so the install cannot download anything. */
function install(installSh: string, args: string[]): number {
  const started = process.hrtime.bigint();
  const r = spawnSync('unshare', ['-n', installSh, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`install.sh ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return seconds(started);
}

async function main(): Promise<void> {
  const rows: Array<Array<string | number>> = [];
  const built: Record<string, string> = {};
  for (const arch of ARCHES) {
    const started = process.hrtime.bigint();
    const r = await buildBundle({ arch, outDir: path.join(tmp, 'out') });
    const s = seconds(started);
    built[arch] = r.tarball;
    rows.push([`build, linux-${arch}`, fmt(s, 0), `${fmt(statSync(r.tarball).size / MiB, 1)} MiB tarball, ${fmt(unpackedBytes(r.tarball) / MiB, 0)} MiB unpacked`]);
  }
  const here = process.arch === 'arm64' ? 'arm64' : 'x64';
  const installSh = path.join(tmp, 'out', 'install.sh');
  const root = mkdtempSync(path.join(tmp, 'root-'));
  rows.push([`install, linux-${here}, offline, fresh root`, fmt(install(installSh, ['--root', root, built[here]]), 1), 'unpack, self-check, switch (goal ≤ 60 s)']);
  rows.push(['install again, same bundle', fmt(install(installSh, ['--root', root, built[here]]), 1), 'recognised by its sha256: nothing changed']);
  // The next version: the same bundle with another version in it.
  const variants = path.join(tmp, 'variants');
  mkdirSync(variants);
  execFileSync('tar', ['-xzf', built[here], '-C', variants]);
  const version = (JSON.parse(readFileSync(path.join(variants, path.basename(built[here], '.tar.gz'), 'package.json'), 'utf8')) as { version: string }).version;
  const next = `${version}-bench.1`;
  const top = path.join(variants, bundleName(next, here));
  execFileSync('mv', [path.join(variants, bundleName(version, here)), top]);
  const env = path.join(top, 'devices/raspberry-pi/bundle.env');
  writeFileSync(env, readFileSync(env, 'utf8').replace(/^version=.*$/m, `version=${next}`));
  const nextTarball = path.join(tmp, `${bundleName(next, here)}.tar.gz`);
  execFileSync('tar', ['-czf', nextTarball, '-C', variants, path.basename(top)]);
  rows.push([`upgrade to ${next}`, fmt(install(installSh, ['--root', root, nextTarball]), 1), 'the previous version stays']);
  console.log(table(['step', 'seconds', 'what'], rows));
  console.log(`\n${machine()}; ${os.loadavg()[0].toFixed(1)} load average at the end (the machine is shared)`);
}

main()
  .catch((err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  })
  .finally(() => rmSync(tmp, { recursive: true, force: true }));
