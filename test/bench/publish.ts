// Publishing a prepared stream for the benchmarks: every message at QoS 1, a bounded number in flight.
import mqtt from 'mqtt';
import { waitFor } from '../helpers/gateway';

export interface Message {
  topic: string;
  payload: Buffer;
}

/** Publishes every message at QoS 1 with a bounded number in flight; `paceMs` spaces them (0: flat out). */
export async function publish(url: string, messages: Message[], paceMs = 0, onSent?: (m: Message, at: number) => void): Promise<void> {
  const c = mqtt.connect(url, { protocolVersion: 4, clientId: `bench-pub-${Math.random().toString(36).slice(2, 7)}` });
  await new Promise<void>((r) => c.once('connect', () => r()));
  let inFlight = 0;
  const start = performance.now();
  for (let i = 0; i < messages.length; i++) {
    while (inFlight >= 256) await new Promise((r) => setImmediate(r));
    if (paceMs > 0) {
      const due = start + i * paceMs;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    }
    inFlight++;
    onSent?.(messages[i], Date.now());
    c.publish(messages[i].topic, messages[i].payload, { qos: 1 }, () => inFlight--);
  }
  await waitFor(() => inFlight === 0, 60_000, 'publisher acknowledgements');
  await new Promise<void>((r) => c.end(false, {}, () => r()));
}
