// The gateway over a long run at a steady rate: is its resident memory flat? `edge-infer run` runs
// in a child process on one Mosquitto with both vibration models; this process publishes a
// steady stream of vibration blocks and reads the child's resident size from /proc every few
// seconds. The first minute is warm-up (JIT, heap growth to its working size, SQLite's page
// cache filling), so the run is judged from minute 1 to the end.
//
//   SOAK_MINUTES (default 10)  how long to publish
//   SOAK_RATE    (default 400) messages per second (512 samples × 3 channels each; 400/s is
//                              40 machines' 5,120 Hz vibration in real time)
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { startMosquitto } from '../helpers/brokers';
import { client, spawnGateway, tempDir, testConfig, vibrationBlock, waitFor } from '../helpers/gateway';
import { fmt, int, machine, table } from './table';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const RATE = Number(process.env.SOAK_RATE ?? 400);
const DEVICES = Math.max(1, Math.round(RATE / 10)); // each device sends 10 blocks a second, as a real one
const SAMPLE_EVERY_MS = 5000;
const WARM_UP_MS = 60_000;

/** Resident set size of a process, in bytes (Linux). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

async function main(): Promise<void> {
  if (!Number.isFinite(MINUTES) || MINUTES <= 1 || !Number.isFinite(RATE) || RATE <= 0) throw new Error('SOAK_MINUTES must be > 1 and SOAK_RATE > 0');
  const broker = await startMosquitto();
  const dir = tempDir('edge-infer-soak-');
  const config = testConfig(broker.url, { storage: { path: path.join(dir, 'log.db') }, scheduler: { maxBatch: 64, maxWaitMs: 20, maxQueue: 4096, policy: 'pause' } }, { recordEvery: 0 });
  const gw = spawnGateway(config, path.join(dir, 'gateway.json'));
  const pub = await client(broker.url, { clientId: 'soak-publisher' });
  try {
    await waitFor(() => gw.output().includes('/health') || gw.proc.exitCode !== null, 60_000, 'the gateway to start');
    if (gw.proc.exitCode !== null) throw new Error(`the gateway exited: ${gw.output()}`);
    const pid = gw.proc.pid!;
    const samples: Array<{ t: number; rss: number }> = [];
    let sent = 0;
    let acked = 0;
    const t0 = Date.now();
    const end = t0 + MINUTES * 60_000;
    const sampler = setInterval(() => samples.push({ t: Date.now() - t0, rss: rssOf(pid) }), SAMPLE_EVERY_MS);
    // Steady pacing: every 100 ms, one block from a tenth of the devices, in turn.
    let seq = 0;
    while (Date.now() < end) {
      const due = t0 + (sent / RATE) * 1000;
      const wait = due - Date.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const device = sent % DEVICES;
      if (device === 0 && sent > 0) seq++;
      pub.publish(`plant/m${device}/vibration`, vibrationBlock(seq, 512, 1_700_000_000_000 + device), { qos: 1 }, () => acked++);
      sent++;
      if (sent - acked > 2000) await waitFor(() => sent - acked <= 1000, 60_000, 'the broker to acknowledge');
    }
    clearInterval(sampler);
    await waitFor(() => acked === sent, 60_000, 'the last acknowledgements');
    if (gw.proc.exitCode !== null) throw new Error(`the gateway exited during the run: ${gw.output()}`);

    const steady = samples.filter((s) => s.t >= WARM_UP_MS);
    const first = steady[0];
    const last = steady[steady.length - 1];
    const peak = Math.max(...steady.map((s) => s.rss));
    const low = Math.min(...steady.map((s) => s.rss));
    const perMinute = slope(
      steady.map((s) => s.t / 60_000),
      steady.map((s) => s.rss),
    );
    const mb = (b: number): string => fmt(b / 2 ** 20, 1);
    gw.proc.kill('SIGTERM');
    await gw.exited;
    const db = new Database(config.storage.path, { readonly: true });
    const count = (t: string): number => (db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n;
    const results = count('results');
    const deadLetters = count('dead_letters');
    db.close();

    console.log(`Resident memory of \`edge-infer run\` (both vibration models, fp32, WASM) over ${MINUTES} minutes at ${int(RATE)} messages/s from ${DEVICES} devices (goal: flat within 5 % after warm-up)\n`);
    console.log(
      table(
        ['from minute 1 to the end', 'value'],
        [
          ['RSS at minute 1, MB', mb(first.rss)],
          ['RSS at the end, MB', mb(last.rss)],
          ['end / minute 1', fmt(last.rss / first.rss, 3)],
          ['peak / low', fmt(peak / low, 3)],
          ['trend, MB per minute (least squares)', fmt(perMinute / 2 ** 20, 2)],
        ],
      ),
    );
    console.log(`\nMessages published ${int(sent)}, results logged ${int(results)}, dead letters ${deadLetters}; RSS sampled every ${SAMPLE_EVERY_MS / 1000} s.`);
    console.log(`${machine()}`);
  } finally {
    pub.end(true);
    if (gw.proc.exitCode === null) gw.proc.kill('SIGKILL');
    await broker.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
