// Window accounting through a running gateway (aedes, tiny real models): whatever happens to a
// window (a model output the card cannot read, a NaN score, a sample group that fails after
// others made windows, a run that fails as a whole), its messages leave the journal exactly when
// nothing needs them any more, and the good windows are logged. Also: live windows after a
// restart are logged whatever their time.
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../runtime/gateway/gateway';
import { type GatewayConfig, parseGatewayConfig } from '../../runtime/gateway/config';
import { type TestBroker, startAedes } from '../helpers/brokers';
import { client, publish, tempDir, waitFor } from '../helpers/gateway';
import { gatherModel, logModel, unsizedClassesModel } from '../helpers/models';
import { modelsDir, speedCard } from '../helpers/speed-models';
import { encodePayload, rawData } from '../stream/decoders/sparkplug-helpers';

const T0 = 1_700_000_000_000;
const BIRTH = (seq: number) => Buffer.from(encodePayload({ timestamp: T0, seq, metrics: [{ name: 'bdSeq', type: 'UInt64', value: 0 }] }));
const DEVICE_BIRTH = (seq: number) =>
  Buffer.from(encodePayload({ timestamp: T0, seq, metrics: [{ name: 'Speed', alias: 7, type: 'Float', value: 0 }, { name: 'Temp', alias: 8, type: 'Float', value: 0 }] }));

describe('window accounting in the gateway', () => {
  let broker: TestBroker;
  let gateway: Gateway;
  let config: GatewayConfig;
  let pub: MqttClient;
  const reported: string[] = [];

  beforeAll(async () => {
    broker = await startAedes();
    const models = modelsDir([
      { card: speedCard('speed-table'), onnx: gatherModel() },
      { card: speedCard('speed-log'), onnx: logModel() },
      { card: speedCard('speed-class', { task: 'classification', labels: ['normal', 'fast', 'stalled'] }), onnx: unsizedClassesModel() },
      { card: speedCard('speed-pair', { window: 2 }), onnx: gatherModel() },
    ]);
    const json = { kind: 'json', channels: ['speed'] } as const;
    config = parseGatewayConfig(
      {
        broker: { url: broker.url, protocol: 4, clientId: 'gw-windows', reconnectMs: 200 },
        models,
        storage: { path: path.join(tempDir(), 'log.db') },
        http: { port: 0, host: '127.0.0.1' },
        engine: { backend: 'wasm', threads: 1 },
        pipelines: [
          // A long wait gathers the messages sent together into one run.
          { name: 'log', topic: 'machine/{device}/log', decoder: json, model: 'speed-log', scheduler: { maxBatch: 8, maxWaitMs: 200, maxQueue: 64, policy: 'pause' } },
          { name: 'classes', topic: 'machine/{device}/class', decoder: json, model: 'speed-class' },
          { name: 'sparkplug', topic: 'spBv1.0/plant/#', decoder: { kind: 'sparkplug', channels: { Speed: 'speed', Temp: 'temp' } }, model: 'speed-table' },
          { name: 'pairs', topic: 'spBv1.0/pairs/#', decoder: { kind: 'sparkplug', channels: { Speed: 'speed' } }, model: 'speed-pair' },
          { name: 'timed', topic: 'machine/{device}/timed', decoder: { ...json, timestampField: 'time' }, model: 'speed-table' },
          { name: 'broken', topic: 'machine/{device}/broken', decoder: json, model: 'speed-table' },
          // Every window anomalous (score log(speed − 2) over 0), each raising an alert at once.
          { name: 'alerting', topic: 'machine/{device}/alerting', decoder: json, model: 'speed-log', alerts: { consecutive: 1, cooldownS: 3600, threshold: 0 } },
        ],
      },
      'windows config',
    );
    gateway = new Gateway(config, (err) => reported.push(err instanceof Error ? err.message : String(err)));
    await gateway.start();
    pub = await client(broker.url);
  });

  afterAll(async () => {
    pub?.end(true);
    await gateway?.stop();
    await broker?.stop();
  });

  const send = (topic: string, payload: string | Uint8Array): Promise<void> => publish(pub, topic, payload);
  const scores = (device: string, model: string) => gateway.log.series({ device, model, fromMs: 0, toMs: Date.now() + 1000, maxPoints: 1000 }).map((p) => p.score);
  /** Journal rows of DATA messages (births stay journaled for a restart). */
  const dataRows = (pipeline: string) => gateway.log.pendingJournal(pipeline).filter((r) => r.topic.includes('DATA')).length;
  const letters = (device: string) => gateway.log.deadLetters({ limit: 100 }).filter((l) => l.device === device);

  it('should dead-letter a window whose output does not fit the card, naming the output, and retire its message', async () => {
    await send('machine/c-1/class', JSON.stringify({ speed: 1 }));
    await waitFor(() => letters('c-1').length > 0, 10_000, 'the dead letter of c-1');
    const [l] = letters('c-1');
    expect(l.code).toBe('E_RUN');
    expect(l.reason).toMatch(/speed-class/);
    expect(l.reason).toMatch(/output 'y' has 2 values for 3 labels/);
    // Settled: the journal row is gone, so no restart replays it.
    await waitFor(() => gateway.log.pendingJournal('classes').length === 0, 5000, 'the journal of classes to empty');
  });

  it('should dead-letter a NaN score naming the output, and log the good windows of the same run', async () => {
    for (const speed of [3, 1, 5]) await send('machine/n-1/log', JSON.stringify({ speed }));
    await waitFor(() => scores('n-1', 'speed-log').length === 2 && letters('n-1').length === 1, 10_000, 'two results and a dead letter for n-1');
    expect(scores('n-1', 'speed-log')).toEqual([0, Math.log(3)].map((v) => expect.closeTo(v, 5)));
    const [l] = letters('n-1');
    expect(l.code).toBe('E_RUN');
    expect(l.reason).toMatch(/output 'y' gives a score of NaN/);
    expect(l.reason).toMatch(/n-1/);
    await waitFor(() => gateway.log.pendingJournal('log').length === 0, 5000, 'the journal of log to empty');
  });

  it('should run the windows a Sparkplug message made before a later sample group failed, then dead-letter it', async () => {
    await send('spBv1.0/plant/NBIRTH/edge-1', BIRTH(0));
    await send('spBv1.0/plant/DBIRTH/edge-1/pump-1', DEVICE_BIRTH(1));
    // Speed at T0+1000; at T0+2000 only Temp, which the model does not read: that group fails.
    await send('spBv1.0/plant/DDATA/edge-1/pump-1', rawData(2, [{ alias: 7, floatValue: 2, timestamp: T0 + 1000 }, { alias: 8, floatValue: 40, timestamp: T0 + 2000 }], T0 + 1000));
    await waitFor(() => scores('pump-1', 'speed-table').length === 1 && letters('pump-1').length === 1, 10_000, 'the result and the dead letter of pump-1');
    expect(scores('pump-1', 'speed-table')).toEqual([20]);
    expect(letters('pump-1')[0].reason).toMatch(/channel 'speed' missing/);
    await waitFor(() => dataRows('sparkplug') === 0, 5000, 'the journal of sparkplug to hold only births');
  });

  it('should keep a message journaled while any of its sample groups waits in a window', async () => {
    await send('spBv1.0/pairs/NBIRTH/edge-2', BIRTH(0));
    await send('spBv1.0/pairs/DBIRTH/edge-2/fan-1', DEVICE_BIRTH(1));
    // Three samples in one message: the first two make a window, the third waits for the next.
    const three = [1, 2, 3].map((s) => ({ alias: 7, floatValue: 1, timestamp: T0 + s * 1000 }));
    await send('spBv1.0/pairs/DDATA/edge-2/fan-1', rawData(2, three, T0 + 1000));
    await waitFor(() => scores('fan-1', 'speed-pair').length === 1, 10_000, 'the first window of fan-1');
    await gateway.pipelines.find((p) => p.name === 'pairs')!.drain();
    expect(dataRows('pairs')).toBe(1);
    await send('spBv1.0/pairs/DDATA/edge-2/fan-1', rawData(3, [{ alias: 7, floatValue: 1, timestamp: T0 + 4000 }], T0 + 4000));
    await waitFor(() => scores('fan-1', 'speed-pair').length === 2, 10_000, 'the second window of fan-1');
    await waitFor(() => dataRows('pairs') === 0, 5000, 'the journal of pairs to hold only births');
  });

  it('should dead-letter the windows of a run that fails as a whole, and retire their messages', async () => {
    const broken = gateway.pipelines.find((p) => p.name === 'broken')!;
    await broken.session.dispose(); // every run of this pipeline now fails before it starts
    await send('machine/b-1/broken', JSON.stringify({ speed: 1 }));
    await waitFor(() => letters('b-1').length === 1, 10_000, 'the dead letter of b-1');
    expect(letters('b-1')[0].reason).toMatch(/not logged/);
    await waitFor(() => gateway.log.pendingJournal('broken').length === 0, 5000, 'the journal of broken to empty');
    expect(reported.some((r) => /closed|disposed/i.test(r))).toBe(true);
  });

  it('should keep the alert state of windows whose results the log refused, with their dead letters', async () => {
    // The log refuses the results of r-2 alone (a trigger standing for any record it cannot take).
    const db = new Database(config.storage.path);
    db.exec("CREATE TRIGGER refuse_r2 BEFORE INSERT ON results WHEN NEW.device = 'r-2' BEGIN SELECT RAISE(ABORT, 'r-2 refused'); END");
    db.close();
    await send('machine/r-2/alerting', JSON.stringify({ speed: 5 }));
    await waitFor(() => letters('r-2').length === 1, 10_000, 'the dead letter of r-2');
    expect(letters('r-2')[0].reason).toMatch(/the log refused its results: .*r-2 refused/);
    // The tracker judged the window (raised); a restart must resume from that, not from before it.
    expect(gateway.log.alertStates('alerting').get('r-2')).toMatchObject({ raised: true, anomalous: 1 });
  });

  it('should log a live window older than the last one logged before a restart (a device clock gone back)', async () => {
    await send('machine/t-1/timed', JSON.stringify({ speed: 1, time: T0 + 60_000 }));
    await waitFor(() => scores('t-1', 'speed-table').length === 1, 10_000, 'the first result of t-1');
    await gateway.stop();
    gateway = new Gateway(config, (err) => reported.push(err instanceof Error ? err.message : String(err)));
    await gateway.start();
    // The device restarted with its clock a minute behind.
    await send('machine/t-1/timed', JSON.stringify({ speed: 2, time: T0 }));
    await waitFor(() => scores('t-1', 'speed-table').length === 2, 10_000, 'the result of the older window');
    // In data time the older window comes first.
    const starts = gateway.log.series({ device: 't-1', model: 'speed-table', fromMs: 0, toMs: Date.now() + 1000, maxPoints: 10 });
    expect(starts.map((p) => p.score)).toEqual([20, 10]);
  });
});
