// Scale-out by device partition, side by side in one run: two gateways that each subscribe to
// every device and keep their half (partition count 2), against two gateways each fed only its
// own devices (their halves published under topics of their own). Same messages, same bytes, same
// split; what differs is that a partitioned gateway also receives the other half and drops it.
// Two workloads: a tiny model with a window per message (the gateway's own cost per message
// dominates, so dropping shows most) and the bundled anomaly model as test/bench/gateway.bench.ts
// runs it (a 2048-sample window every two messages).
// Both pairs run in this process with the publisher. The machine is shared, so beside the wall-clock
// rate the table gives the CPU time this process spent per message (user + system, the publisher's
// share being the same for both pairs) and the broker's, which noise from other processes moves
// far less; the pairs alternate, and the last row gives the median of each round's ratio.
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import mqtt from 'mqtt';
import { type GatewayConfig, parseGatewayConfig } from '../../runtime/gateway/config';
import { Gateway } from '../../runtime/gateway/gateway';
import { partitionOf } from '../../runtime/stream';
import { startMosquitto } from '../helpers/brokers';
import { VIBRATION_DECODER, tempDir, vibrationBlock, waitFor } from '../helpers/gateway';
import { bundledModelsDir } from '../../runtime/paths';
import { speedTableModelsDir } from '../helpers/speed-table';
import { fmt, int, machine, median, table } from './table';

const DEVICES = Array.from({ length: 16 }, (_, k) => `robot-${String(k + 1).padStart(2, '0')}`);
const PER_DEVICE = 600; // blocks of 512 × 3 float32 samples (6 KB): 9600 messages per run
const BLOCK = 512;
const ROUNDS = 5;

interface Workload {
  name: string;
  models: string;
  model: string;
  /** Window and hop in samples (the card's when absent). */
  window?: number;
  hop?: number;
  /** Windows one device's stream makes. */
  windowsPerDevice: number;
}

const WORKLOADS: Workload[] = [
  { name: 'vibration-rms, a window per message', models: speedTableModelsDir(), model: 'vibration-rms', window: BLOCK, hop: BLOCK, windowsPerDevice: PER_DEVICE },
  { name: 'vibration-anomaly fp32, window 2048 hop 1024', models: bundledModelsDir(), model: 'vibration-anomaly', windowsPerDevice: Math.floor((PER_DEVICE * BLOCK - 2048) / 1024) + 1 },
];
const TICK_S = 0.01; // /proc's clock ticks (USER_HZ, 100 on Linux)

interface Message {
  topic: string;
  payload: Buffer;
}

/** The plant's stream, its messages interleaved across devices; `prefix` names the topic's first level. */
function stream(prefix: (device: string) => string): Message[] {
  const out: Message[] = [];
  for (let seq = 0; seq < PER_DEVICE; seq++) for (const d of DEVICES) out.push({ topic: `${prefix(d)}/${d}/vibration`, payload: vibrationBlock(seq, BLOCK) });
  return out;
}

/** Publishes every message at QoS 1 with at most 256 in flight; waits on acknowledgements, never spins (the CPU column counts this process). */
async function publish(url: string, messages: Message[]): Promise<void> {
  const c = mqtt.connect(url, { protocolVersion: 4, clientId: `bench-pub-${Math.random().toString(36).slice(2, 7)}` });
  await new Promise<void>((r) => c.once('connect', () => r()));
  await new Promise<void>((resolve, reject) => {
    let next = 0;
    let acked = 0;
    const send = (): void => {
      const m = messages[next++];
      c.publish(m.topic, m.payload, { qos: 1 }, (err) => {
        if (err) return reject(err);
        if (++acked === messages.length) return resolve();
        if (next < messages.length) send();
      });
    };
    for (let k = 0; k < 256 && next < messages.length; k++) send();
  });
  await new Promise<void>((r) => c.end(false, {}, () => r()));
}

/** One gateway of a workload, with a log of its own. */
function config(url: string, w: Workload, name: string, topic: string, partition?: { index: number; count: number }): GatewayConfig {
  return parseGatewayConfig(
    {
      // One client id per gateway across the runs, as a gateway restarting keeps its own: a new
      // id per run would leave a persistent session behind each time, for which the broker queues
      // every later message of its topics.
      broker: { url, protocol: 4, clientId: `bench-${name}` },
      models: w.models,
      storage: { path: path.join(tempDir('edge-infer-bench-partition-'), 'log.db') },
      http: { port: 0, host: '127.0.0.1' },
      engine: { backend: 'wasm', threads: 1 },
      scheduler: { maxBatch: 64, maxWaitMs: 5, maxQueue: 4096, policy: 'pause' },
      pipelines: [{ name: 'vibration', topic, decoder: VIBRATION_DECODER, model: w.model, variant: 'fp32', window: w.window, hop: w.hop, recordEvery: 0, partition }],
    },
    `${name} bench config`,
  );
}

/** CPU seconds (user + system) of the mosquitto this process started, from /proc. */
function brokerCpu(): number {
  for (const pid of readdirSync('/proc').filter((f) => /^\d+$/.test(f))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid … utime stime: fields after the comm's closing parenthesis.
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (comm === 'mosquitto' && Number(f[1]) === process.pid) return (Number(f[11]) + Number(f[12])) * TICK_S;
  }
  throw new Error('the mosquitto this benchmark started is not in /proc');
}

interface Run {
  /** Messages per second, first publish to the last window logged. */
  rate: number;
  /** This process's CPU (gateways and publisher), µs per message. */
  cpuUs: number;
  /** The broker's CPU, µs per message. */
  brokerUs: number;
}

/** Two gateways on `configs`: from the first publish until every window is logged. */
async function pair(url: string, configs: GatewayConfig[], messages: Message[], windows: number): Promise<Run> {
  const gateways = configs.map((c) => new Gateway(c, () => undefined));
  await Promise.all(gateways.map((g) => g.start()));
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const broker0 = brokerCpu();
  await publish(url, messages);
  await waitFor(() => gateways.reduce((n, g) => n + g.log.counts().results, 0) >= windows, 300_000, 'both gateways to log every window');
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const brokerS = brokerCpu() - broker0;
  const logged = gateways.reduce((n, g) => n + g.log.counts().results, 0);
  await Promise.all(gateways.map((g) => g.stop()));
  if (logged !== windows) throw new Error(`${logged} windows logged, ${windows} expected`);
  return { rate: messages.length / seconds, cpuUs: (cpu.user + cpu.system) / messages.length, brokerUs: (brokerS * 1e6) / messages.length };
}

async function main(): Promise<void> {
  const broker = await startMosquitto();
  // `plant` and `own-0`/`own-1`: topics of one length, so both pairs get the same bytes.
  const shared = stream(() => 'plant');
  const own = stream((d) => `own-${partitionOf(d, 2)}`);
  const split = [0, 1].map((i) => DEVICES.filter((d) => partitionOf(d, 2) === i).length);
  try {
    const rows: Array<Array<string | number>> = [];
    for (const w of WORKLOADS) {
      const windows = DEVICES.length * w.windowsPerDevice;
      const partitioned = (): Promise<Run> => pair(broker.url, [0, 1].map((index) => config(broker.url, w, `partitioned-${index}`, 'plant/{device}/vibration', { index, count: 2 })), shared, windows);
      const fedOwn = (): Promise<Run> => pair(broker.url, [0, 1].map((i) => config(broker.url, w, `own-${i}`, `own-${i}/{device}/vibration`)), own, windows);
      await fedOwn(); // warm-up: the model files, the wasm runtime, the broker's first clients
      const ratios: { rate: number[]; cpu: number[] } = { rate: [], cpu: [] };
      for (let round = 1; round <= ROUNDS; round++) {
        // Alternate which pair goes first, so a slower stretch of a shared machine hits both.
        let p: Run;
        let o: Run;
        if (round % 2) {
          p = await partitioned();
          o = await fedOwn();
        } else {
          o = await fedOwn();
          p = await partitioned();
        }
        // Each ratio reads "partitioned gets this much of fed-own's work done": rates p/o, costs o/p.
        ratios.rate.push(p.rate / o.rate);
        ratios.cpu.push(o.cpuUs / p.cpuUs);
        rows.push([w.model, round, int(o.rate), int(p.rate), fmt(p.rate / o.rate), fmt(o.cpuUs, 0), fmt(p.cpuUs, 0), fmt(o.cpuUs / p.cpuUs), fmt(o.brokerUs, 0), fmt(p.brokerUs, 0)]);
      }
      rows.push([w.model, 'median', '', '', fmt(median(ratios.rate)), '', '', fmt(median(ratios.cpu)), '', '']);
    }
    console.log(`Two gateways on one Mosquitto, ${int(shared.length)} QoS 1 messages of ${BLOCK} × 3 float32 samples from ${DEVICES.length} devices (${split.join(' + ')} per gateway); workloads: ${WORKLOADS.map((w) => w.name).join('; ')} (goal: partitioned ≥ 0.95 of fed their own)\n`);
    console.log(
      table(
        ['model', 'round', 'own: msg/s', 'partitioned: msg/s', 'rate ratio', 'own: CPU µs/msg', 'partitioned: CPU µs/msg', 'CPU ratio', 'own: broker µs/msg', 'partitioned: broker µs/msg'],
        rows,
      ),
    );
    console.log(`\nown: two gateways each fed only its own devices; partitioned: two gateways subscribed to all devices, partition count 2. Ratios: partitioned over own for rates, own over partitioned for CPU per message published (both: ≥ 0.95 is the goal). ${machine()}; both gateways and the publisher in one process.`);
  } finally {
    await broker.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
