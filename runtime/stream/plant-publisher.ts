// Publishes a simulated plant to an MQTT broker: one MachineSimulator per machine, every stream's
// blocks (or samples) in simulated-time order across machines, paced to wall time × speed. Each
// device/stream numbers its messages from 0 (`seq`), so a subscriber can tell that every one
// arrived, and stamps them with the time of their first sample.
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { type DeviceStream, MachineSimulator, type Plant, parsePlant, plantTopic, profileById, publishedStreams } from '../../devices';
import { EdgeInferError } from '../errors';
import { encodeFloat32Block, encodeJsonSamples } from './decoders';

export interface PlantPublisherOptions {
  /** Broker URL: mqtt://host:1883, mqtts://..., ws://... */
  url: string;
  /** QoS of every message; default the plant's `publish.qos`. */
  qos?: 0 | 1 | 2;
  /** Simulated seconds per wall second: 1 real time, 10 ten times faster, 0 as fast as the broker acknowledges. Default 1. */
  speed?: number;
  /** Simulated seconds to publish; messages whose samples end after it are not sent. Default unlimited. */
  seconds?: number;
  /** Stop after this many messages. Default unlimited. */
  maxMessages?: number;
  /** Default `edge-infer-plant-<id>-<random>`. */
  clientId?: string;
  /** MQTT 3.1.1 (4, default: every broker, aedes included) or 5. */
  protocolVersion?: 4 | 5;
  /** Messages published and not yet acknowledged at once (bounds memory when the broker is slow). Default 256. */
  maxInFlight?: number;
  /** Wall-clock time of simulated t = 0, ms since the epoch (the messages' timestamps). Default: when run() starts. */
  startTimeMs?: number;
  /** Wait between reconnect attempts, ms. Default 1000. */
  reconnectMs?: number;
  /** How long stop() waits for unacknowledged messages before disconnecting anyway, ms. Default 2000. */
  stopGraceMs?: number;
}

export interface PublishStats {
  /** Messages the broker acknowledged (QoS 0: written to the connection). */
  messages: number;
  /** Payload bytes of those messages. */
  bytes: number;
  /** Acknowledged messages per topic. */
  perTopic: Record<string, number>;
  /** Highest acknowledged seq per `device/stream`. */
  lastSeq: Record<string, number>;
  /** Simulated time covered by the messages published, s. */
  simulatedSeconds: number;
  /** Wall time from run() to its end, s. */
  wallSeconds: number;
  /** Messages handed to the client that the broker never acknowledged (stopped before it did). */
  unacknowledged: number;
  /** The most messages that were awaiting acknowledgement at once. */
  peakInFlight: number;
}

/** One device's stream: its own message counter and clock. */
interface Lane {
  index: number;
  device: string;
  key: string;
  topic: string;
  sim: MachineSimulator;
  stream: DeviceStream;
  channels: string[];
  /** Samples per message. */
  size: number;
  json: boolean;
  /** Next message number. */
  seq: number;
  /** Messages this lane may send (from `seconds`). */
  limit: number;
}

/** Simulated time a message is ready to go: when its last sample was taken. */
function dueS(lane: Lane, seq: number): number {
  return (seq * lane.size + lane.size - 1) / lane.stream.sampleRate;
}

/** A binary min-heap of lanes by due time (then lane order), so ties go machine by machine. */
class LaneQueue {
  private readonly heap: Lane[] = [];

  private less(a: Lane, b: Lane): boolean {
    const da = dueS(a, a.seq);
    const db = dueS(b, b.seq);
    return da < db || (da === db && a.index < b.index);
  }

  push(lane: Lane): void {
    const h = this.heap;
    h.push(lane);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  peek(): Lane | undefined {
    return this.heap[0];
  }

  pop(): Lane | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

export class PlantPublisher {
  readonly plant: Plant;
  private readonly opts: Required<Pick<PlantPublisherOptions, 'speed' | 'maxInFlight' | 'protocolVersion' | 'reconnectMs' | 'stopGraceMs'>> & PlantPublisherOptions;
  private readonly qos: 0 | 1 | 2;
  private readonly lanes: Lane[] = [];
  private readonly queue = new LaneQueue();
  private client: MqttClient | undefined;
  private running: Promise<PublishStats> | undefined;
  private stopping = false;
  /** stop()'s wait for acknowledgements is over. */
  private graceOver = false;
  /** The loop sleeps until an acknowledgement frees a slot (not until a due time). */
  private awaitingAck = false;
  private inFlightCount = 0;
  private sent = 0;
  private wake: (() => void) | undefined;
  private wallStart = 0;
  private wallEnd: number | undefined;
  private readonly counters: PublishStats = { messages: 0, bytes: 0, perTopic: {}, lastSeq: {}, simulatedSeconds: 0, wallSeconds: 0, unacknowledged: 0, peakInFlight: 0 };

  constructor(plant: Plant, options: PlantPublisherOptions) {
    this.plant = parsePlant(plant, `plant '${(plant as { id?: unknown } | undefined)?.id ?? '?'}'`);
    const o = options ?? ({} as PlantPublisherOptions);
    const fail = (what: string): never => {
      throw new EdgeInferError('E_ARGUMENT', `PlantPublisher options: ${what}`);
    };
    if (typeof o.url !== 'string' || !/^(mqtts?|wss?|tcp|ssl):\/\//.test(o.url)) fail(`url: expected a broker URL such as mqtt://localhost:1883, got ${JSON.stringify(o.url)}`);
    if (o.qos !== undefined && o.qos !== 0 && o.qos !== 1 && o.qos !== 2) fail(`qos: expected 0, 1 or 2, got ${String(o.qos)}`);
    if (o.speed !== undefined && !(Number.isFinite(o.speed) && o.speed >= 0)) fail(`speed: expected a number ≥ 0 (0 = as fast as the broker takes it), got ${String(o.speed)}`);
    if (o.seconds !== undefined && !(o.seconds > 0)) fail(`seconds: expected a number > 0, got ${String(o.seconds)}`);
    if (o.maxMessages !== undefined && !(Number.isSafeInteger(o.maxMessages) && o.maxMessages >= 1)) fail(`maxMessages: expected a whole number ≥ 1, got ${String(o.maxMessages)}`);
    if (o.maxInFlight !== undefined && !(Number.isSafeInteger(o.maxInFlight) && o.maxInFlight >= 1 && o.maxInFlight <= 65535)) fail(`maxInFlight: expected a whole number from 1 to 65535, got ${String(o.maxInFlight)}`);
    if (o.protocolVersion !== undefined && o.protocolVersion !== 4 && o.protocolVersion !== 5) fail(`protocolVersion: expected 4 (MQTT 3.1.1) or 5, got ${String(o.protocolVersion)}`);
    this.opts = { speed: 1, maxInFlight: 256, protocolVersion: 4, reconnectMs: 1000, stopGraceMs: 2000, ...o };
    this.qos = o.qos ?? this.plant.publish.qos;

    for (const m of this.plant.machines) {
      const profile = profileById(m.profile);
      const sim = new MachineSimulator(profile, { seed: m.seed, faults: m.faults ?? [] });
      for (const stream of publishedStreams(profile, this.plant.publish.streams)) {
        const size = stream.publish.mode === 'block' ? stream.publish.blockSize : 1;
        const total = o.seconds === undefined ? Infinity : Math.floor(o.seconds * stream.sampleRate + 1e-9);
        const lane: Lane = {
          index: this.lanes.length,
          device: m.device,
          key: `${m.device}/${stream.name}`,
          topic: plantTopic(this.plant, m, stream.name),
          sim,
          stream,
          channels: stream.channels.map((c) => c.name),
          size,
          json: stream.publish.mode === 'sample' || this.plant.publish.encoding === 'json',
          seq: 0,
          limit: Math.floor(total / size),
        };
        this.lanes.push(lane);
        if (lane.limit > 0) this.queue.push(lane);
      }
    }
  }

  /** Topics this publisher sends on, one per device and stream. */
  get topics(): string[] {
    return this.lanes.map((l) => l.topic);
  }

  /** Messages awaiting the broker's acknowledgement now. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** Messages handed to the MQTT client so far. */
  get published(): number {
    return this.sent;
  }

  /** Counters so far (a copy). */
  get stats(): PublishStats {
    const wallEnd = this.wallEnd ?? (this.wallStart ? performance.now() : 0);
    return {
      ...this.counters,
      perTopic: { ...this.counters.perTopic },
      lastSeq: { ...this.counters.lastSeq },
      wallSeconds: this.wallStart ? (wallEnd - this.wallStart) / 1000 : 0,
      unacknowledged: this.sent - this.counters.messages,
    };
  }

  /** Connects; resolves on the broker's CONNACK, rejects (E_ARGUMENT naming the URL) if the first attempt fails. */
  async start(): Promise<void> {
    if (this.client) return;
    const o = this.opts;
    const clientOptions: IClientOptions = {
      clientId: o.clientId ?? `edge-infer-plant-${this.plant.id}-${Math.random().toString(16).slice(2, 10)}`,
      protocolVersion: o.protocolVersion,
      clean: true,
      reconnectPeriod: o.reconnectMs,
      connectTimeout: 10_000,
      keepalive: 30,
    };
    const client = mqtt.connect(o.url, clientOptions);
    this.client = client;
    // Errors after the first connection are reconnects in waiting; mqtt.js retries on its own.
    client.on('error', () => undefined);
    try {
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error): void => {
          client.removeListener('connect', ok);
          client.removeListener('error', done);
          client.removeListener('close', closed);
          if (err) reject(err);
          else resolve();
        };
        const ok = (): void => done();
        const closed = (): void => done(new Error('connection closed before the broker accepted it'));
        client.once('connect', ok);
        client.once('error', done);
        client.once('close', closed);
      });
    } catch (err) {
      this.client = undefined;
      client.end(true);
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new EdgeInferError('E_ARGUMENT', `broker ${o.url}: cannot connect (${reason})`, { cause: err });
    }
  }

  /**
   * Publishes until `seconds` or `maxMessages` is reached, or stop() is called, then waits for
   * the broker to acknowledge what was sent (stop(): at most stopGraceMs). Connects first if
   * start() was not called.
   */
  run(): Promise<PublishStats> {
    this.running ??= this.loop();
    return this.running;
  }

  /** Stops publishing, waits (briefly) for acknowledgements, disconnects. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.poke();
    let grace: NodeJS.Timeout | undefined;
    if (this.running) {
      grace = setTimeout(() => {
        this.graceOver = true;
        this.poke();
      }, this.opts.stopGraceMs);
      await this.running.catch(() => undefined);
    }
    clearTimeout(grace);
    const client = this.client;
    this.client = undefined;
    if (client) await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Waits at most `ms` (forever when not finite), or until poke(). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = Number.isFinite(ms) ? setTimeout(() => this.poke(), Math.max(0, ms)) : undefined;
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async ackOrStop(): Promise<void> {
    this.awaitingAck = true;
    try {
      await this.sleep(Infinity);
    } finally {
      this.awaitingAck = false;
    }
  }

  private async loop(): Promise<PublishStats> {
    // Stopped before it ran: nothing to publish, and no connection to open.
    if (this.stopping) return this.stats;
    await this.start();
    const { speed, maxInFlight } = this.opts;
    const maxMessages = this.opts.maxMessages ?? Infinity;
    const epochMs = this.opts.startTimeMs ?? Date.now();
    this.wallStart = performance.now();
    try {
      while (!this.stopping && this.sent < maxMessages) {
        const lane = this.queue.peek();
        if (!lane) break;
        if (speed > 0) {
          // Whatever is due goes out now; then one timer until the next message is due.
          const waitMs = (dueS(lane, lane.seq) * 1000) / speed - (performance.now() - this.wallStart);
          if (waitMs > 0) {
            await this.sleep(waitMs);
            continue;
          }
        }
        if (this.inFlightCount >= maxInFlight) {
          await this.ackOrStop();
          continue;
        }
        this.queue.pop();
        this.send(lane, epochMs);
        lane.seq++;
        if (lane.seq < lane.limit) this.queue.push(lane);
        // Let acknowledgements and socket writes in now and then when running flat out.
        if (this.sent % 64 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      }
      while (this.inFlightCount > 0 && !(this.stopping && this.graceOver)) await this.ackOrStop();
    } finally {
      this.wallEnd = performance.now();
    }
    return this.stats;
  }

  private send(lane: Lane, epochMs: number): void {
    const client = this.client;
    if (!client) throw new EdgeInferError('E_ARGUMENT', 'the plant publisher is stopped');
    const seq = lane.seq;
    const block = lane.sim.next(lane.stream.name, lane.size);
    const fs = lane.stream.sampleRate;
    // From the sample index, not t0 × 1000, so that whole-ms timestamps stay whole.
    const timestampMs = epochMs + (seq * lane.size * 1000) / fs;
    let payload: Buffer;
    if (!lane.json) {
      payload = encodeFloat32Block(block.channels, { channels: lane.channels, header: { seq: seq % 0x1_0000_0000, timestampMs } });
    } else if (lane.stream.publish.mode === 'sample') {
      const doc: Record<string, number> = { seq, timestamp: timestampMs };
      for (const c of lane.channels) doc[c] = block.channels[c][0];
      payload = Buffer.from(JSON.stringify(doc), 'utf8');
    } else {
      payload = encodeJsonSamples(block.channels, { channels: lane.channels, field: 'channels', meta: { seq, timestamp: timestampMs, sampleRate: fs } });
    }
    const endS = ((seq + 1) * lane.size) / fs;
    this.sent++;
    this.inFlightCount++;
    if (this.inFlightCount > this.counters.peakInFlight) this.counters.peakInFlight = this.inFlightCount;
    client.publish(lane.topic, payload, { qos: this.qos }, (err) => {
      this.inFlightCount--;
      if (!err) {
        const c = this.counters;
        c.messages++;
        c.bytes += payload.byteLength;
        c.perTopic[lane.topic] = (c.perTopic[lane.topic] ?? 0) + 1;
        if ((c.lastSeq[lane.key] ?? -1) < seq) c.lastSeq[lane.key] = seq;
        if (endS > c.simulatedSeconds) c.simulatedSeconds = endS;
      }
      if (this.awaitingAck) this.poke();
    });
  }
}
