// The outbox publisher: results and alerts leave the SQLite outbox in order, and leave it only
// when the broker acknowledges them. While the broker is away they wait in the outbox (bounded by
// its size limit); when it is back they go out, oldest first.
import type { ResultStore } from '../store';
import type { MqttSource } from './mqtt-source';

export interface PublisherOptions {
  /** Messages published and not yet acknowledged at once (default 64). */
  inflight?: number;
  /** Wait between attempts while the broker is unreachable, ms (default 500). */
  retryMs?: number;
}

export class OutboxPublisher {
  private running = false;
  private wake: (() => void) | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  /** Messages the broker acknowledged. */
  published = 0;

  constructor(
    private readonly store: ResultStore,
    private readonly source: MqttSource,
    private readonly options: PublisherOptions = {},
    private readonly onPublished: (n: number) => void = () => undefined,
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
      for (let i = 0; i < results.length; i++) {
        if (results[i].status !== 'fulfilled') break; // keep order: the rest waits for the next round
        this.store.outboxAck(batch[i].id);
        acked++;
      }
      this.published += acked;
      if (acked) this.onPublished(acked);
      if (acked < batch.length) await this.sleep(retryMs);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.kick();
    await this.loop;
    this.running = false;
  }
}
