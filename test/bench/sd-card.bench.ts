// What the gateway writes to its disk, per profile, on the demo plant (six machines, three models,
// `npm start`'s pipelines): bytes the process sent to storage (`write_bytes` in /proc/<pid>/io)
// against what the log grew by (its used pages), over the same steady stretch of each run, and
// commits a second. One run per profile, one after another, in one process of this script.
//
//   npx tsx test/bench/sd-card.bench.ts [--seconds 60]
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { embeddedDefaults } from '../../runtime/gateway/defaults';
import { fmt, int, machine, table } from './table';

const ROOT = path.join(__dirname, '..', '..');
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = arg('seconds', 60);
/** The stretch measured starts once the gateway has run this long (start-up and first windows left out). */
const WARM_S = 10;

interface Profile {
  name: string;
  profile: 'default' | 'sd';
  batchMs?: number;
}

const PROFILES: Profile[] = [
  { name: "default (a commit every 5 ms, every message journaled)", profile: 'default' },
  { name: "sd (one commit a second)", profile: 'sd' },
  { name: "sd, storage.batchMs 5000", profile: 'sd', batchMs: 5000 },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function writeBytes(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return Number(/^write_bytes: (\d+)/m.exec(io)![1]);
}

/** The log's used bytes (pages in use, not the free list) and its results, read beside the gateway. */
function logged(file: string): { bytes: number; results: number } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const pages = db.pragma('page_count', { simple: true }) as number;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    return { bytes: (pages - free) * pageSize, results: db.prepare('SELECT COUNT(*) FROM results').pluck().get() as number };
  } finally {
    db.close();
  }
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)![1]);
}

async function measure(p: Profile): Promise<string[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-sd-bench-'));
  const db = path.join(dir, 'log.db');
  // npm start's gateway, as a config file: the same pipelines, plant and broker, this profile.
  const base = embeddedDefaults({ brokerPort: 0, httpPort: 0, db });
  const config = { ...base, profile: p.profile, storage: { ...base.storage, batchMs: p.batchMs } };
  const file = path.join(dir, 'gateway.json');
  writeFileSync(file, JSON.stringify(config));
  const child: ChildProcess = spawn(process.execPath, ['--max-semi-space-size=4', path.join(ROOT, 'bin', 'edge-infer.js'), 'run', '--config', file, '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  try {
    let port = 0;
    for (let i = 0; i < 600 && !port; i++) {
      port = Number(/http:\/\/127\.0\.0\.1:(\d+)\/health/.exec(out)?.[1] ?? 0);
      if (!port) await sleep(100);
    }
    if (!port) throw new Error(`the gateway did not start:\n${out}`);
    await sleep(WARM_S * 1000);
    const w0 = writeBytes(child.pid!);
    const l0 = logged(db);
    const c0 = await metric(port, 'edge_infer_log_commits');
    const t0 = Date.now();
    await sleep(SECONDS * 1000);
    const w1 = writeBytes(child.pid!);
    const l1 = logged(db);
    const c1 = await metric(port, 'edge_infer_log_commits');
    const s = (Date.now() - t0) / 1000;
    const written = w1 - w0;
    const grown = l1.bytes - l0.bytes;
    const results = l1.results - l0.results;
    return [p.name, fmt((c1 - c0) / s, 1), int(written / s / 1024), int(grown / s / 1024), fmt(written / grown, 1), int(written / results), fmt((written / s) * 86_400 / 1e9, 1), int(results / s)];
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const rows: string[][] = [];
  for (const p of PROFILES) rows.push(await measure(p));
  console.log(table(['profile', 'commits/s', 'written kB/s', 'log grew kB/s', 'written ÷ grown', 'written B per result', 'GB a day', 'results/s'], rows));
  console.log(`\nDemo plant (npm start's pipelines), ${SECONDS} s measured after ${WARM_S} s of each run; written: write_bytes of /proc/<pid>/io; grown: the log's used pages. ${machine()}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
