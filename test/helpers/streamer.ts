// A steady stream of numbered vibration blocks from a few devices, for tests that change the
// gateway while it runs: how many blocks each device published is known exactly, so how many
// windows the log must hold is too.
import type { MqttClient } from 'mqtt';
import { encodeFloat32Block } from '../../runtime/stream/decoders';
import { publish } from './gateway';

const T0 = 1_700_000_000_000;
const RATE = 5120;

/** Block `seq` of a device: a 24.6 Hz sine of the given amplitude on three axes, 512 samples. */
export function block(seq: number, amplitude = 0.1, size = 512): Buffer {
  const ch = (phase: number) => Float32Array.from({ length: size }, (_, i) => amplitude * Math.sin(((seq * size + i) / RATE) * 2 * Math.PI * 24.6 + phase));
  return encodeFloat32Block({ vib_x: ch(0), vib_y: ch(1.57), vib_z: ch(0.5) }, { channels: ['vib_x', 'vib_y', 'vib_z'], header: { seq, timestampMs: T0 + ((seq * size) / RATE) * 1000 } });
}

/** Windows of `window` samples every `hop` in `blocks` blocks of 512. */
export function windowsOf(blocks: number, window = 2048, hop = 1024): number {
  const samples = blocks * 512;
  return samples < window ? 0 : Math.floor((samples - window) / hop) + 1;
}

export class Streamer {
  /** Blocks published (acknowledged by the broker) per device. */
  readonly sent = new Map<string, number>();
  /** Amplitude per device (a loud device overflows a guarded model). */
  readonly amplitude = new Map<string, number>();
  private running: Promise<void> | undefined;
  private stopping = false;

  constructor(
    private readonly pub: MqttClient,
    readonly devices: readonly string[],
    /** Pause between rounds (one block per device), ms. */
    private readonly everyMs = 10,
    /** When a round's publish times are wanted (latency): called as each block is handed to the client. */
    private readonly onSend?: (topic: string, payload: Buffer, atMs: number) => void,
  ) {}

  start(): void {
    this.running = (async () => {
      while (!this.stopping) {
        await Promise.all(
          this.devices.map(async (d) => {
            const seq = this.sent.get(d) ?? 0;
            const topic = `plant/${d}/vibration`;
            const payload = block(seq, this.amplitude.get(d) ?? 0.1);
            this.onSend?.(topic, payload, Date.now());
            await publish(this.pub, topic, payload);
            this.sent.set(d, seq + 1);
          }),
        );
        await new Promise((r) => setTimeout(r, this.everyMs));
      }
    })();
  }

  /** Sends `n` more rounds at once (between start/stop or instead of them). */
  async rounds(n: number): Promise<void> {
    for (let k = 0; k < n; k++) {
      for (const d of this.devices) {
        const seq = this.sent.get(d) ?? 0;
        await publish(this.pub, `plant/${d}/vibration`, block(seq, this.amplitude.get(d) ?? 0.1));
        this.sent.set(d, seq + 1);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    this.running = undefined;
    this.stopping = false;
  }

  /** Windows the log must hold per device, by what was published. */
  expected(window = 2048, hop = 1024): Map<string, number> {
    return new Map([...this.sent].map(([d, n]) => [d, windowsOf(n, window, hop)]));
  }
}
