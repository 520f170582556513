// The fuzz run: 100,000 random and mutated payloads per decoder (float32, JSON, Sparkplug B)
// through a live gateway (a child process, on Mosquitto, at QoS 1). The process stays up; every
// message is accounted for (messages counted = published, no duplicates); every payload the
// decoder refuses (a reference decoder in this process, fed the same messages in the same order,
// says which) is exactly one dead letter with that reason and a code; and memory is flat: the
// gateway's resident set at the end is within 15 % of what it was after the warm-up.
// EDGE_INFER_FUZZ_SEED=<n> draws other payloads; EDGE_INFER_FUZZ_COUNT=<n> sends n per decoder.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { EdgeInferError } from '../../runtime/errors';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { createDecoder, type DecoderConfig } from '../../runtime/stream/decoders';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { client, spawnGateway, tempDir, waitFor } from '../helpers/gateway';
import { speedTableModelsDir } from '../helpers/speed-table';
import { type FuzzMessage, float32Messages, jsonMessages, sparkplugMessages } from './fuzz-payloads';

const PER_DECODER = Number(process.env.EDGE_INFER_FUZZ_COUNT ?? 100_000);
const SEED = Number(process.env.EDGE_INFER_FUZZ_SEED ?? 20_261_206);
/** Messages published before waiting for their PUBACKs (the broker's, not the gateway's). */
const BATCH = 2000;
/** The publisher stays at most this many messages ahead of the gateway, so the broker's queue stays small. */
const LEAD = 20_000;
/**
 * Memory after the warm-up: the highest resident set while the gateway takes this share of the
 * messages (from 10 %). The resident set swings by a tenth as V8 collects; the highest value of a
 * stretch is steady where one sample is not.
 */
const WARM_UP = 0.3;
const RSS_GROWTH_ALLOWED = 1.15;

interface Lane {
  name: 'vibration' | 'json' | 'sparkplug';
  topic: string;
  decoder: DecoderConfig;
  model: string;
  extra?: Record<string, unknown>;
  messages: Generator<FuzzMessage>;
  /** What the reference decoder made of the published messages. */
  published: number;
  refused: number;
  reasons: Map<string, number>;
  /** Topics of the lane's pipeline start with this. */
  prefix: string;
  /** Messages published on topics no pipeline takes. */
  unrouted: number;
  /** Messages published to the Sparkplug NCMD topic by this test (the gateway's own rebirth requests come on top). */
  ncmds: number;
}

const ALL_LANES: Lane[] = [
  {
    name: 'vibration',
    topic: 'plant/{device}/vibration',
    decoder: { kind: 'float32', channels: ['vib_x', 'vib_y', 'vib_z'], header: 'edge-infer' },
    // Windows of one block (16 samples): a block that decodes is a window, so a time the decoder
    // let through that the results cannot hold would show at once.
    model: 'vibration-rms',
    messages: float32Messages(SEED, PER_DECODER),
    prefix: 'plant/',
    unrouted: 0,
    published: 0,
    refused: 0,
    reasons: new Map(),
    ncmds: 0,
  },
  {
    name: 'json',
    topic: 'machine/{device}/speed',
    decoder: { kind: 'json', channels: ['speed'], timestampField: 'ts' },
    model: 'speed-table',
    // Windows of 4 samples: most that decode fill one; fewer results to log than one per sample.
    extra: { window: 4, hop: 4 },
    messages: jsonMessages(SEED, PER_DECODER),
    prefix: 'machine/',
    unrouted: 0,
    published: 0,
    refused: 0,
    reasons: new Map(),
    ncmds: 0,
  },
  {
    name: 'sparkplug',
    topic: 'spBv1.0/plant/#',
    decoder: { kind: 'sparkplug', channels: { Speed: 'speed' } },
    // One sample per window, the card's.
    model: 'speed-table',
    messages: sparkplugMessages(SEED, PER_DECODER),
    prefix: 'spBv1.0/plant/',
    unrouted: 0,
    published: 0,
    refused: 0,
    reasons: new Map(),
    ncmds: 0,
  },
];

/** EDGE_INFER_FUZZ_LANES=json,sparkplug runs only those. */
const lanes = ALL_LANES.filter((l) => !process.env.EDGE_INFER_FUZZ_LANES || process.env.EDGE_INFER_FUZZ_LANES.split(',').includes(l.name));

/** The device the pipeline gives a decoder: the {device} level, or the topic itself. */
function deviceOf(lane: Lane, topic: string): string {
  return lane.topic.includes('{device}') ? topic.split('/')[1] : topic;
}

/** Resident set of a process in bytes (Linux). */
function rssOf(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function scrape(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const counter = (m: Map<string, number>, name: string, pipeline: string): number => m.get(`${name}{pipeline="${pipeline}"}`) ?? 0;

/** Messages a pipeline took, less the redeliveries it recognised (a dropped connection makes some). */
const taken = (m: Map<string, number>, l: Lane): number => counter(m, 'edge_infer_messages_total', l.name) - counter(m, 'edge_infer_duplicate_messages_total', l.name);

describe('the gateway fuzzed through its decoders', () => {
  let broker: MosquittoBroker | undefined;
  let pub: MqttClient | undefined;
  let observer: MqttClient | undefined;
  let running: ReturnType<typeof spawnGateway> | undefined;
  afterAll(async () => {
    running?.proc.kill('SIGKILL');
    pub?.end(true);
    observer?.end(true);
    await broker?.stop();
  });

  it(`should stay up, dead-letter every payload its decoders refuse, count every message, and keep memory flat over ${PER_DECODER} payloads per decoder`, { timeout: 300_000 }, async () => {
    console.log(`gateway fuzz: seed ${SEED} (EDGE_INFER_FUZZ_SEED), ${PER_DECODER} payloads per decoder`);
    const started = performance.now();
    broker = await startMosquitto();
    const dir = tempDir('edge-infer-fuzz-');
    const db = path.join(dir, 'log.db');
    const config = parseGatewayConfig(
      {
        // A persistent session, as in production: should the connection drop, the broker redelivers.
        broker: { url: broker.url, protocol: 4, clientId: 'gw-fuzz', reconnectMs: 200, persistentSession: true },
        models: speedTableModelsDir(),
        storage: { path: db },
        http: { port: 0 },
        engine: { backend: 'wasm', threads: 1 },
        // The reference is the decoders alone: timestamps anywhere in their bound (±1e15 ms) pass
        // the windows' bound on clocks ahead of the gateway's (tested in test/stream/device-windows.test.ts).
        pipelines: lanes.map((l) => ({ name: l.name, topic: l.topic, decoder: l.decoder, model: l.model, variant: 'fp32', resultsQos: 0, devices: { maxAheadS: 2e12 }, ...l.extra })),
      },
      'fuzz config',
    );
    running = spawnGateway(config, path.join(dir, 'gateway.json'));
    const gw = running;
    const fail = (what: string): never => {
      throw new Error(`${what} (seed ${SEED}); gateway output: ${gw.output().slice(-4000)}`);
    };
    const port = Number(await waitFor(() => /http:\/\/127\.0\.0\.1:(\d+)\/health/.exec(gw.output())?.[1], 60_000, 'the gateway to start').catch(() => fail('the gateway did not start')));
    const pid = gw.proc.pid as number;

    // The gateway's own rebirth requests arrive on the Sparkplug pipeline's topic too.
    observer = await client(broker.url, { clientId: 'fuzz-observer' });
    let ncmdsSeen = 0;
    observer.on('message', () => ncmdsSeen++);
    await new Promise((r) => observer!.subscribe('spBv1.0/plant/NCMD/#', { qos: 1 }, r));

    pub = await client(broker.url, { clientId: 'fuzz-publisher' });
    const references = new Map(lanes.map((l) => [l.name, createDecoder(l.decoder)]));
    const total = lanes.length * PER_DECODER;
    let published = 0;
    let tookSoFar = 0;
    let lastTaken = -1;
    let lastProgress = performance.now();
    let warmRss: number | undefined;
    const rssSeries: string[] = [];
    const took = async (): Promise<number> => {
      const m = await scrape(port);
      return lanes.reduce((n, l) => n + taken(m, l), 0);
    };

    // The reference's errors need no stack traces: they cost more than the decoding itself.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    let acks: Promise<void>[] = [];
    const waits = { acks: 0, scrapes: 0 };
    for (let open = lanes.length; open > 0; ) {
      open = 0;
      for (const lane of lanes) {
        const next = lane.messages.next();
        if (next.done) continue;
        open++;
        const { topic, payload } = next.value;
        // Published all the same, but no pipeline subscribes to it (spBv1.0/STATE/...): not the gateway's.
        if (!topic.startsWith(lane.prefix)) {
          lane.unrouted++;
          acks.push(new Promise<void>((resolve, reject) => pub!.publish(topic, payload, { qos: 1 }, (err) => (err ? reject(err) : resolve()))));
          continue;
        }
        // What the gateway's decoder must make of it: the reference sees the same messages in the same order.
        try {
          references.get(lane.name)!.decode(payload, { topic, device: deviceOf(lane, topic) });
        } catch (err) {
          if (!(err instanceof EdgeInferError)) fail(`the reference ${lane.name} decoder threw ${String(err)} on ${topic} ${payload.subarray(0, 64).toString('hex')}`);
          lane.refused++;
          const e = err as EdgeInferError;
          const key = `${e.code} ${e.message}`;
          lane.reasons.set(key, (lane.reasons.get(key) ?? 0) + 1);
        }
        if (topic.includes('/NCMD/')) lane.ncmds++;
        lane.published++;
        published++;
        acks.push(new Promise<void>((resolve, reject) => pub!.publish(topic, payload, { qos: 1 }, (err) => (err ? reject(err) : resolve()))));
      }
      if (acks.length >= BATCH || open === 0) {
        const tAck = performance.now();
        await Promise.all(acks);
        waits.acks += performance.now() - tAck;
        acks = [];
        if (gw.proc.exitCode !== null) fail(`the gateway exited with ${gw.proc.exitCode} after ${published} messages`);
        // Keep at most LEAD messages in flight to the gateway; note memory once it is warm. A
        // scrape costs the gateway a little: only when the lead may have run out, or warm-up is near.
        // One look at memory per batch: cheap, and the warm-up's highest value needs many.
        const rss = rssOf(pid);
        if (tookSoFar >= 0.1 * total && tookSoFar < WARM_UP * total) warmRss = Math.max(warmRss ?? 0, rss);
        if (published % 30_000 < BATCH) rssSeries.push(`${published}: ${mb(rss)}`);
        if (published - tookSoFar < LEAD / 2 && open > 0) continue;
        for (;;) {
          const tScrape = performance.now();
          tookSoFar = await took();
          waits.scrapes += performance.now() - tScrape;
          if (published - tookSoFar <= LEAD || open === 0) break;
          if (tookSoFar !== lastTaken) {
            lastTaken = tookSoFar;
            lastProgress = performance.now();
          } else if (performance.now() - lastProgress > 30_000) {
            const health = await (await fetch(`http://127.0.0.1:${port}/health`)).text();
            const m = await scrape(port);
            const per = lanes.map((l) => `${l.name} ${counter(m, 'edge_infer_messages_total', l.name)} of ${l.published}`).join(', ');
            fail(`the gateway took no message for 30 s, at ${tookSoFar} of ${published} published (${per}); /health: ${health}`);
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
    Error.stackTraceLimit = stackTraceLimit;
    const publishedAt = performance.now();

    // Drained: every message counted, every refusal a committed dead letter.
    const ownNcmds = lanes.reduce((n, l) => n + l.ncmds, 0);
    const decodeLetters = (): Array<{ topic: string; code: string; reason: string }> => {
      const file = new Database(db, { readonly: true });
      try {
        // Windows that failed are dead letters too, under the pipeline's topic pattern: not decode errors.
        return file.prepare("SELECT topic, code, reason FROM dead_letters WHERE topic NOT LIKE '%{device}%' AND topic NOT LIKE '%#%'").all() as Array<{ topic: string; code: string; reason: string }>;
      } finally {
        file.close();
      }
    };
    const refusedTotal = lanes.reduce((n, l) => n + l.refused, 0);
    let metrics = new Map<string, number>();
    let state = '';
    await waitFor(
      async () => {
        if (gw.proc.exitCode !== null) fail(`the gateway exited with ${gw.proc.exitCode}`);
        metrics = await scrape(port);
        const counted = lanes.every((l) => taken(metrics, l) >= l.published && counter(metrics, 'edge_infer_decode_errors_total', l.name) >= l.refused);
        const logged = decodeLetters().length;
        state = `${lanes.map((l) => `${l.name}: ${taken(metrics, l)}/${l.published} messages, ${counter(metrics, 'edge_infer_decode_errors_total', l.name)}/${l.refused} decode errors`).join('; ')}; ${logged}/${refusedTotal} dead letters logged`;
        return counted && logged >= refusedTotal;
      },
      120_000,
      'every message counted and every refusal logged',
    ).catch((err: Error) => fail(`${err.message}: ${state}`));
    // Idle a moment, so that the last measurement is not taken mid-collection.
    await new Promise((r) => setTimeout(r, 2000));
    const endRss = rssOf(pid);
    rssSeries.push(`end: ${mb(endRss)}`);
    metrics = await scrape(port);
    const gatewayNcmds = ncmdsSeen - ownNcmds;
    const seconds = (performance.now() - started) / 1000;

    const figures = lanes.map((l) => {
      // The reasons by kind (their text up to the first number or quote), most common first.
      const kinds = new Map<string, number>();
      for (const [reason, n] of l.reasons) {
        const kind = reason.replace(/^(E_\w+) [^:]*: /, '$1 ').split(/[\d'"(]/)[0].trim();
        kinds.set(kind, (kinds.get(kind) ?? 0) + n);
      }
      const top = [...kinds].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, n]) => `    ${n} × ${k}`);
      return [`${l.name}: ${l.published} published to it, ${l.refused} refused (dead letters), ${l.published - l.refused} decoded; ${l.unrouted} on topics no pipeline takes`, ...top].join('\n');
    });
    console.log(
      [
        `gateway fuzz (seed ${SEED}): ${published} messages in ${seconds.toFixed(1)} s (published in ${((publishedAt - started) / 1000).toFixed(1)} s)`,
        ...figures,
        `duplicates recognised: ${lanes.map((l) => `${l.name} ${counter(metrics, 'edge_infer_duplicate_messages_total', l.name)}`).join(', ')}; rebirth requests from the gateway: ${gatewayNcmds}; the publisher waited ${(waits.acks / 1000).toFixed(1)} s for the broker's acknowledgements, ${(waits.scrapes / 1000).toFixed(1)} s for /metrics`,
        `broker connection lost by the gateway: ${(gw.output().match(/Keepalive timeout|connection (lost|closed)/gi) ?? []).length} time(s)`,
        `gateway RSS: after warm-up (highest while taking ${10}-${WARM_UP * 100} % of the messages) ${warmRss ? mb(warmRss) : '?'}, at the end ${mb(endRss)}; ${rssSeries.join(', ')}`,
      ].join('\n'),
    );

    // Up and healthy.
    expect(gw.proc.exitCode, gw.output().slice(-4000)).toBeNull();
    expect(((await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { ok: boolean }).ok).toBe(true);
    expect(gw.output()).not.toMatch(/RangeError|TypeError|ReferenceError|unhandled|uncaught/i);

    // Every message accounted for: counted once, none taken for a duplicate, each refusal a dead letter.
    const letters = decodeLetters();
    for (const lane of lanes) {
      const extra = lane.name === 'sparkplug' ? gatewayNcmds : 0;
      // Counted once each: a redelivery after a dropped connection is counted, and recognised as one.
      expect(taken(metrics, lane), `${lane.name} messages less duplicates (seed ${SEED})`).toBe(lane.published + extra);
      expect(counter(metrics, 'edge_infer_decode_errors_total', lane.name), `${lane.name} decode errors (seed ${SEED})`).toBe(lane.refused);
      const mine = letters.filter((l) => l.topic.startsWith(lane.prefix));
      expect(mine.length, `${lane.name} dead letters (seed ${SEED})`).toBe(lane.refused);
      expect(mine.filter((l) => !l.reason || !/^E_[A-Z_]+$/.test(l.code))).toEqual([]);
      // The same reasons, as many times each, as the reference decoder gave.
      const got = new Map<string, number>();
      for (const l of mine) got.set(`${l.code} ${l.reason}`, (got.get(`${l.code} ${l.reason}`) ?? 0) + 1);
      const differ = [...new Set([...got.keys(), ...lane.reasons.keys()])].filter((k) => got.get(k) !== lane.reasons.get(k)).slice(0, 5);
      expect(differ, `${lane.name} reasons that differ from the reference decoder's (seed ${SEED})`).toEqual([]);
    }

    // Memory is flat: what the warm-up brought in is all it needs.
    // (A short run, EDGE_INFER_FUZZ_COUNT below 20,000, has too few batches to see a warm-up in.)
    if (PER_DECODER >= 20_000) {
      expect(warmRss, 'a resident set measured during the warm-up').toBeDefined();
      expect(endRss, `RSS ${rssSeries.join(', ')}`).toBeLessThanOrEqual((warmRss as number) * RSS_GROWTH_ALLOWED);
    }

    gw.proc.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    running = undefined;
  });
});
