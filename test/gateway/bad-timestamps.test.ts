// Timestamps past what a Date holds (1e16 ms, nanoseconds 1.7e18, −1e16, a uint64 −1) in float32
// headers, JSON and Sparkplug, sent at QoS 1 between good messages to a real gateway (a child
// process on Mosquitto with a persistent session). Each becomes one dead letter naming the field
// and the value, counted at /metrics; the good messages' windows are logged; the process stays
// up; and after kill -9 and a restart on the same log nothing is replayed into a crash and
// nothing is dead-lettered twice.
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import * as protobuf from 'protobufjs';
import { afterAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { encodeFloat32Block } from '../../runtime/stream/decoders';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { VIBRATION_DECODER, client, publish, spawnGateway, tempDir, vibrationBlock, waitFor } from '../helpers/gateway';
import { speedTableModelsDir } from '../helpers/speed-table';
import { encodePayload, rawData } from '../stream/decoders/sparkplug-helpers';

const T0 = 1_700_000_000_000;
const EXPECTED = 'expected ms since the Unix epoch within ±1e15';
const spark = (type: string, device?: string): string => `spBv1.0/plant/${type}/edge-1${device ? `/${device}` : ''}`;
/** uint64 exactly as a publisher writing int64 −1 puts it on the wire. */
const U64_MINUS_ONE = (protobuf.util.Long as typeof import('long')).fromString('18446744073709551615', true) as unknown as number;

/** A 512-sample vibration block with the edge-infer header stating `timestampMs`. */
function blockAt(seq: number, timestampMs: number): Buffer {
  const x = new Float32Array(512).fill(0.1);
  return encodeFloat32Block({ vib_x: x, vib_y: x, vib_z: x }, { channels: VIBRATION_DECODER.channels, header: { seq, timestampMs } });
}

interface Letter {
  topic: string;
  device: string | null;
  code: string;
  reason: string;
}

/** What the log holds, read beside the running gateway (WAL: readers do not block its writer). */
function readLog(file: string): { letters: Letter[]; results: Array<{ model: string; device: string; start: number }> } {
  const db = new Database(file, { readonly: true });
  try {
    return {
      letters: db.prepare('SELECT topic, device, code, reason FROM dead_letters ORDER BY id').all() as Letter[],
      results: db.prepare('SELECT model, device, window_start_ms AS start FROM results ORDER BY id').all() as Array<{ model: string; device: string; start: number }>,
    };
  } finally {
    db.close();
  }
}

async function metric(port: number, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('timestamps past what a Date holds, through a live gateway', () => {
  let broker: MosquittoBroker | undefined;
  let pub: MqttClient | undefined;
  let running: ReturnType<typeof spawnGateway> | undefined;
  afterAll(async () => {
    running?.proc.kill('SIGKILL');
    pub?.end(true);
    await broker?.stop();
  });

  it('should dead-letter each one naming the field and the value, keep running, and replay none of them after kill -9', async () => {
    broker = await startMosquitto();
    const dir = tempDir('edge-infer-bad-ts-');
    const db = path.join(dir, 'log.db');
    const config = parseGatewayConfig(
      {
        broker: { url: broker.url, protocol: 4, clientId: 'gw-bad-ts', reconnectMs: 100, persistentSession: true },
        models: speedTableModelsDir(),
        storage: { path: db },
        http: { port: 0 },
        engine: { backend: 'wasm', threads: 1 },
        pipelines: [
          { name: 'vibration', topic: 'plant/{device}/vibration', decoder: VIBRATION_DECODER, model: 'fault-classifier', variant: 'fp32' },
          { name: 'json', topic: 'machine/{device}/speed', decoder: { kind: 'json', field: 'speed', channels: ['speed'], timestampField: 'ts' }, model: 'speed-table' },
          { name: 'sparkplug', topic: 'spBv1.0/plant/#', decoder: { kind: 'sparkplug', channels: { Speed: 'speed' } }, model: 'speed-table' },
        ],
      },
      'bad-timestamps config',
    );
    const configFile = path.join(dir, 'gateway.json');
    const start = async (): Promise<number> => {
      running = spawnGateway(config, configFile);
      const gw = running;
      const port = await waitFor(() => /http:\/\/127\.0\.0\.1:(\d+)\/health/.exec(gw.output())?.[1], 30_000, 'the gateway to start').catch((err: Error) => {
        throw new Error(`${err.message}; output: ${gw.output()}`);
      });
      return Number(port);
    };
    let port = await start();
    pub = await client(broker.url, { clientId: 'bad-ts-publisher' });
    const send = (topic: string, payload: string | Uint8Array) => publish(pub!, topic, payload, 1);

    // float32: blocks 0-3 make the first window (2048 samples), 4 and 5 the second (hop 1024);
    // the bad blocks come between them, numbered on, so no gap is seen.
    for (let seq = 0; seq < 4; seq++) await send('plant/p-1/vibration', vibrationBlock(seq, 512, T0));
    await send('plant/p-1/vibration', blockAt(4, 1e16));
    await send('plant/p-1/vibration', blockAt(4, 1.7e18));
    await send('plant/p-1/vibration', blockAt(4, -1e16));
    for (let seq = 4; seq < 6; seq++) await send('plant/p-1/vibration', vibrationBlock(seq, 512, T0));

    // JSON: one sample per window; good, bad, good ...
    const speed = (ts: string, v: number) => `{"ts": ${ts}, "speed": ${v}}`;
    await send('machine/m-1/speed', speed(String(T0), 1));
    await send('machine/m-1/speed', speed('1e16', 2));
    await send('machine/m-1/speed', speed(String(T0 + 1000), 2));
    await send('machine/m-1/speed', speed('1.7e18', 2));
    await send('machine/m-1/speed', speed('-1e16', 2));
    await send('machine/m-1/speed', speed('"+275760-09-13T00:00:00.000Z"', 2));
    await send('machine/m-1/speed', speed(String(T0 + 2000), 3));

    // Sparkplug: births first, then DATA with good and bad payload and metric timestamps.
    await send(spark('NBIRTH'), Buffer.from(encodePayload({ timestamp: T0, seq: 0, metrics: [{ name: 'bdSeq', type: 'UInt64', value: 0 }] })));
    await send(spark('DBIRTH', 'pump-1'), Buffer.from(encodePayload({ timestamp: T0, seq: 1, metrics: [{ name: 'Speed', alias: 7, type: 'Float', value: 0 }] })));
    await send(spark('DDATA', 'pump-1'), rawData(2, [{ alias: 7, floatValue: 1 }], T0));
    await send(spark('DDATA', 'pump-1'), rawData(3, [{ alias: 7, floatValue: 2 }], 1e16));
    await send(spark('DDATA', 'pump-1'), rawData(4, [{ alias: 7, floatValue: 2, timestamp: 1.7e18 }], T0 + 1000));
    await send(spark('DDATA', 'pump-1'), rawData(5, [{ alias: 7, floatValue: 2 }], U64_MINUS_ONE));
    await send(spark('DDATA', 'pump-1'), rawData(6, [{ alias: 7, floatValue: 3 }], T0 + 2000));

    const settled = await waitFor(
      () => {
        // A gateway that died will not get there: say so at once, with what it printed.
        if (running!.proc.exitCode !== null) throw new Error(`the gateway exited with ${running!.proc.exitCode}: ${running!.output()}`);
        const log = readLog(db);
        return log.letters.length >= 10 && log.results.length >= 2 + 3 + 2 ? log : undefined;
      },
      30_000,
      '10 dead letters and 7 results',
    ).catch((err: Error): never => {
      throw new Error(`${err.message}; output: ${running!.output()}`);
    });
    if (!settled) throw new Error('unreachable: waitFor resolves with a log');
    expect(running!.proc.exitCode, running!.output()).toBeNull();
    // In arrival order within each pipeline; the pipelines run side by side.
    const order = ['plant/', 'machine/', 'spBv1.0/'];
    const reasons = order.flatMap((prefix) => settled.letters.filter((l) => l.topic.startsWith(prefix)).map((l) => `${l.code} ${l.device} ${l.reason}`));
    const named = (field: string, value: string) => expect.stringContaining(`${field} is ${value}, ${EXPECTED}`);
    expect(reasons).toEqual([
      named('plant/p-1/vibration: header timestampMs (float64 at byte offset 8)', '10000000000000000 (1e16)'),
      expect.stringMatching(/^E_INPUT_VALUE p-1 .*header timestampMs .* is 1700000000000000000 \(1\.7e18\), .*1\.7e18 looks like nanoseconds \(as nanoseconds it is 2023-11-14T22:13:20\.000Z\)/),
      named('header timestampMs (float64 at byte offset 8)', '-10000000000000000 (-1e16)'),
      named("machine/m-1/speed: field 'ts' (timestampField)", '10000000000000000 (1e16)'),
      expect.stringMatching(/^E_INPUT_VALUE m-1 .*field 'ts' \(timestampField\) is 1700000000000000000 \(1\.7e18\), .*looks like nanoseconds/),
      named("field 'ts' (timestampField)", '-10000000000000000 (-1e16)'),
      named("field 'ts' (timestampField)", '"+275760-09-13T00:00:00.000Z"'),
      named('spBv1.0/plant/DDATA/edge-1/pump-1: payload timestamp', '10000000000000000 (1e16)'),
      expect.stringMatching(/metric 'Speed' \(alias 7\) timestamp is 1700000000000000000 \(1\.7e18\), .*looks like nanoseconds/),
      named('payload timestamp', '18446744073709551615 (1.8446744073709552e19)'),
    ]);
    expect(settled.letters.every((l) => l.code === 'E_INPUT_VALUE')).toBe(true);

    // The good messages' windows, and nothing else.
    const results = settled.results.map((r) => `${r.model} ${r.device} ${r.start}`).sort();
    expect(results).toEqual(
      [
        `fault-classifier p-1 ${T0}`,
        `fault-classifier p-1 ${T0 + 200}`,
        `speed-table m-1 ${T0}`,
        `speed-table m-1 ${T0 + 1000}`,
        `speed-table m-1 ${T0 + 2000}`,
        `speed-table pump-1 ${T0}`,
        `speed-table pump-1 ${T0 + 2000}`,
      ].sort(),
    );

    // Counted at /metrics, and the gateway is healthy.
    for (const pipeline of ['vibration', 'json', 'sparkplug']) {
      const n = pipeline === 'json' ? 4 : 3;
      expect(await metric(port, 'edge_infer_dead_letters_total', `pipeline="${pipeline}",code="E_INPUT_VALUE"`)).toBe(n);
      expect(await metric(port, 'edge_infer_decode_errors_total', `pipeline="${pipeline}"`)).toBe(n);
    }
    expect(await metric(port, 'edge_infer_messages_total', 'pipeline="vibration"')).toBe(9);
    expect(((await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { ok: boolean }).ok).toBe(true);

    // kill -9 and a restart on the same log: what is journaled is replayed (the births, the
    // blocks that wait for the next window), none of it a bad timestamp.
    const victim = running!;
    victim.proc.kill('SIGKILL');
    await victim.exited;
    port = await start();
    await send('machine/m-1/speed', speed(String(T0 + 3000), 1));
    await send(spark('DDATA', 'pump-1'), rawData(7, [{ alias: 7, floatValue: 1 }], T0 + 3000));
    await waitFor(() => readLog(db).results.length >= 9, 30_000, 'the results of two good messages after the restart').catch((err: Error) => {
      throw new Error(`${err.message}; output: ${running!.output()}`);
    });
    const after = readLog(db);
    expect(running!.proc.exitCode, running!.output()).toBeNull();
    expect(after.letters).toHaveLength(10);
    expect(after.results).toHaveLength(9);
    for (const pipeline of ['vibration', 'json', 'sparkplug']) expect(await metric(port, 'edge_infer_dead_letters_total', `pipeline="${pipeline}",code="E_INPUT_VALUE"`)).toBe(0);
    expect(running!.output()).not.toMatch(/RangeError|Invalid time value|unhandled/i);

    running!.proc.kill('SIGTERM');
    expect(await running!.exited).toBe(0);
    running = undefined;
  });
});
