// Model hot-swap under a steady stream, side by side in one run: latency from the publish of a
// window's last message to the commit of its result while fault-classifier is swapped between
// int8 and fp32 back to back (MQTT updates: stage, load, agreement check on 20 recorded windows,
// swap, probation of one batch, unload) against the same stream with no swap, in alternating
// phases; and the windows lost or logged twice across all the swaps. Updates in the binary form
// (a JSON header line, then the model's bytes).
import { copyFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { Gateway } from '../../runtime/gateway/gateway';
import { bundledModelsDir } from '../../runtime/paths';
import { quantile } from '../../runtime/stats';
import type { CommitUnit } from '../../runtime/store';
import { contentHash, contentOf } from '../../runtime/stream/identity';
import { DEBIAN_AUTOSAVE_S, startMosquitto } from '../helpers/brokers';
import { publish, tempDir, testConfig, waitFor } from '../helpers/gateway';
import { exampleVariant, updatePayload } from '../helpers/hotswap';
import { Streamer } from '../helpers/streamer';
import { fmt, int, machine, table } from './table';

const MODEL = 'fault-classifier';
const PHASE_S = 10;
const PAIRS = 4;
const DEVICES = ['m1', 'm2', 'm3', 'm4'];

async function main(): Promise<void> {
  // Saving its state as Debian's mosquitto ships (every 1800 s): the test broker's save every
  // second stops its deliveries for tens of milliseconds (BENCHMARKS.md, "Gateway").
  const broker = await startMosquitto({ autosaveS: DEBIAN_AUTOSAVE_S });
  const modelsDir = tempDir('edge-infer-bench-hotswap-');
  mkdirSync(path.join(modelsDir, MODEL));
  for (const f of [`${MODEL}.fp32.onnx`, `${MODEL}.fp32.model.json`]) copyFileSync(path.join(bundledModelsDir(), MODEL, f), path.join(modelsDir, MODEL, f));
  const config = testConfig(broker.url, { models: modelsDir, modelUpdates: { watch: false, agreement: { windows: 20, minWindows: 10 }, healthBatches: 1 } }, { recordEvery: 1 });
  config.pipelines = config.pipelines.filter((p) => p.name === 'classifier');
  // The streams are dated 2023: retention by age would empty the recorded windows the check reads.
  config.storage.retention = {};
  const gw = new Gateway(config, (err) => console.error(String(err)));
  const sentAt = new Map<string, number>();
  let phase = 'warm-up';
  const samples = new Map<string, number[]>();
  gw.on('logged', (unit: CommitUnit) => {
    const now = Date.now();
    for (const r of unit.results ?? []) {
      const t = sentAt.get(contentOf(r.messageKeys[r.messageKeys.length - 1]));
      if (t === undefined) continue;
      const list = samples.get(phase) ?? [];
      list.push(now - t);
      samples.set(phase, list);
    }
  });
  await gw.start();
  const pub = mqtt.connect(broker.url, { protocolVersion: 4 });
  await new Promise<void>((r) => pub.once('connect', () => r()));
  const streamer = new Streamer(pub, DEVICES, 10, (topic, payload, at) => sentAt.set(contentHash(topic, payload), at));
  const swaps = new Map<string, number>();
  try {
    streamer.start();
    await waitFor(() => gw.log.windows(MODEL, { limit: 20 }).length >= 20, 30_000, 'recorded windows');
    await new Promise((r) => setTimeout(r, 2000));
    // Encoded once: the publisher shares the gateway's process, and must not charge it for that.
    const payloads = [updatePayload(exampleVariant(MODEL, 'int8')), updatePayload(exampleVariant(MODEL, 'fp32'))];
    const slot = gw.pipelines[0].slot;
    let n = 0;
    for (let k = 1; k <= PAIRS; k++) {
      phase = `steady ${k}`;
      await new Promise((r) => setTimeout(r, PHASE_S * 1000));
      phase = `swapping ${k}`;
      const end = Date.now() + PHASE_S * 1000;
      let count = 0;
      while (Date.now() < end) {
        const before = gw.log.modelUpdates().list({ limit: 1 })[0]?.id ?? 0;
        await publish(pub, `edge-infer/models/${MODEL}/update`, payloads[n % 2]);
        await waitFor(() => gw.log.modelUpdates().list({ limit: 10 }).some((u) => u.id > before && u.state !== 'staged' && u.state !== 'checked') && !slot.swapping, 30_000, 'a swap');
        const last = gw.log.modelUpdates().list({ limit: 1 })[0];
        if (last.state !== 'active') throw new Error(`swap ${n + 1} ended ${last.state}: ${last.reason}`);
        n++;
        count++;
      }
      swaps.set(phase, count);
    }
    phase = 'drain';
    await streamer.stop();
    const expected = streamer.expected();
    const total = [...expected.values()].reduce((a, b) => a + b, 0);
    await waitFor(() => gw.log.counts().results >= total, 60_000, 'every window logged');
    await new Promise((r) => setTimeout(r, 500));
    const db = new Database(config.storage.path, { readonly: true });
    const doubled = (db.prepare('SELECT COUNT(*) AS n FROM (SELECT 1 FROM results GROUP BY device, window_start_ms HAVING COUNT(*) > 1)').get() as { n: number }).n;
    const logged = (db.prepare('SELECT COUNT(DISTINCT device || window_start_ms) AS n FROM results').get() as { n: number }).n;
    db.close();

    const rows: Array<Array<string | number>> = [];
    const p99 = (ph: string) => quantile(samples.get(ph) ?? [0], 0.99);
    for (let k = 1; k <= PAIRS; k++) {
      for (const ph of [`steady ${k}`, `swapping ${k}`]) {
        const s = samples.get(ph) ?? [];
        rows.push([ph, swaps.get(ph) ?? 0, s.length, fmt(quantile(s, 0.5), 1), fmt(quantile(s, 0.99), 1), fmt(Math.max(...s), 1), ph.startsWith('swapping') ? fmt(p99(ph) / p99(`steady ${k}`)) : '1.00']);
      }
    }
    const all = (prefix: string) => [...samples].filter(([ph]) => ph.startsWith(prefix)).flatMap(([, s]) => s);
    const steadyAll = quantile(all('steady'), 0.99);
    const swapAll = quantile(all('swapping'), 0.99);
    console.log(`Publish → commit latency of fault-classifier windows (${DEVICES.length} devices, one 512-sample block each every ~10 ms), ${PHASE_S} s phases, swapping int8 ↔ fp32 back to back over MQTT vs no swap (goal: p99 while swapping ≤ 2× steady; 0 windows lost)\n`);
    console.log(table(['phase', 'swaps', 'windows', 'p50 ms', 'p99 ms', 'max ms', 'p99 vs steady'], rows));
    console.log(`\nAll phases: p99 steady ${fmt(steadyAll, 1)} ms, while swapping ${fmt(swapAll, 1)} ms: ${fmt(swapAll / steadyAll)}×. ${n} swaps; windows published ${int(total)}, logged ${int(logged)}, lost ${int(total - logged)}, logged twice ${doubled}.`);
    console.log(`\n${machine()}`);
  } finally {
    pub.end(true);
    await gw.stop();
    await broker.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
