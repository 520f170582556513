// Per-device model variants on a running gateway: a copy of vibration-anomaly with another
// threshold is press-1's own model folder; press-2 stays on the shared model. Real broker (aedes),
// real ONNX sessions, a real log file, the HTTP API behind a login; a restart serves press-1 its
// own variant again; clearing goes back to the shared one; bad folders are refused with one line
// and change nothing. A device variant that throws at run time is rolled back without losing a
// window (tiny speed models: the throw is an out-of-range Gather).
import { copyFileSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import bcrypt from 'bcryptjs';
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { Gateway } from '../../runtime/gateway/gateway';
import { sha256Hex } from '../../runtime/hotswap';
import { GraphBuilder, encodeModel } from '../../runtime/onnx';
import { bundledModelsDir } from '../../runtime/paths';
import { type TestBroker, startAedes } from '../helpers/brokers';
import { cli, expectOneLine } from '../helpers/cli';
import { VIBRATION_DECODER, client, publish, tempDir, vibrationBlock, waitFor } from '../helpers/gateway';
import { logModel } from '../helpers/models';
import { modelsDir, speedCard } from '../helpers/speed-models';

interface Published {
  device: string;
  variant: string;
  score: number;
  anomaly: boolean;
  threshold: number;
  modelSha256?: string;
  window: { start: string };
}

/** models/vibration-anomaly/ copied, every card's threshold set to `threshold`. */
function deviceFolder(threshold: number): string {
  const from = path.join(bundledModelsDir(), 'vibration-anomaly');
  const dir = tempDir('edge-infer-device-model-');
  for (const f of readdirSync(from)) {
    if (f.endsWith('.model.json')) {
      const card = JSON.parse(readFileSync(path.join(from, f), 'utf8'));
      writeFileSync(path.join(dir, f), JSON.stringify({ ...card, output: { ...card.output, threshold } }));
    } else copyFileSync(path.join(from, f), path.join(dir, f));
  }
  return dir;
}

/** The card of vibration-anomaly fp32 beside `onnx` in a folder of its own: a folder whose model is not what it says. */
function folderWith(onnx: Uint8Array): string {
  const dir = tempDir('edge-infer-device-model-');
  writeFileSync(path.join(dir, 'vibration-anomaly.fp32.onnx'), onnx);
  copyFileSync(path.join(bundledModelsDir(), 'vibration-anomaly', 'vibration-anomaly.fp32.model.json'), path.join(dir, 'vibration-anomaly.fp32.model.json'));
  return dir;
}

/** spectrum [batch, 3, 32] → score [batch]: the card's tensors, but half the card's 64 bands. */
function narrowSpectrumModel(): Uint8Array {
  const g = new GraphBuilder('narrow');
  const x = g.input('spectrum', 'float32', ['batch', 3, 32]);
  g.output(g.op1('ReduceMax', [x], { axes: [1, 2], keepdims: 0 }), 'float32', ['batch'], 'score');
  return encodeModel(g.build());
}

describe('per-device model variants on a gateway', () => {
  let broker: TestBroker | undefined;
  let gateway: Gateway | undefined;
  let sub: MqttClient | undefined;
  let pub: MqttClient | undefined;
  afterAll(async () => {
    sub?.end(true);
    pub?.end(true);
    await gateway?.stop();
    await broker?.stop();
  });

  it('should serve one device from its own folder and the other from the shared model, through restart and clear, refusing bad folders', async () => {
    broker = await startAedes();
    const config = parseGatewayConfig(
      {
        broker: { url: broker.url, protocol: 4, clientId: 'gw-device-models', reconnectMs: 200 },
        storage: { path: path.join(tempDir(), 'log.db'), batchMs: 2 },
        http: { port: 0, host: '127.0.0.1', users: [{ user: 'alice', passwordHash: bcrypt.hashSync('pw', 4) }] },
        engine: { backend: 'wasm', threads: 1 },
        pipelines: [{ name: 'anomaly', topic: 'plant/{device}/vibration', decoder: VIBRATION_DECODER, model: 'vibration-anomaly', variant: 'int8', recordEvery: 1 }],
      },
      'device models config',
    );
    const own = deviceFolder(0.001);
    const ownSha = sha256Hex(readFileSync(path.join(own, 'vibration-anomaly.int8.onnx')));
    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    let api = `http://127.0.0.1:${gateway.httpPort}/api/`;
    let cookie = '';
    const login = async (): Promise<void> => {
      const res = await fetch(`${api}login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'alice', password: 'pw' }) });
      cookie = res.headers.get('set-cookie')!.split(';')[0];
    };
    const post = async (route: string, body: unknown, withCookie = true): Promise<{ status: number; body: Record<string, unknown> }> => {
      const res = await fetch(api + route, { method: 'POST', headers: { 'content-type': 'application/json', ...(withCookie ? { cookie } : {}) }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const list = async (): Promise<Array<Record<string, unknown>>> => ((await (await fetch(`${api}device-models`, { headers: { cookie } })).json()) as { deviceModels: Array<Record<string, unknown>> }).deviceModels;

    const results: Published[] = [];
    sub = await client(broker.url);
    sub.on('message', (_t, payload) => results.push(JSON.parse(String(payload)) as Published));
    await new Promise((r) => sub!.subscribe('edge-infer/results/#', { qos: 1 }, r));
    pub = await client(broker.url);
    const seq = new Map<string, number>([['press-1', 0], ['press-2', 0]]);
    // Blocks of both devices interleaved, so batches mix them; 2 blocks are one more window each.
    const send = async (blocks: number): Promise<void> => {
      const before = results.length;
      for (let i = 0; i < blocks; i++) {
        for (const d of ['press-1', 'press-2']) {
          const n = seq.get(d)!;
          seq.set(d, n + 1);
          await publish(pub!, `plant/${d}/vibration`, vibrationBlock(n));
        }
      }
      // A window is 4 blocks, hop 2: every window of each device so far, restarts included.
      const windows = (n: number): number => (n < 4 ? 0 : Math.floor((n * 512 - 2048) / 1024) + 1);
      const want = windows(seq.get('press-1')!) + windows(seq.get('press-2')!);
      await waitFor(() => results.length >= want, 20_000, `${want} results (${before} before)`);
    };
    const of = (d: string, from = 0): Published[] => results.slice(from).filter((r) => r.device === d);

    // Before anything is set, both devices run on the shared int8 variant with its card's threshold.
    await send(8);
    expect(of('press-1').length).toBe(3);
    expect(results.every((r) => r.threshold === 11.19 && r.variant === 'int8' && r.modelSha256 === undefined)).toBe(true);

    // The login: nothing is set without it.
    expect(await post('device-models/set', { device: 'press-1', model: 'vibration-anomaly', folder: own }, false)).toMatchObject({ status: 401, body: { error: 'api/device-models/set: log in first' } });
    await login();
    expect(await list()).toEqual([]);

    // Bad requests and bad folders: one line each, and nothing changes.
    const refused: Array<[unknown, number, RegExp]> = [
      [{ device: 'press-1', model: 'vibration-anomaly', folder: folderWith(new TextEncoder().encode('not a model')) }, 400, /^device-model set: press-1 \(vibration-anomaly\): folder .+: no variant of 'vibration-anomaly' to serve: .*vibration-anomaly\.fp32\.onnx.*/],
      [{ device: 'press-1', model: 'vibration-anomaly', folder: folderWith(narrowSpectrumModel()) }, 400, /^device-model set: press-1 \(vibration-anomaly\): folder .+: no variant of 'vibration-anomaly' to serve: .+vibration-anomaly\.fp32\.onnx: the card .+ does not match the model: the model input 'spectrum' has shape \[batch, 3, 32\], the card's features are \[3, 64\]/],
      [{ device: 'press-1', model: 'vibration-anomaly', folder: path.join(own, 'nowhere') }, 400, /^device-model set: folder .+nowhere: expected a models directory, it does not exist$/],
      [{ device: 'press-1', model: 'fault-classifier', folder: own }, 404, /^device-model set: model 'fault-classifier' is not served here \(served: vibration-anomaly\)$/],
      [{ device: '', model: 'vibration-anomaly', folder: own }, 400, /^device-model set: device: expected a name, got ""$/],
      [{ device: 'press-1', model: 'vibration-anomaly' }, 400, /^device-model set: folder: expected the device's model folder, got none$/],
    ];
    for (const [body, status, error] of refused) {
      const r = await post('device-models/set', body);
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      expect(String(r.body.error)).toMatch(error);
      expect(String(r.body.error)).not.toContain('\n');
    }
    expect(await post('device-models/clear', { device: 'press-1', model: 'vibration-anomaly' })).toMatchObject({ status: 404, body: { error: "device-model clear: press-1 has no model of its own for 'vibration-anomaly'" } });
    expect(await list()).toEqual([]);

    // press-1 gets its own folder: the int8 the pipeline's policy picks there, with its own threshold.
    const set = await post('device-models/set', { device: 'press-1', model: 'vibration-anomaly', folder: own });
    expect(set).toMatchObject({ status: 200, body: { device: 'press-1', model: 'vibration-anomaly', state: 'active', folder: own, variant: 'int8', sha256: ownSha, threshold: 0.001 } });
    let from = results.length;
    await send(10);
    const mine = of('press-1', from);
    const theirs = of('press-2', from);
    expect(mine.length).toBe(5);
    expect(theirs.length).toBe(5);
    expect(mine.every((r) => r.threshold === 0.001 && r.anomaly && r.modelSha256 === ownSha && r.variant === 'int8')).toBe(true);
    expect(theirs.every((r) => r.threshold === 11.19 && r.anomaly === r.score > 11.19 && r.modelSha256 === undefined)).toBe(true);
    // Each device's results in the order of its windows, none twice, none missing.
    for (const d of ['press-1', 'press-2']) {
      const starts = of(d).map((r) => Date.parse(r.window.start));
      expect(starts).toEqual([...starts].sort((a, b) => a - b));
      expect(new Set(starts).size).toBe(starts.length);
      expect(starts.length).toBe((seq.get(d)! - 4) / 2 + 1);
    }
    // The log says which variant made each result.
    expect(gateway.log.latestPerDevice({ model: 'vibration-anomaly' })).toMatchObject([{ device: 'press-1', modelSha256: ownSha }, { device: 'press-2' }]);
    expect(gateway.log.latestPerDevice({ model: 'vibration-anomaly' })[1]).not.toHaveProperty('modelSha256');

    // A restart serves press-1 its own variant again.
    await gateway.stop();
    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    api = `http://127.0.0.1:${gateway.httpPort}/api/`;
    await login();
    expect(await list()).toMatchObject([{ device: 'press-1', state: 'active', sha256: ownSha, threshold: 0.001 }]);
    from = results.length;
    await send(4);
    expect(of('press-1', from).map((r) => r.threshold)).toEqual([0.001, 0.001]);
    expect(of('press-2', from).map((r) => r.threshold)).toEqual([11.19, 11.19]);

    // Cleared: back to the shared model, and logged so a restart keeps it cleared.
    expect(await post('device-models/clear', { device: 'press-1', model: 'vibration-anomaly' })).toMatchObject({ status: 200, body: { state: 'cleared', threshold: null } });
    from = results.length;
    await send(4);
    expect(of('press-1', from).every((r) => r.threshold === 11.19 && r.modelSha256 === undefined)).toBe(true);
    expect(gateway.log.deviceModels().current()).toMatchObject([{ device: 'press-1', state: 'cleared', sha256: null }]);
    expect(gateway.deviceModels()).toMatchObject([{ device: 'press-1', state: 'cleared' }]);
  });

  it('should refuse each bad command line in one line, and a gateway that asks for a login without --user', async () => {
    const url = `http://127.0.0.1:${gateway!.httpPort}`;
    const own = deviceFolder(0.002);
    // The gateway asks for a login: without --user the command is told so, in one line.
    const noLogin = await cli('device-model', 'list', '--url', url);
    expect(noLogin.code).toBe(1);
    expectOneLine(noLogin.err, /^edge-infer: device-model list: api\/device-models: log in first$/);
    const bad: Array<[string[], RegExp]> = [
      [['device-model', 'set', '--url', url, '--device', 'press-1', '--model', 'vibration-anomaly'], /^edge-infer: device-model set: expected --dir, the device's model folder$/],
      [['device-model', 'set', '--url', url, '--device', 'press-1', '--dir', own], /^edge-infer: device-model set: expected --device and --model$/],
      [['device-model', 'clear', '--url', url, '--device', 'press-1', '--model', 'vibration-anomaly', '--dir', own], /^edge-infer: device-model clear: --dir is for set$/],
      [['device-model', 'list', '--url', url, '--device', 'press-1'], /^edge-infer: device-model list: --device and --model are for set and clear$/],
      [['device-model', 'swap', '--url', url], /^edge-infer: device-model: expected set, clear or list, got 'swap'$/],
      [['device-model', 'list', '--url', 'ftp://gw'], /^edge-infer: --url: expected an http:\/\/ or https:\/\/ address, got 'ftp:\/\/gw'$/],
    ];
    for (const [args, line] of bad) {
      const r = await cli(...args);
      expect(r.code, r.err).toBe(1);
      expectOneLine(r.err, line);
    }
    expect(gateway!.deviceModels()).toMatchObject([{ device: 'press-1', state: 'cleared' }]);
  });
});

/** y = table[x] for x in 0..19 (the score x / 10): an out-of-range Gather, and so a throw, from x = 20 on. */
function tableModel(): Uint8Array {
  const g = new GraphBuilder('table');
  const x = g.input('x', 'float32', ['batch', 1]);
  const idx = g.op1('Cast', [x], { to: 7 });
  const table = g.weight('table', [20], Array.from({ length: 20 }, (_, i) => i / 10));
  g.output(g.op1('Gather', [table, idx], { axis: 0 }), 'float32', ['batch', 1], 'y');
  return encodeModel(g.build());
}

describe('a device variant that throws at run time', () => {
  let broker: TestBroker | undefined;
  let gateway: Gateway | undefined;
  let sub: MqttClient | undefined;
  let pub: MqttClient | undefined;
  afterAll(async () => {
    sub?.end(true);
    pub?.end(true);
    await gateway?.stop();
    await broker?.stop();
  });

  it('should roll the device back to the shared model, its failed windows run again there, none lost', async () => {
    broker = await startAedes();
    const card = speedCard('speed-anomaly', { task: 'anomaly', threshold: 5 });
    const own = modelsDir([{ card: { ...card, output: { ...card.output, threshold: 1 } }, onnx: tableModel() }]);
    const reports: string[] = [];
    gateway = new Gateway(
      parseGatewayConfig(
        {
          broker: { url: broker.url, protocol: 4, clientId: 'gw-device-rollback', reconnectMs: 200 },
          models: modelsDir([{ card, onnx: logModel() }]),
          storage: { path: path.join(tempDir(), 'log.db'), batchMs: 2 },
          http: { port: 0, host: '127.0.0.1' },
          engine: { backend: 'wasm', threads: 1 },
          scheduler: { maxBatch: 8, maxWaitMs: 20, maxQueue: 64, policy: 'pause' },
          deviceModels: { max: 1, healthBatches: 2 },
          // On a worker thread: the device's session is loaded there from its file, as the shared one.
          workers: 1,
          pipelines: [{ name: 'speed', topic: 'plant/{device}/speed', decoder: { kind: 'json', channels: ['speed'] }, model: 'speed-anomaly' }],
        },
        'rollback config',
      ),
      (err) => reports.push(err instanceof Error ? err.message : String(err)),
    );
    // Before the start there is nothing to set: said in one line, as a rejection.
    await expect(gateway.setDeviceModel('fan-1', 'speed-anomaly', own)).rejects.toThrow('device-model set: the gateway is not running');
    await expect(gateway.clearDeviceModel('fan-1', 'speed-anomaly')).rejects.toThrow('device-model clear: the gateway is not running');
    expect(() => gateway!.deviceModels()).toThrow('device-model list: the gateway is not running');
    await gateway.start();
    await expect(gateway.setDeviceModel(' ', 'speed-anomaly', own)).rejects.toThrow('device-model set: device: expected a name, got " "');
    const results: Array<{ device: string; score: number; threshold: number; modelSha256?: string }> = [];
    sub = await client(broker.url);
    sub.on('message', (_t, payload) => results.push(JSON.parse(String(payload))));
    await new Promise((r) => sub!.subscribe('edge-infer/results/#', { qos: 1 }, r));
    pub = await client(broker.url);
    // One message per window; both devices' messages interleaved, so batches mix them.
    const send = async (speeds: number[]): Promise<void> => {
      const want = results.length + speeds.length * 2;
      for (const s of speeds) {
        await publish(pub!, 'plant/fan-1/speed', JSON.stringify({ speed: s }));
        await publish(pub!, 'plant/fan-2/speed', JSON.stringify({ speed: s }));
      }
      await waitFor(() => results.length >= want, 10_000, `${want} results`);
    };
    await send([3]);
    const status = await gateway.setDeviceModel('fan-1', 'speed-anomaly', own);
    expect(status).toMatchObject({ state: 'active', variant: 'fp32', threshold: 1, probation: 2 });
    // The bound: one device per model here, refused in one line, and nothing changes.
    await expect(gateway.setDeviceModel('fan-2', 'speed-anomaly', own)).rejects.toThrow("device-model set: 1 devices already have a model of their own for 'speed-anomaly', the most one model may have (one session each); clear one first");
    await send([4, 5, 6, 7, 8, 9]);
    const fan1 = (): typeof results => results.filter((r) => r.device === 'fan-1');
    expect(fan1().slice(1).map((r) => [r.score, r.threshold])).toEqual([[0.4, 1], [0.5, 1], [0.6, 1], [0.7, 1], [0.8, 1], [0.9, 1]].map(([s, t]) => [expect.closeTo(s, 6), t]));
    // Speed 30: past the table, the device variant throws; its windows run on the shared model.
    await send([30, 31, 10]);
    expect(fan1().slice(-3).map((r) => [r.score, r.threshold, r.modelSha256])).toEqual([[expect.closeTo(Math.log(28), 5), 5, undefined], [expect.closeTo(Math.log(29), 5), 5, undefined], [expect.closeTo(Math.log(8), 5), 5, undefined]]);
    expect(fan1()).toHaveLength(10);
    expect(results.filter((r) => r.device === 'fan-2')).toHaveLength(10);
    expect(gateway.log.deadLetters({ limit: 10 })).toEqual([]);
    const [row] = gateway.deviceModels();
    expect(row).toMatchObject({ device: 'fan-1', state: 'rolled-back', threshold: null });
    expect(row.reason).toMatch(/^fan-1: its own fp32 \([0-9a-f]{12}\) rolled back to the shared variant: it failed window \d+ of a batch: .+indices element out of data bounds.+/);
    expect(reports.some((m) => m.startsWith('speed: fan-1: its own fp32'))).toBe(true);
    // Rolled back, not cleared: nothing of its own to clear, and room for another device now.
    await expect(gateway.clearDeviceModel('fan-1', 'speed-anomaly')).rejects.toThrow("device-model clear: fan-1 has no model of its own for 'speed-anomaly'");
    expect(await gateway.setDeviceModel('fan-2', 'speed-anomaly', own)).toMatchObject({ state: 'active' });
  });

  it('should set, list and clear from the command line (a gateway on 127.0.0.1 without users asks no login)', async () => {
    const url = `http://127.0.0.1:${gateway!.httpPort}`;
    const own = modelsDir([{ card: { ...speedCard('speed-anomaly', { task: 'anomaly' }), output: { tensor: 'y', score: 'first output value', unit: '-', threshold: 2 } }, onnx: tableModel() }]);
    await cli('device-model', 'clear', '--url', url, '--device', 'fan-2', '--model', 'speed-anomaly');
    const set = await cli('device-model', 'set', '--url', url, '--device', 'fan-1', '--model', 'speed-anomaly', '--dir', path.relative(process.cwd(), own));
    expect(set.err).toBe('');
    expect(set.out).toMatch(new RegExp(`^fan-1 \\(speed-anomaly\\): its own fp32 from ${own.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(sha256 [0-9a-f]{12}\\), threshold 2, since \\S+\n$`));
    const listed = await cli('device-model', 'list', '--url', url);
    expect(listed.out.split('\n')).toEqual([expect.stringMatching(/^fan-1 \(speed-anomaly\): its own fp32 from .+, threshold 2, since/), expect.stringMatching(/^fan-2 \(speed-anomaly\): cleared, the shared variant serves it, since \S+: cleared: the shared variant serves it$/), '']);
    expect(JSON.parse((await cli('device-model', 'list', '--url', url, '--json')).out)).toMatchObject([{ device: 'fan-1', state: 'active', threshold: 2 }, { device: 'fan-2', state: 'cleared' }]);
    expect((await cli('device-model', 'clear', '--url', url, '--device', 'fan-1', '--model', 'speed-anomaly')).out).toMatch(/^fan-1 \(speed-anomaly\): cleared, the shared variant serves it/);
    const again = await cli('device-model', 'clear', '--url', url, '--device', 'fan-1', '--model', 'speed-anomaly');
    expect(again.code).toBe(1);
    expectOneLine(again.err, /^edge-infer: device-model clear: device-model clear: fan-1 has no model of its own for 'speed-anomaly'$/);
    const bad = await cli('device-model', 'set', '--url', url, '--device', 'fan-1', '--model', 'speed-anomaly', '--dir', path.join(own, 'missing'));
    expect(bad.code).toBe(1);
    expectOneLine(bad.err, /^edge-infer: device-model set: device-model set: folder .+missing: expected a models directory, it does not exist$/);
  });

  it('should serve the shared variant after a restart that finds a device\'s folder gone, logged rolled back with why', async () => {
    const own = modelsDir([{ card: { ...speedCard('speed-anomaly', { task: 'anomaly' }), output: { tensor: 'y', score: 'first output value', unit: '-', threshold: 2 } }, onnx: tableModel() }]);
    await gateway!.setDeviceModel('fan-1', 'speed-anomaly', own);
    const config = gateway!.config;
    const reports: string[] = [];
    await gateway!.stop();
    rmSync(own, { recursive: true });
    gateway = new Gateway(config, (err) => reports.push(err instanceof Error ? err.message : String(err)));
    await gateway.start();
    const fan1 = gateway.deviceModels().find((r) => r.device === 'fan-1')!;
    expect(fan1).toMatchObject({ state: 'rolled-back', threshold: null });
    expect(fan1.reason).toMatch(/^fan-1 \(speed-anomaly\): its own model was not served again after the restart: restart: folder .+: expected a models directory, it does not exist$/);
    expect(reports).toContain(fan1.reason);
    const before = (await gateway.log.latestPerDevice({ model: 'speed-anomaly' })).length;
    await publish(pub!, 'plant/fan-1/speed', JSON.stringify({ speed: 12 }));
    await waitFor(() => gateway!.log.latestPerDevice({ model: 'speed-anomaly' }).find((r) => r.device === 'fan-1' && Math.abs(r.score - Math.log(10)) < 1e-5), 10_000, 'the shared result of fan-1');
    expect(before).toBe(2);
  });
});
