// `edge-infer fine-tune`: each way it cannot start says so in one line, before any training.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { profileById } from '../../devices';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { Gateway } from '../../runtime/gateway/gateway';
import { TaughtWindows } from '../../runtime/finetune';
import { parseCard } from '../../runtime/model';
import { bundledModelsDir } from '../../runtime/paths';
import { type TestBroker, freePort, startAedes } from '../helpers/brokers';
import { VIBRATION_DECODER } from '../helpers/gateway';
import { logWithTeachIn } from '../helpers/machine-windows';
import { cli, expectOneLine } from '../helpers/cli';
import { dbPath, openStore, tempDir } from '../store/helpers';

/** A log with an active baseline of press-1 whose teach-in recorded `windows` windows. */
async function logWith(windows: number): Promise<string> {
  const file = dbPath();
  await openStore({ path: file }).close();
  const db = new Database(file);
  const id = Number(db.prepare("INSERT INTO baselines (device, model, state, started_ms, quantile, margin, threshold) VALUES ('press-1', 'vibration-anomaly', 'active', 0, 0.999, 1, 5)").run().lastInsertRowid);
  const r = new TaughtWindows(db);
  for (let i = 0; i < windows; i++) r.add(id, i * 200, new Float32Array(192).fill(1));
  r.flush();
  db.close();
  return file;
}

const card = parseCard(JSON.parse(readFileSync(path.join(bundledModelsDir(), 'vibration-anomaly', 'vibration-anomaly.fp32.model.json'), 'utf8')), 'card');

const run = (log: string, ...more: string[]): ReturnType<typeof cli> => cli('fine-tune', '--log', log, '--device', 'press-1', '--model', 'vibration-anomaly', '--out', path.join(tempDir(), 'out'), ...more);

describe('edge-infer fine-tune', () => {
  it('should fine-tune on the windows a teach-in recorded in the log and write the model folder', async () => {
    const log = dbPath();
    // A teach-in of the mixer as the gateway runs it: each learned window's features recorded.
    const T0 = Date.UTC(2026, 11, 7, 5, 0, 0);
    const w = await logWithTeachIn(log, 'mixer-1', profileById('mixer'), card, { seed: 3, count: 250, t0Ms: T0 });
    const out = path.join(tempDir(), 'mixer-1');
    const r = await cli('fine-tune', '--log', log, '--device', 'mixer-1', '--model', 'vibration-anomaly', '--out', out, '--epochs', '2', '--min-windows', '100', '--backend', 'wasm');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: vibration-anomaly fine-tuned for mixer-1 on 200 windows \\(50 held out\\), 2 epochs\n`));
    expect(r.out).toMatch(/\nfp32 {8}written, /);
    expect(r.out).toMatch(/ peak extra memory; variants checked on wasm\n/);
    const written = readdirSync(out).sort();
    expect(written).toContain('vibration-anomaly.fp32.onnx');
    const fp32 = JSON.parse(readFileSync(path.join(out, 'vibration-anomaly.fp32.model.json'), 'utf8')) as { provenance: { device: string; firstWindow: string } };
    expect(fp32.provenance).toMatchObject({ device: 'mixer-1', firstWindow: new Date(T0 + w.endMs[0]).toISOString() });
  });

  describe('--apply', () => {
    let broker: TestBroker | undefined;
    let gateway: Gateway | undefined;
    afterAll(async () => {
      await gateway?.stop();
      await broker?.stop();
    });

    it('should serve the fine-tuned folder to the device on the running gateway, whose log the teach-in wrote', async () => {
      const log = dbPath();
      await logWithTeachIn(log, 'mixer-1', profileById('mixer'), card, { seed: 5, count: 200, t0Ms: 1_765_000_000_000 });
      broker = await startAedes();
      const config = parseGatewayConfig({
        broker: { url: broker.url, protocol: 4, clientId: 'gw-fine-tune-apply' },
        storage: { path: log },
        http: { port: 0, host: '127.0.0.1' },
        engine: { backend: 'wasm', threads: 1 },
        pipelines: [{ name: 'anomaly', topic: 'plant/{device}/vibration', decoder: VIBRATION_DECODER, model: 'vibration-anomaly', variant: 'int8' }],
      }, 'fine-tune --apply config');
      gateway = new Gateway(config, () => undefined);
      await gateway.start();
      const out = path.join(tempDir(), 'mixer-1');
      const url = `http://127.0.0.1:${gateway.httpPort}`;
      const r = await cli('fine-tune', '--log', log, '--device', 'mixer-1', '--model', 'vibration-anomaly', '--out', out, '--epochs', '2', '--min-windows', '100', '--apply', '--url', url);
      expect(r.err).toBe('');
      expect(r.out).toMatch(/\nserving {5}mixer-1 \(vibration-anomaly\): its own int8 from .*mixer-1 \(sha256 [0-9a-f]{12}\), threshold [\d.]+, since /);
      expect(gateway.deviceModels()).toEqual([expect.objectContaining({ device: 'mixer-1', model: 'vibration-anomaly', state: 'active', folder: out, variant: 'int8' })]);

      // A gateway that does not answer: the folder is still written, and the line says how to serve it.
      const closed = await freePort();
      const again = await cli('fine-tune', '--log', log, '--device', 'mixer-1', '--model', 'vibration-anomaly', '--out', `${out}-2`, '--epochs', '1', '--min-windows', '100', '--apply', '--url', `http://127.0.0.1:${closed}`);
      expect(again.code).not.toBe(0);
      expectOneLine(again.err, new RegExp(`fine-tune --apply: the gateway at http://127\\.0\\.0\\.1:${closed} did not answer \\(ECONNREFUSED\\); the folder is written: edge-infer device-model set --device mixer-1 --model vibration-anomaly --dir .*mixer-1-2 serves it$`));
      expect(readdirSync(`${out}-2`)).toContain('vibration-anomaly.int8.onnx');
      const user = await cli('fine-tune', '--log', log, '--device', 'mixer-1', '--model', 'vibration-anomaly', '--out', `${out}-3`, '--user', 'alice');
      expectOneLine(user.err, /fine-tune: --user is for --apply$/);
    }, 60_000);
  });

  it('should refuse a log without an active baseline of the device, or with too few windows, in one line', async () => {
    const log = await logWith(30);
    let r = await cli('fine-tune', '--log', log, '--device', 'press-2', '--model', 'vibration-anomaly', '--out', path.join(tempDir(), 'out'));
    expect(r.code).not.toBe(0);
    expectOneLine(r.err, /no active teach-in baseline of press-2 for vibration-anomaly \(teach it in first: edge-infer teach-in start\)$/);
    r = await run(log);
    expect(r.code).not.toBe(0);
    expectOneLine(r.err, /baseline 1 of press-1 recorded 30 windows, fewer than the 200 a fine-tune needs \(teach it in for more windows\)$/);
    r = await run(log, '--min-windows', '5');
    expectOneLine(r.err, /--min-windows.*expected a whole number from 10 to 5000/);
  });

  it('should refuse an unknown model and a model that is not an anomaly model', async () => {
    const log = await logWith(0);
    let r = await cli('fine-tune', '--log', log, '--device', 'press-1', '--model', 'pump-anomaly', '--out', path.join(tempDir(), 'out'));
    expectOneLine(r.err, new RegExp(`no model 'pump-anomaly' in ${bundledModelsDir().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(known: .*vibration-anomaly`));
    r = await cli('fine-tune', '--log', log, '--device', 'press-1', '--model', 'fault-classifier', '--out', path.join(tempDir(), 'out'));
    expectOneLine(r.err, /--model fault-classifier: a classification model; only anomaly models are fine-tuned$/);
  });

  it('should refuse a log that is missing, not a log, or too old to hold recorded windows', async () => {
    const missing = path.join(tempDir(), 'none.db');
    let r = await run(missing);
    expectOneLine(r.err, /--log .*none\.db: no such file$/);
    const text = path.join(tempDir(), 'notes.db');
    writeFileSync(text, 'not a database at all, just some text that is long enough to have a header');
    r = await run(text);
    expectOneLine(r.err, /--log .*notes\.db: not an edge-infer log \(file is not a database\)$/);
    const old = path.join(tempDir(), 'old.db');
    const db = new Database(old);
    db.pragma('user_version = 12');
    db.close();
    r = await run(old);
    expectOneLine(r.err, /--log .*old\.db: schema version 12 has no recorded teach-in windows \(13 or newer needed/);
    r = await cli('fine-tune', '--device', 'press-1');
    expect(r.code).not.toBe(0);
    expectOneLine(r.err, /required option '--log <file>' not specified/);
  });
});
