// Alerts in data time: the same faulty machine streamed at real time and at 50× gives the same
// alerts at the same data times, in the gateway and through the Node-RED model node; and a
// gateway killed with kill -9 in the middle of it gives, after its replay, the same alerts again:
// none twice, none lost.
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlant } from '../../devices';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { Gateway } from '../../runtime/gateway/gateway';
import { nodeTypeOf } from '../../nodes/help';
import { PlantPublisher } from '../../runtime/stream/plant-publisher';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { ChildGateway, VIBRATION_DECODER, client, tempDir, waitFor } from '../helpers/gateway';
import { type NodeRed, brokerProbe, flowSubscribed, startNodeRed, stopNodeRed } from '../helpers/node-red-process';

/** Simulated seconds of the stream: a fan whose imbalance develops from 4 s, and a healthy pump. */
const SECONDS = 24;
/** Simulated t = 0 of every run: the same timestamps whatever the pace. */
const START_MS = Date.UTC(2026, 0, 5, 6, 0, 0);
/** Raised after 2 windows in a row, reminded every 4 s of data while it lasts. */
const ALERTS = { consecutive: 2, cooldownS: 4 };

const plantOn = (prefix: string) =>
  parsePlant({
    id: prefix,
    title: 'a fan and a pump',
    description: 'fan-7 develops an imbalance from 4 s over 8 s; pump-7 stays healthy',
    machines: [
      { device: 'fan-7', profile: 'fan', seed: 77, faults: [{ type: 'imbalance', onsetS: 4, rampS: 8, severity: 0.6 }] },
      { device: 'pump-7', profile: 'pump-motor', seed: 78 },
    ],
    publish: { topic: `${prefix}/{device}/{stream}`, streams: ['vibration'], encoding: 'float32', qos: 1 },
  });

async function publishPlant(url: string, prefix: string, speed: number): Promise<void> {
  const publisher = new PlantPublisher(plantOn(prefix), { url, speed, seconds: SECONDS, startTimeMs: START_MS });
  await publisher.start();
  await publisher.run();
  await publisher.stop();
}

const pipeline = (prefix: string) => ({ name: `${prefix}-classifier`, topic: `${prefix}/{device}/vibration`, decoder: VIBRATION_DECODER, model: 'fault-classifier', variant: 'fp32', alerts: { topic: `gw/${prefix}/{device}`, ...ALERTS } });

/** A gateway on a temp log with the classifier on each prefix's topics. */
function gatewayConfig(clientId: string, prefixes: string[]) {
  return parseGatewayConfig(
    {
      broker: { url: broker.url, protocol: 4, clientId, reconnectMs: 200 },
      storage: { path: path.join(tempDir(), 'log.db') },
      http: { port: 0, host: '127.0.0.1' },
      engine: { backend: 'wasm', threads: 1 },
      pipelines: prefixes.map(pipeline),
    },
    `${clientId} config`,
  );
}

/** A Node-RED flow per prefix: vibration in, the device from the topic, the classifier node, its alerts out on nr/<prefix>/<device>. */
function nodeRedFlow(port: number, prefixes: string[]): object[] {
  const flow: object[] = [
    { id: 'tab', type: 'tab', label: 'data time' },
    { id: 'broker', type: 'mqtt-broker', name: 'test broker', broker: '127.0.0.1', port: String(port), clientid: '', autoConnect: true, usetls: false, protocolVersion: '4', keepalive: '60', cleansession: true },
    { id: 'runtime', type: 'edge-infer-runtime', name: 'runtime', backend: 'wasm', threads: 1, weights: 'fast', log: false, dbPath: '', retentionDays: 30, recordEvery: 0 },
    ...brokerProbe('broker', 'tab'),
  ];
  for (const p of prefixes) {
    flow.push(
      { id: `in-${p}`, type: 'mqtt in', z: 'tab', topic: `${p}/+/vibration`, qos: '1', datatype: 'buffer', broker: 'broker', nl: false, rap: true, rh: 0, inputs: 0, wires: [[`dev-${p}`]] },
      { id: `dev-${p}`, type: 'change', z: 'tab', rules: [{ t: 'set', p: 'topic', pt: 'msg', to: "$split(topic, '/')[1]", tot: 'jsonata' }], wires: [[`model-${p}`]] },
      { id: `model-${p}`, type: nodeTypeOf('fault-classifier'), z: 'tab', runtime: 'runtime', variant: 'fp32', threshold: '', device: 'topic', log: false, alertConsecutive: ALERTS.consecutive, alertCooldownS: ALERTS.cooldownS, alertClearAfter: '', wires: [[], [`topic-${p}`]] },
      { id: `topic-${p}`, type: 'change', z: 'tab', rules: [{ t: 'set', p: 'topic', pt: 'msg', to: `'nr/${p}/' & payload.device`, tot: 'jsonata' }], wires: [[`out-${p}`]] },
      { id: `out-${p}`, type: 'mqtt out', z: 'tab', topic: '', qos: '1', retain: 'false', broker: 'broker', wires: [] },
    );
  }
  return flow;
}

interface AlertMessage {
  device: string;
  kind: string;
  time: string;
  timeMs: number;
  processedMs: number;
}

/** An alert as compared: the device, its kind and its data time. */
const brief = (a: { device: string; kind: string; timeMs: number }): string => `${a.device} ${a.kind} ${new Date(a.timeMs).toISOString()}`;

let broker: MosquittoBroker;
let gateway: Gateway | undefined;
let nodeRed: NodeRed | undefined;
let sub: MqttClient | undefined;
/** The log of the gateway that ran both paces. */
let firstLog = '';
const received = new Map<string, AlertMessage[]>();

beforeAll(async () => {
  broker = await startMosquitto();
}, 30_000);

afterAll(async () => {
  sub?.end(true);
  if (nodeRed) await stopNodeRed(nodeRed);
  await gateway?.stop();
  await broker?.stop();
});

describe('alerts in data time', () => {
  it('should give the same alerts at the same data times at real time and at 50×, in the gateway and through the Node-RED node', async () => {
    const config = gatewayConfig('gw-data-time', ['live', 'fast']);
    firstLog = config.storage.path;
    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    nodeRed = await startNodeRed(tempDir('edge-infer-nr-'), nodeRedFlow(broker.port, ['live', 'fast']));
    sub = await client(broker.url);
    sub.on('message', (topic, payload) => {
      const path = topic.split('/').slice(0, 2).join('/');
      received.set(path, [...(received.get(path) ?? []), JSON.parse(String(payload)) as AlertMessage]);
    });
    await new Promise((r) => sub!.subscribe(['gw/#', 'nr/#'], { qos: 1 }, r));
    // Node-RED's MQTT nodes connect in their own time: the streams start once its flow answers.
    await flowSubscribed(broker.url, nodeRed);

    await Promise.all([publishPlant(broker.url, 'live', 1), publishPlant(broker.url, 'fast', 50)]);
    // Settled: the gateway's log and both paths' alerts stop changing.
    let last = '';
    let since = Date.now();
    await waitFor(() => {
      const now = JSON.stringify([...received].map(([k, v]) => [k, v.length]));
      if (now !== last) [last, since] = [now, Date.now()];
      return received.size === 4 && Date.now() - since > 2000;
    }, 30_000, `alerts of every path (got ${[...received.keys()].join(', ')})`);

    const by = (k: string) => (received.get(k) ?? []).map(brief);
    const live = by('gw/live');
    // A developing fault: raised, then reminded once per 4 s of data, whatever the pace.
    expect(live[0]).toMatch(/^fan-7 fault /);
    expect(live.filter((a) => a.includes(' reminder ')).length).toBeGreaterThanOrEqual(2);
    expect(live.every((a) => a.startsWith('fan-7 '))).toBe(true);
    expect(by('gw/fast')).toEqual(live);
    expect(by('nr/live')).toEqual(live);
    expect(by('nr/fast')).toEqual(live);
    // The log has them at the same data times, with when they were processed beside.
    const logged = gateway.log.alerts({ device: 'fan-7' });
    expect(logged.map(brief).sort()).toEqual([...live, ...live].sort());
    expect(logged.every((a) => a.processedMs! >= START_MS)).toBe(true);
    // At 50×, 24 s of data are processed in well under 24 s: data time and processing time differ.
    const fast = received.get('gw/fast')!;
    expect(fast[fast.length - 1].processedMs - fast[0].processedMs).toBeLessThan(fast[fast.length - 1].timeMs - fast[0].timeMs);
  }, 120_000);

  it('should give the same alerts after a kill -9 in the middle of the fault and the replay of the journal: none twice, none lost', async () => {
    const reference = received.get('gw/fast');
    if (!reference?.length) throw new Error('the run at 50× above gave no alerts to compare with');
    const config = gatewayConfig('gw-data-time-crash', ['crash']);
    const child = new ChildGateway(config, path.join(path.dirname(config.storage.path), 'gateway.json'));
    await child.start();
    try {
      const count = (sql: string): number => countIn(config.storage.path, sql);
      // As many results as the pipeline at 50× logged above (half of that log's: live and fast).
      const expected = countIn(firstLog, 'SELECT COUNT(*) AS n FROM results') / 2;
      const publishing = publishPlant(broker.url, 'crash', 6);
      // Killed while the fan's fault develops: some of its alerts are logged, some are still to come.
      await waitFor(() => count("SELECT COUNT(*) AS n FROM alerts WHERE device = 'fan-7'") >= 2, 30_000, 'the first alerts of the fan');
      await child.crashAndRestart();
      await publishing;
      await waitFor(() => count('SELECT COUNT(*) AS n FROM results') >= expected, 60_000, `${expected} results after the restart`);
      const db = new Database(config.storage.path, { readonly: true });
      const alerts = db.prepare('SELECT device, kind, time_ms AS timeMs FROM alerts ORDER BY time_ms, id').all() as Array<{ device: string; kind: string; timeMs: number }>;
      const results = count('SELECT COUNT(*) AS n FROM results');
      db.close();
      expect(results).toBe(expected);
      expect(alerts.map(brief)).toEqual(reference.map(brief));
    } finally {
      await child.stop();
    }
  }, 120_000);
});

/** One count from a log file, read on a connection of its own. */
function countIn(file: string, sql: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
}
