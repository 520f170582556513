// Run by devices-memory.test.ts in a fresh process with --expose-gc: a gateway (aedes inside)
// gets one message from each of 10,000 made-up device ids, then silence. Prints the memory
// after a collection at the start, at the peak and once the silent devices are evicted.
import * as path from 'node:path';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { Gateway } from '../../runtime/gateway/gateway';
import { startEmbeddedBroker } from '../../runtime/stream/embedded-broker';
import { VIBRATION_DECODER, client, publish, tempDir, vibrationBlock, waitFor } from './gateway';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('device-flood needs node --expose-gc');
const memory = async (): Promise<number> => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};

async function main(): Promise<void> {
  const devices = Number(process.argv[2] ?? 10_000);
  const broker = await startEmbeddedBroker({ port: 0, host: '127.0.0.1' });
  const config = parseGatewayConfig(
    {
      broker: { url: broker.url, protocol: 4, clientId: 'gw-flood', reconnectMs: 200 },
      storage: { path: path.join(tempDir(), 'log.db') },
      http: { port: 0, host: '127.0.0.1' },
      engine: { backend: 'wasm', threads: 1 },
      pipelines: [{ name: 'classifier', topic: 'plant/{device}/vibration', decoder: VIBRATION_DECODER, model: 'fault-classifier', variant: 'fp32', devices: { max: devices, idleS: 10 } }],
    },
    'flood config',
  );
  const gateway = new Gateway(config, () => undefined);
  await gateway.start();
  const pub = await client(broker.url);
  // Warm up: a few devices come and go, so the start includes what any traffic allocates once.
  for (let i = 0; i < 50; i++) await publish(pub, `plant/warm-${i}/vibration`, vibrationBlock(0, 256));
  const pipeline = gateway.pipelines[0];
  await waitFor(() => pipeline.windows.size === 0 && gateway.log.journalDepth() === 0, 60_000, 'the warm-up devices to be evicted');
  const start = await memory();
  for (let i = 0; i < devices; i += 200) {
    await Promise.all(Array.from({ length: Math.min(200, devices - i) }, (_, j) => publish(pub, `plant/made-up-${i + j}/vibration`, vibrationBlock(0, 256))));
  }
  await waitFor(() => pipeline.windows.size === devices && gateway.log.journalDepth() === devices, 60_000, 'every made-up device followed and journaled');
  const followed = pipeline.windows.size;
  const peak = await memory();
  await waitFor(() => pipeline.windows.size === 0 && gateway.log.journalDepth() === 0, 60_000, 'the silent devices to be evicted');
  const end = await memory();
  console.log(JSON.stringify({ devices, followed, startMb: start / 1e6, peakMb: peak / 1e6, endMb: end / 1e6 }));
  pub.end(true);
  await gateway.stop();
  await broker.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
