// The gateway's MQTT connection (mqtt.js): subscriptions with a persistent session, inbound
// messages handed over one at a time with the acknowledgement held until the handler says so,
// reconnects, and an in-order publisher for the results.
import { EventEmitter } from 'node:events';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { EdgeInferError } from '../errors';

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
}

export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed';

/**
 * Handles one inbound message. The broker gets its acknowledgement (QoS 1 and 2) when the
 * returned promise resolves, and the next message is handed over only then, so a handler that
 * journals the message before resolving never lets an acknowledged message be lost. A rejection
 * leaves the message unacknowledged: the broker delivers it again after a reconnect.
 */
export type MessageHandler = (topic: string, payload: Buffer, packet: IPublishPacket) => Promise<void> | void;

export interface Subscription {
  filter: string;
  qos: 0 | 1 | 2;
}

export class MqttSource extends EventEmitter {
  private client: MqttClient | undefined;
  private handler: MessageHandler = () => undefined;
  private subscriptions: Subscription[] = [];
  state: ConnectionState = 'disconnected';
  /** Messages handed to the handler. */
  received = 0;

  constructor(readonly options: BrokerOptions) {
    super();
  }

  /** Connects (and keeps reconnecting in the background); resolves at the first CONNACK or rejects on the first failure. */
  async start(subscriptions: Subscription[], handler: MessageHandler): Promise<void> {
    if (this.client) throw new EdgeInferError('E_ARGUMENT', 'the MQTT source is already started');
    this.subscriptions = subscriptions;
    this.handler = handler;
    const o = this.options;
    const v5 = (o.protocolVersion ?? 5) === 5;
    const persistent = o.persistentSession ?? true;
    const opts: IClientOptions = {
      clientId: o.clientId,
      protocolVersion: v5 ? 5 : 4,
      clean: !persistent,
      username: o.username,
      password: o.password,
      ca: o.ca,
      cert: o.cert,
      key: o.key,
      rejectUnauthorized: o.rejectUnauthorized ?? true,
      keepalive: o.keepaliveS ?? 30,
      reconnectPeriod: o.reconnectMs ?? 1000,
      connectTimeout: o.connectTimeoutMs ?? 10_000,
      // The session on the broker keeps the subscriptions; resubscribing after a reconnect is
      // harmless and covers brokers that lost the session.
      resubscribe: true,
      properties: v5 && persistent ? { sessionExpiryInterval: o.sessionExpiryS ?? 86_400 } : undefined,
    };
    this.state = 'connecting';
    const client = mqtt.connect(o.url, opts);
    this.client = client;
    // mqtt.js hands messages over strictly one at a time and sends the PUBACK (or PUBREC) only
    // when this callback is called: the acknowledgement waits on the handler.
    client.handleMessage = (packet, callback) => {
      this.received++;
      let settled: Promise<void>;
      try {
        settled = Promise.resolve(this.handler(packet.topic, packet.payload as Buffer, packet));
      } catch (err) {
        settled = Promise.reject(err);
      }
      settled.then(
        () => callback(),
        (err: unknown) => {
          this.emit('handler-error', err);
          callback(err instanceof Error ? err : new Error(String(err)));
        },
      );
    };
    client.on('connect', (ack) => {
      this.state = 'connected';
      // A session the broker still had already holds the subscriptions.
      if (!ack.sessionPresent || !persistent) {
        client.subscribe(this.subscriptions.map((s) => s.filter), { qos: 1 }, () => undefined);
        for (const s of this.subscriptions) client.subscribe(s.filter, { qos: s.qos });
      }
      this.emit('state', this.state);
    });
    client.on('reconnect', () => {
      this.state = 'connecting';
      this.emit('state', this.state);
    });
    client.on('close', () => {
      if (this.state !== 'closed') this.state = 'disconnected';
      this.emit('state', this.state);
    });
    client.on('error', (err) => this.emit('broker-error', err));
    await new Promise<void>((resolve, reject) => {
      const ok = (): void => {
        client.removeListener('error', fail);
        resolve();
      };
      const fail = (err: Error): void => {
        client.removeListener('connect', ok);
        reject(new EdgeInferError('E_ARGUMENT', `broker ${o.url}: ${err.message}`, { cause: err }));
      };
      client.once('connect', ok);
      client.once('error', fail);
    });
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
    return new Promise((resolve, reject) => client.publish(topic, payload, { qos, retain }, (err) => (err ? reject(err) : resolve())));
  }

  /** Disconnects; unacknowledged messages stay with the broker (persistent session). */
  async stop(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.state = 'closed';
    this.client = undefined;
    // force: a broker that is gone must not hold up the gateway's shutdown.
    await new Promise<void>((resolve) => client.end(!client.connected, {}, () => resolve()));
    this.emit('state', this.state);
  }
}
