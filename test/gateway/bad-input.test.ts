// A corpus of bad inputs through a running gateway (aedes): each becomes a dead letter whose
// reason says what was wrong, and is counted at /metrics; the gateway keeps going and handles
// the good messages sent after the bad ones. Three pipelines: float32 vibration blocks (the
// fault classifier), JSON and Sparkplug B (a tiny Gather model that fails for large inputs).
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../runtime/gateway/gateway';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import type { ModelCardInput } from '../../runtime/model';
import { bundledModelsDir } from '../../runtime/paths';
import { encodeFloat32Block } from '../../runtime/stream/decoders';
import { type TestBroker, startAedes } from '../helpers/brokers';
import { VIBRATION_DECODER, client, publish, tempDir, vibrationBlock, waitFor } from '../helpers/gateway';
import { speedTableModelsDir } from '../helpers/speed-table';
import { encodePayload, rawData } from '../stream/decoders/sparkplug-helpers';

const sparkTopic = (type: string, node: string, device?: string): string => `spBv1.0/plant/${type}/${node}${device ? `/${device}` : ''}`;
const speedMetric = (value: number) => [{ alias: 7, floatValue: value }];
const SPEED_BIRTH = [{ name: 'Speed', alias: 7, type: 'Float' as const, value: 0 }];

describe('the gateway given bad input', () => {
  let broker: TestBroker;
  let gateway: Gateway;
  let pub: MqttClient;
  const reported: string[] = [];

  beforeAll(async () => {
    broker = await startAedes();
    const dir = tempDir();
    const config = parseGatewayConfig(
      {
        broker: { url: broker.url, protocol: 4, clientId: 'gw-bad-input', reconnectMs: 200 },
        models: speedTableModelsDir(),
        storage: { path: path.join(dir, 'log.db') },
        http: { port: 0, host: '127.0.0.1' },
        engine: { backend: 'wasm', threads: 1 },
        pipelines: [
          { name: 'vibration', topic: 'plant/{device}/vibration', decoder: { ...VIBRATION_DECODER, samplesPerMessage: 512 }, model: 'fault-classifier', variant: 'fp32' },
          { name: 'json', topic: 'machine/{device}/speed', decoder: { kind: 'json', channels: ['speed'] }, model: 'speed-table' },
          { name: 'sparkplug', topic: 'spBv1.0/plant/#', decoder: { kind: 'sparkplug', channels: { Speed: 'speed' } }, model: 'speed-table' },
        ],
      },
      'bad-input config',
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

  /** Sends a bad message and returns the dead letter it became. */
  async function deadLetterOf(topic: string, payload: string | Uint8Array) {
    const before = gateway.log.counts().deadLetters;
    await send(topic, payload);
    await waitFor(() => gateway.log.counts().deadLetters > before, 10_000, `a dead letter for a message on ${topic}`);
    expect(gateway.log.counts().deadLetters).toBe(before + 1);
    return gateway.log.deadLetters({ limit: 1 })[0];
  }

  const metric = async (name: string, labels: string): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${gateway.httpPort}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };

  it('should dead-letter malformed JSON, naming where it broke', async () => {
    const l = await deadLetterOf('machine/m-1/speed', '{"speed": 1.5,');
    expect(l).toMatchObject({ code: 'E_INPUT_VALUE', device: 'm-1', topic: 'machine/m-1/speed' });
    expect(l.reason).toMatch(/JSON/);
    expect(Buffer.from(l.payload).toString()).toBe('{"speed": 1.5,');
  });

  it('should dead-letter a JSON field of the wrong type, naming the field', async () => {
    const l = await deadLetterOf('machine/m-1/speed', '{"speed": "fast"}');
    expect(l.reason).toMatch(/speed/);
    expect(l.reason).toMatch(/"fast"|string/);
  });

  it('should dead-letter NaN and infinite values in JSON and in float32 blocks', async () => {
    expect((await deadLetterOf('machine/m-1/speed', '{"speed": 1e999}')).reason).toMatch(/Infinity|finite/i);
    expect((await deadLetterOf('machine/m-1/speed', '{"speed": 1e39}')).reason).toMatch(/float32|finite|range/i);
    const x = new Float32Array(512).fill(0.1);
    const nan = Float32Array.from(x, (v, i) => (i === 100 ? NaN : v));
    const inf = Float32Array.from(x, (v, i) => (i === 7 ? -Infinity : v));
    const header = { seq: 0, timestampMs: 1_700_000_000_000 };
    const a = await deadLetterOf('plant/p-1/vibration', encodeFloat32Block({ vib_x: x, vib_y: nan, vib_z: x }, { channels: VIBRATION_DECODER.channels, header }));
    expect(a).toMatchObject({ code: 'E_INPUT_VALUE', device: 'p-1' });
    expect(a.reason).toMatch(/NaN/);
    expect(a.reason).toMatch(/vib_y/);
    const b = await deadLetterOf('plant/p-1/vibration', encodeFloat32Block({ vib_x: inf, vib_y: x, vib_z: x }, { channels: VIBRATION_DECODER.channels, header }));
    expect(b.reason).toMatch(/Infinity/);
    expect(b.reason).toMatch(/vib_x/);
  });

  it('should dead-letter float32 blocks of the wrong length', async () => {
    const cut = vibrationBlock(0).subarray(0, 16 + 12 * 100 + 5);
    const l = await deadLetterOf('plant/p-1/vibration', Buffer.from(cut));
    expect(l).toMatchObject({ code: 'E_INPUT_SHAPE' });
    expect(l.reason).toMatch(/not a multiple of 12 bytes/);
    const short = await deadLetterOf('plant/p-1/vibration', vibrationBlock(0, 256));
    expect(short.reason).toMatch(/256 samples.*expected 512/);
  });

  it('should dead-letter a 10 MB payload, keeping the first MiB of it', async () => {
    const big = Buffer.alloc(10 * 1024 * 1024, 0x20);
    big.write('{"speed": [');
    const l = await deadLetterOf('machine/m-1/speed', big);
    expect(l).toMatchObject({ code: 'E_INPUT_SHAPE', payloadBytes: big.length, truncated: true });
    expect(l.reason).toMatch(/10485760 bytes|maxBytes|larger/);
    expect(l.payload.byteLength).toBe(1024 * 1024);
    const block = await deadLetterOf('plant/p-1/vibration', vibrationBlock(0, (10 * 1024 * 1024) / 12));
    expect(block.reason).toMatch(/expected 512/);
  });

  it('should dead-letter Sparkplug DATA from a node never born, and ask that node to rebirth', async () => {
    const commands: string[] = [];
    const node = await client(broker.url);
    node.on('message', (topic) => commands.push(topic));
    await new Promise((r) => node.subscribe('spBv1.0/plant/NCMD/#', { qos: 0 }, r));
    const l = await deadLetterOf(sparkTopic('DDATA', 'stranger', 'pump-9'), rawData(0, speedMetric(1)));
    expect(l.reason).toMatch(/rebirth/);
    expect(l.reason).toMatch(/stranger/);
    await waitFor(() => commands.includes('spBv1.0/plant/NCMD/stranger'), 5000, "the rebirth request (NCMD 'Node Control/Rebirth')");
    node.end(true);
  });

  it('should dead-letter a Sparkplug payload whose protobuf is broken', async () => {
    const l = await deadLetterOf(sparkTopic('DDATA', 'edge-1', 'pump-1'), Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    expect(l.code).toBe('E_INPUT_VALUE');
    expect(l.reason).toMatch(/protobuf/i);
  });

  it('should dead-letter Sparkplug DATA out of sequence, naming expected and received seq', async () => {
    const before = gateway.log.counts().results;
    await send(sparkTopic('NBIRTH', 'edge-1'), Buffer.from(encodePayload({ timestamp: Date.now(), seq: 0, metrics: [{ name: 'bdSeq', type: 'UInt64', value: 0 }] })));
    await send(sparkTopic('DBIRTH', 'edge-1', 'pump-1'), Buffer.from(encodePayload({ timestamp: Date.now(), seq: 1, metrics: SPEED_BIRTH })));
    await send(sparkTopic('DDATA', 'edge-1', 'pump-1'), rawData(2, speedMetric(1), Date.now()));
    await waitFor(() => gateway.log.counts().results > before, 10_000, 'the result of a Sparkplug DDATA');
    const l = await deadLetterOf(sparkTopic('DDATA', 'edge-1', 'pump-1'), rawData(9, speedMetric(2), Date.now()));
    expect(l.code).toBe('E_INPUT_VALUE');
    expect(l.reason).toMatch(/expected.*\b3\b/);
    expect(l.reason).toMatch(/\b9\b/);
  });

  it('should dead-letter the window a model refuses mid-run, and still log the others of its batch', async () => {
    const before = gateway.log.counts().results;
    const dead = gateway.log.counts().deadLetters;
    // Out-of-range index in the middle of good ones: the same micro-batch when they come together.
    for (const speed of [1, 2, 9, 3]) await send('machine/m-2/speed', JSON.stringify({ speed }));
    await waitFor(() => gateway.log.counts().results >= before + 3 && gateway.log.counts().deadLetters > dead, 10_000, 'three results and a dead letter');
    const l = gateway.log.deadLetters({ limit: 1 })[0];
    expect(l).toMatchObject({ code: 'E_RUN', device: 'm-2' });
    expect(l.reason).toMatch(/speed-table/);
    expect(l.reason).toMatch(/indices|out of bounds|Gather/i);
    const series = gateway.log.series({ device: 'm-2', model: 'speed-table', fromMs: 0, toMs: Date.now() + 1000, maxPoints: 100 });
    expect(series.map((p) => p.score)).toEqual([10, 20, 30]);
  });

  it('should count every dead letter and decode error at /metrics', async () => {
    expect(await metric('edge_infer_decode_errors_total', 'pipeline="json"')).toBe(5);
    expect(await metric('edge_infer_decode_errors_total', 'pipeline="vibration"')).toBe(5);
    expect(await metric('edge_infer_decode_errors_total', 'pipeline="sparkplug"')).toBe(3);
    expect(await metric('edge_infer_dead_letters_total', 'pipeline="json",code="E_INPUT_VALUE"')).toBe(4);
    expect(await metric('edge_infer_dead_letters_total', 'pipeline="json",code="E_INPUT_SHAPE"')).toBe(1);
    expect(await metric('edge_infer_dead_letters_total', 'pipeline="json",code="E_RUN"')).toBe(1);
    expect(await metric('edge_infer_dead_letters_total', 'pipeline="vibration",code="E_INPUT_VALUE"')).toBe(2);
    expect(await metric('edge_infer_dead_letters_total', 'pipeline="vibration",code="E_INPUT_SHAPE"')).toBe(3);
    expect(await metric('edge_infer_dead_letters_total', 'pipeline="sparkplug",code="E_INPUT_VALUE"')).toBe(3);
  });

  it('should keep running and log the good messages sent after the bad ones', async () => {
    const before = gateway.log.counts();
    for (let seq = 0; seq < 4; seq++) await send('plant/p-1/vibration', vibrationBlock(seq));
    await send('machine/m-3/speed', JSON.stringify({ speed: 2 }));
    await send(sparkTopic('DDATA', 'edge-1', 'pump-1'), rawData(10, speedMetric(3), Date.now()));
    await waitFor(() => gateway.log.counts().results >= before.results + 3, 10_000, 'results of the good messages');
    expect(gateway.log.counts().deadLetters).toBe(before.deadLetters);
    const latest = gateway.log.latestPerDevice();
    expect(latest.map((r) => `${r.device}/${r.model}`)).toEqual(expect.arrayContaining(['p-1/fault-classifier', 'm-3/speed-table', 'pump-1/speed-table']));
    expect(latest.find((r) => r.device === 'pump-1')?.score).toBe(30);
    const health = await (await fetch(`http://127.0.0.1:${gateway.httpPort}/health`)).json();
    expect(health).toMatchObject({ ok: true, broker: 'connected' });
    // Only the last two blocks of p-1 wait for the next window (hop 1024: it starts at sample 1024),
    // besides the Sparkplug births kept for a restart (edge-1's NBIRTH and pump-1's DBIRTH).
    expect(gateway.log.journalDepth()).toBe(4);
    expect(gateway.log.pendingJournal('sparkplug').map((r) => r.topic)).toEqual(['spBv1.0/plant/NBIRTH/edge-1', 'spBv1.0/plant/DBIRTH/edge-1/pump-1']);
    expect(gateway.log.pendingJournal('vibration').map((r) => r.payload.subarray(4, 8)[0])).toEqual([2, 3]);
    expect(reported).toEqual([]);
  });

  it('should restart a device window after a lost message and count the gap at /metrics', async () => {
    const before = gateway.log.counts().results;
    // Block 4 of p-7 never arrives: blocks 2 and 3 cannot be glued to block 5.
    for (const seq of [0, 1, 2, 3, 5, 6, 7, 8]) await send('plant/p-7/vibration', vibrationBlock(seq));
    await waitFor(() => gateway.log.counts().results >= before + 2, 10_000, 'two windows of p-7');
    expect(gateway.log.counts().results).toBe(before + 2);
    // The second window starts at block 5 (100 ms per block of 512 samples at 5120 Hz).
    expect(gateway.log.latestPerDevice({ model: 'fault-classifier' }).find((r) => r.device === 'p-7')?.windowStartMs).toBe(1_700_000_000_000 + 5 * 100);
    expect(await metric('edge_infer_window_gaps_total', 'pipeline="vibration"')).toBe(1);
  });
});
