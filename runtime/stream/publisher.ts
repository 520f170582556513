// The outbox publisher: results and alerts leave the SQLite outbox in order, and leave it only
// when the broker acknowledges them. While the broker is away they wait in the outbox (bounded by
// its size limit); when it is back they go out, oldest first. A message the broker refuses with
// a reason code (MQTT 5: not authorized, quota exceeded, ...) would be refused again on every
// try: it becomes a dead letter naming the code, leaves the outbox, and the others go on.
import type { ResultStore } from '../store';
import type { MqttSource } from './mqtt-source';

export interface PublisherOptions {
  /** Messages published and not yet acknowledged at once (default 64). */
  inflight?: number;
  /** Wait between attempts while the broker is unreachable, ms (default 500). */
  retryMs?: number;
}

export interface PublisherEvents {
  /** Messages the broker acknowledged. */
  published?: (n: number) => void;
  /** A message the broker refused, with its reason code. */
  refused?: (reasonCode: number) => void;
}

/** The reason code of a publish the broker refused, or undefined for anything else (a lost connection). */
export function refusalCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && code >= 0x80 && code <= 0xff ? code : undefined;
}

export class OutboxPublisher {
  private running = false;
  private wake: (() => void) | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly store: ResultStore,
    private readonly source: MqttSource,
    private readonly options: PublisherOptions = {},
    private readonly events: PublisherEvents = {},
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Something new is in the outbox (or the broker came back). */
  kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    const inflight = this.options.inflight ?? 64;
    const retryMs = this.options.retryMs ?? 500;
    while (!this.stopped) {
      if (!this.source.connected) {
        await this.sleep(retryMs);
        continue;
      }
      const batch = this.store.outboxPeek(inflight);
      if (batch.length === 0) {
        await this.sleep(1000);
        continue;
      }
      // mqtt.js sends in call order and resends unacknowledged messages first after a
      // reconnect, so the broker sees them in outbox order; acknowledgements come back in order.
      const results = await Promise.allSettled(batch.map((m) => this.source.publish(m.topic, typeof m.payload === 'string' ? m.payload : Buffer.from(m.payload), m.qos, m.retain)));
      let acked = 0;
      let done = 0;
      for (let i = 0; i < results.length; i++) {
        const r = results[i];
        const m = batch[i];
        if (r.status === 'rejected') {
          const code = refusalCode(r.reason);
          // Not sent (the connection went): keep order, the rest waits for the next round.
          if (code === undefined) break;
          const said = r.reason instanceof Error ? r.reason.message.replace(/^Publish error: /, '') : 'refused';
          const reason = `the broker refused the message published on '${m.topic}' (QoS ${m.qos}): reason code 0x${code.toString(16)} (${said})`;
          const payload = typeof m.payload === 'string' ? new TextEncoder().encode(m.payload) : m.payload;
          // Logged before it leaves the outbox: a crash in between publishes it again, it is not lost.
          const logged = await this.store.commit({ deadLetters: [{ timeMs: Date.now(), topic: m.topic, device: null, reason, code: 'E_PUBLISH_REFUSED', payload }] }).then(() => true, () => false);
          if (!logged) break;
          this.events.refused?.(code);
        } else {
          acked++;
        }
        this.store.outboxAck(m.id);
        done++;
      }
      if (acked) this.events.published?.(acked);
      if (done < batch.length) await this.sleep(retryMs);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.kick();
    await this.loop;
    this.running = false;
  }
}
