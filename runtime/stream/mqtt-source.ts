// The gateway's MQTT connection (mqtt.js): subscriptions with a persistent session, inbound
// messages handed over as they come with each acknowledgement held until the handler says so,
// back-pressure to the socket, inbound QoS 2 kept on disk from PUBREC on, reconnects, and an
// in-order publisher for the results.
//
// Acknowledgements are held on the byte stream (ack-gate.ts explains why there): mqtt.js gets its
// socket from our stream builder through its public MqttClient(streamBuilder, options)
// constructor, and its public handleMessage hook hands us each message. What this relies on in
// mqtt.js is pinned by test/stream/mqtt-contract.test.ts.
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { type IClientOptions, type IPublishPacket, type ISubscriptionGrant, MqttClient } from 'mqtt';
import WebSocket, { createWebSocketStream } from 'ws';
import { EdgeInferError } from '../errors';
import { AckGate, type AckHold, OrphanAcks, PUBACK, PUBCOMP } from './ack-gate';
import { type IncomingLog, PersistentIncomingStore } from './incoming-store';

export interface BrokerOptions {
  /** mqtt://host:1883, mqtts://host:8883, ws://... */
  url: string;
  /** MQTT 3.1.1 (4) or 5. Default 5. */
  protocolVersion?: 4 | 5;
  clientId: string;
  username?: string;
  password?: string;
  /** PEM contents for TLS. */
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Refuse brokers whose certificate does not check out (default true). */
  rejectUnauthorized?: boolean;
  /** Keep the session (subscriptions and unacknowledged messages) across disconnects. Default true. */
  persistentSession?: boolean;
  /** MQTT 5: how long the broker keeps the session after a disconnect, seconds (default 1 day). */
  sessionExpiryS?: number;
  keepaliveS?: number;
  /** Wait between reconnect attempts, ms (default 1000). */
  reconnectMs?: number;
  /** How long to wait for the broker's CONNACK, ms (default 10,000). */
  connectTimeoutMs?: number;
  /** How long stop() waits for a clean disconnect before dropping the connection, ms (default 2000). */
  closeTimeoutMs?: number;
  /** MQTT 5: most unacknowledged QoS 1/2 messages the broker may send at once (default 65,535). */
  receiveMaximum?: number;
  /**
   * Where inbound QoS 2 messages are kept from PUBREC until they are handled (with a persistent
   * session): without it they are kept in memory, and a crash in between loses them.
   */
  incoming?: IncomingLog;
  /**
   * Where the grants of the last SUBSCRIBE are kept (with a persistent session): a restart that
   * finds its session at the broker does not subscribe again, and still knows what it holds.
   */
  grants?: GrantLog;
  /**
   * True when an inbound QoS 0/1 message on this topic (packet id for QoS 1) is not wanted: it is
   * dropped (a QoS 1 one acknowledged) on arrival, before mqtt.js parses it or the handler sees it.
   */
  drops?: (topic: string, messageId: number | undefined) => boolean;
}

/** One filter's grant at a SUBSCRIBE: the QoS asked, the SUBACK's code (128 and up: refused), when. */
export interface Grant {
  filter: string;
  askedQos: number;
  granted: number;
  grantedMs: number;
}

/** The grants of a client's last SUBSCRIBE, kept across restarts (ResultStore.grants(clientId)). */
export interface GrantLog {
  all(): Grant[];
  /** Keeps these grants, replacing earlier ones of the same filters. */
  save(grants: readonly Grant[]): void;
  /** The broker has no session for the client: it holds no subscription. */
  clear(): void;
}

export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed';

/**
 * Handles one inbound message. The broker gets its acknowledgement (QoS 1 and 2) only when the
 * returned promise resolves, so a handler that journals the message before resolving never lets
 * an acknowledged message be lost. Messages keep coming meanwhile (so journal writes can be
 * grouped); acknowledgements go out in the order the messages came. A rejection leaves the
 * message unacknowledged: the connection is dropped and the broker delivers it again.
 */
export type MessageHandler = (topic: string, payload: Buffer, packet: IPublishPacket) => Promise<void> | void;

/**
 * Asked after each message: a promise means "no more messages until it resolves". mqtt.js then
 * stops reading from the socket, so the broker (and TCP) hold what comes next.
 */
export type FlowControl = () => Promise<void> | undefined;

export interface Subscription {
  filter: string;
  qos: 0 | 1 | 2;
}

/** The URL schemes the gateway connects with (tcp, TLS, WebSocket, WebSocket over TLS). */
export const BROKER_SCHEMES = ['mqtt', 'tcp', 'mqtts', 'ssl', 'tls', 'ws', 'wss'] as const;

/**
 * Opens one connection's socket for a broker URL: what mqtt.js would open, built here so the
 * acknowledgement gate can sit on it. With a client certificate and key, mqtt:// and ws:// go
 * over TLS, as mqtt.js does.
 */
export function openTransport(o: BrokerOptions): Duplex {
  const url = new URL(o.url);
  let scheme = url.protocol.replace(/:$/, '');
  if (o.cert && o.key) scheme = scheme === 'ws' ? 'wss' : scheme === 'mqtt' || scheme === 'tcp' ? 'mqtts' : scheme;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const secure = { ca: o.ca, cert: o.cert, key: o.key, rejectUnauthorized: o.rejectUnauthorized ?? true };
  switch (scheme) {
    case 'mqtt':
    case 'tcp':
      return net.connect({ host, port: Number(url.port || 1883) }).setNoDelay(true);
    case 'mqtts':
    case 'ssl':
    case 'tls':
      return tls.connect({ host, port: Number(url.port || 8883), servername: net.isIP(host) ? undefined : host, ...secure }).setNoDelay(true);
    case 'ws':
    case 'wss': {
      // MQTT over WebSocket (subprotocol 'mqtt'): binary frames that may cut the stream anywhere.
      const socket = new WebSocket(url, 'mqtt', scheme === 'wss' ? secure : {});
      return createWebSocketStream(socket);
    }
    default:
      throw new EdgeInferError('E_ARGUMENT', `broker url ${o.url}: expected one of ${BROKER_SCHEMES.map((p) => `${p}://`).join(', ')}`);
  }
}

/** Failures of a broker that is not there (yet): down, restarting, its host or network not up. */
const BROKER_AWAY_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN']);

/**
 * Whether a failed connection attempt is the broker being away, which retrying mends, rather than a
 * broker that answered and refused (a CONNACK's reason code) or a certificate that does not verify.
 */
function brokerAway(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return (typeof code === 'string' && BROKER_AWAY_CODES.has(code)) || /connack timeout/i.test(err.message);
}

export class MqttSource extends EventEmitter {
  private client: MqttClient | undefined;
  /** The current connection's gate: acknowledgements are held on the connection their message came on. */
  private gate: AckGate<IPublishPacket> | undefined;
  private readonly orphans = new OrphanAcks();
  private handler: MessageHandler = () => undefined;
  private subscriptions: Subscription[] = [];
  private flow: FlowControl = () => undefined;
  private incoming: PersistentIncomingStore | undefined;
  /** QoS the broker granted per filter at the last SUBSCRIBE of this process (128 and up: refused). */
  readonly granted = new Map<string, number>();
  /**
   * What the session at the broker is known to hold, per filter: the grants of the last SUBSCRIBE,
   * this process's or (read from the grant log at start) an earlier run's.
   */
  readonly remembered = new Map<string, Grant>();
  state: ConnectionState = 'disconnected';
  /** Since when the broker has been connected or, in any other state, since when it has not been (ms since the epoch). */
  stateSinceMs = Date.now();
  /** Why the last connection attempt failed or the connection broke; cleared at the next CONNACK. */
  lastError: Error | undefined;
  /** Publishes waiting for the broker's acknowledgement, to settle when the source stops. */
  private readonly inflight = new Set<(err: Error) => void>();

  constructor(readonly options: BrokerOptions) {
    super();
  }

  /**
   * Connects (and keeps reconnecting in the background); resolves at the first CONNACK or rejects on the first failure.
   *
   * Events: 'state' (ConnectionState), 'session' (sessionPresent, at each CONNACK, before any
   * message of that connection is handled), 'acknowledged' (the packets whose acknowledgements the
   * broker has read, oldest first), 'handler-error', 'connection-error' (a connection attempt
   * failed or the connection broke: repeats at every retry while the broker is away), 'dropped'
   * (the connection was dropped on purpose so the broker redelivers a message not handled),
   * 'broker-error' (the others: subscriptions refused, the grant log failing), 'subscribed'.
   */
  async start(subscriptions: Subscription[], handler: MessageHandler, flow?: FlowControl): Promise<void> {
    if (this.client) throw new EdgeInferError('E_ARGUMENT', 'the MQTT source is already started');
    this.subscriptions = subscriptions;
    this.handler = handler;
    if (flow) this.flow = flow;
    const o = this.options;
    const v5 = (o.protocolVersion ?? 5) === 5;
    const persistent = o.persistentSession ?? true;
    // Only a session the broker keeps sends PUBREL again after a crash: then the disk is worth it.
    const incoming = o.incoming && persistent ? new PersistentIncomingStore(o.incoming, (err) => this.dropConnection(err)) : undefined;
    this.incoming = incoming;
    // Without a persistent session the broker keeps no subscription from one connection to the next.
    if (persistent) for (const g of o.grants?.all() ?? []) this.remembered.set(g.filter, g);
    const properties: NonNullable<IClientOptions['properties']> = {};
    if (v5 && persistent) properties.sessionExpiryInterval = o.sessionExpiryS ?? 86_400;
    if (v5 && o.receiveMaximum !== undefined) properties.receiveMaximum = o.receiveMaximum;
    const url = new URL(o.url);
    const opts: IClientOptions = {
      clientId: o.clientId,
      protocolVersion: v5 ? 5 : 4,
      clean: !persistent,
      username: o.username ?? (url.username ? decodeURIComponent(url.username) : undefined),
      password: o.password ?? (url.password ? decodeURIComponent(url.password) : undefined),
      keepalive: o.keepaliveS ?? 30,
      reconnectPeriod: o.reconnectMs ?? 1000,
      connectTimeout: o.connectTimeoutMs ?? 10_000,
      // Subscriptions are made here, once per connection without a session (see 'connect'):
      // every SUBSCRIBE makes the broker send its retained messages again.
      resubscribe: false,
      properties: Object.keys(properties).length ? properties : undefined,
      incomingStore: incoming,
    };
    this.setState('connecting');
    // One gate per connection, on the socket mqtt.js asks for at each (re)connect.
    const build = (): AckGate<IPublishPacket> => {
      const gate = new AckGate<IPublishPacket>(openTransport(o), {
        orphans: this.orphans,
        onConfirmed: (packets) => this.emit('acknowledged', packets),
        onDropped: (err) => this.emit('dropped', err),
        drops: o.drops,
      }, o.url);
      this.gate = gate;
      return gate;
    };
    const client = new MqttClient(build as unknown as ConstructorParameters<typeof MqttClient>[0], opts);
    this.client = client;
    // mqtt.js hands messages over one at a time and reads the next once this one's callback is
    // called, writing the acknowledgement right then. The callback is called at once (unless the
    // flow control says wait), so many messages are journaled in one commit, and the gate holds
    // the acknowledgement until the handler's promise resolves; held acknowledgements leave in
    // arrival order, as MQTT wants.
    client.handleMessage = (packet, callback) => {
      // Under back-pressure the next message waits: mqtt.js reads nothing more until callback().
      const next = (): void => {
        const wait = this.flow();
        if (wait) wait.then(() => callback(), () => callback());
        else callback();
      };
      let hold: AckHold<IPublishPacket> | undefined;
      // Every QoS 1/2 message gets its hold, redeliveries too: the gate keeps a forwarded QoS 1
      // PUBLISH's place in the acknowledgement order for it.
      if (packet.qos > 0 && packet.messageId !== undefined) {
        const gate = this.gate;
        hold = gate?.hold(packet.messageId, packet.qos === 2 ? PUBCOMP : PUBACK, packet);
        // Its row on disk stays until the message is handled (mqtt.js deletes it before that).
        if (packet.qos === 2) incoming?.hold(packet.messageId);
      }
      let settled: Promise<void>;
      try {
        settled = Promise.resolve(this.handler(packet.topic, packet.payload as Buffer, packet));
      } catch (err) {
        settled = Promise.reject(err);
      }
      if (!hold) {
        settled.catch((err: unknown) => this.emit('handler-error', err));
        return next();
      }
      const h = hold;
      settled.then(
        () => {
          // Handled: the copy kept on disk goes before the broker hears of it (PUBCOMP).
          if (packet.qos === 2) incoming?.release(h.messageId);
          h.settle(true);
        },
        (err: unknown) => {
          this.emit('handler-error', err);
          h.settle(false);
        },
      );
      next();
    };
    client.on('packetreceive', (packet) => {
      // Checked here, before any PUBLISH of the new connection is handled.
      if (packet.cmd !== 'connack' || (packet.reasonCode ?? packet.returnCode ?? 0) !== 0) return;
      // A broker without our session will send no PUBREL for what was kept before: forget it.
      if (!packet.sessionPresent) incoming?.clear();
      // Nor does it hold any subscription: nothing of an earlier grant holds.
      if (!packet.sessionPresent || !persistent) this.forgetGrants();
      this.emit('session', Boolean(packet.sessionPresent) && persistent);
    });
    client.on('connect', (ack) => {
      this.lastError = undefined;
      this.setState('connected');
      // A session the broker still had already holds the subscriptions it was granted: only a
      // filter it is not known to hold (a log from before grants were kept, a new pipeline, a
      // QoS changed) is subscribed to.
      const wanted = !ack.sessionPresent || !persistent ? this.subscriptions : this.subscriptions.filter((s) => !this.holds(s));
      if (wanted.length) this.subscribe(client, wanted, v5);
      this.emit('state', this.state);
    });
    client.on('reconnect', () => {
      this.setState('connecting');
      this.emit('state', this.state);
    });
    client.on('close', () => {
      // Acknowledgements of a connection that is gone are never sent (its gate dropped them):
      // the broker redelivers those messages (marked DUP) and the handler recognises the ones it
      // already has.
      incoming?.dropHolds();
      if (this.state !== 'closed') this.setState('disconnected');
      this.emit('state', this.state);
    });
    client.on('error', (err) => {
      this.lastError = err;
      this.emit('connection-error', err);
    });
    // Started once connected, or once the first attempt failed for want of the broker (refused,
    // unreachable, no CONNACK in time): a gateway that boots before its broker (a power cut that
    // took both, a broker restarted by its own unit) starts, keeps connecting in the background and
    // says so, instead of failing until systemd gives up on it. A broker that answers and refuses
    // (bad user or password, client id not allowed) or a certificate that does not verify fails
    // the start: that is the config's to fix.
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        client.removeListener('connect', done);
        client.removeListener('error', fail);
        resolve();
      };
      const fail = (err: Error): void => {
        if (brokerAway(err)) return done();
        client.removeListener('connect', done);
        client.removeListener('error', fail);
        reject(new EdgeInferError('E_ARGUMENT', `broker ${o.url}: ${err.message}`, { cause: err }));
      };
      client.on('connect', done);
      client.on('error', fail);
    });
  }

  private setState(state: ConnectionState): void {
    if ((state === 'connected') !== (this.state === 'connected')) this.stateSinceMs = Date.now();
    this.state = state;
  }

  /** True when the session is known to hold the subscription at the QoS it asks. */
  private holds(s: Subscription): boolean {
    const g = this.remembered.get(s.filter);
    return g !== undefined && g.askedQos === s.qos && g.granted < 0x80;
  }

  private forgetGrants(): void {
    this.remembered.clear();
    try {
      this.options.grants?.clear();
    } catch (err) {
      this.emit('broker-error', err);
    }
  }

  /**
   * One SUBSCRIBE for these filters, each at its QoS; what the broker grants is kept (also in the
   * grant log) and checked. MQTT 5 asks for retained messages only where the session held no such
   * subscription yet (retain handling 1), so subscribing again takes none of them twice.
   */
  private subscribe(client: MqttClient, subscriptions: readonly Subscription[], v5: boolean): void {
    const wanted = new Map(subscriptions.map((s) => [s.filter, s.qos]));
    client.subscribe(Object.fromEntries([...wanted].map(([filter, qos]) => [filter, v5 ? { qos, rh: 1 } : { qos }])), (err, granted?: ISubscriptionGrant[]) => {
      if (err) return this.emit('broker-error', new EdgeInferError('E_ARGUMENT', `${this.options.url}: subscribing failed: ${err.message}`, { cause: err }));
      const grantedMs = Date.now();
      const grants = (granted ?? []).map((g) => ({ filter: g.topic, askedQos: wanted.get(g.topic) ?? 0, granted: g.qos, grantedMs }));
      for (const g of grants) this.remembered.set(g.filter, g);
      try {
        if ((this.options.persistentSession ?? true) && grants.length) this.options.grants?.save(grants);
      } catch (err) {
        this.emit('broker-error', err);
      }
      for (const g of granted ?? []) {
        this.granted.set(g.topic, g.qos);
        const want = wanted.get(g.topic) ?? 0;
        if (g.qos >= 0x80) this.emit('broker-error', new EdgeInferError('E_ARGUMENT', `${this.options.url}: the broker refused the subscription to '${g.topic}' (reason code 0x${g.qos.toString(16)})`));
        else if (g.qos < want) this.emit('broker-error', new EdgeInferError('E_ARGUMENT', `${this.options.url}: the broker granted QoS ${g.qos} for '${g.topic}', not the ${want} asked`));
      }
      this.emit('subscribed', granted ?? []);
    });
  }

  /** Drops the connection: the broker delivers everything unacknowledged again (and mqtt.js reconnects). */
  private dropConnection(err?: Error): void {
    if (err) this.emit('broker-error', err);
    this.incoming?.dropHolds();
    this.gate?.destroy();
  }

  /** Acknowledgements held on the current connection (for tests and metrics). */
  get heldAcks(): number {
    return this.gate?.heldCount ?? 0;
  }

  /** True while connected to the broker. */
  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /**
   * Publishes and resolves on the broker's acknowledgement (PUBACK for QoS 1, PUBCOMP for 2;
   * at once for QoS 0). Messages go out in the order they are published, also across reconnects.
   */
  publish(topic: string, payload: string | Buffer, qos: 0 | 1 | 2, retain = false): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new EdgeInferError('E_ARGUMENT', 'the MQTT source is not started'));
    return new Promise((resolve, reject) => {
      const fail = (err: Error): void => {
        this.inflight.delete(fail);
        reject(err);
      };
      this.inflight.add(fail);
      client.publish(topic, payload, { qos, retain }, (err) => {
        if (!this.inflight.delete(fail)) return; // already failed by stop()
        if (err) reject(err);
        else resolve();
      });
    });
  }

  /**
   * Disconnects; unacknowledged inbound messages stay with the broker (persistent session).
   * Publishes the broker has not acknowledged reject with E_CANCELLED (the outbox keeps them).
   */
  async stop(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.setState('closed');
    this.client = undefined;
    // A broker that is gone, or that stopped answering, must not hold up the gateway's shutdown:
    // mqtt.js waits for every publish in flight before a clean disconnect, keeps waiting for a
    // broker that is away, and with a persistent session never fails those publishes itself.
    const force = !client.connected || Object.keys(client.outgoing).length > 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        client.stream?.destroy();
        resolve();
      }, this.options.closeTimeoutMs ?? 2000);
      client.end(force, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    const cancelled = new EdgeInferError('E_CANCELLED', `${this.options.url}: the connection closed before the broker acknowledged the message`);
    for (const fail of [...this.inflight]) fail(cancelled);
    this.emit('state', this.state);
  }
}
