// The 'sd' profile on Mosquitto over MQTT 5: the simulated plant streams in at 8× real time
// (about 160 messages a second, far past the 20 in flight Mosquitto allows without the client's
// Receive Maximum); every window is logged, the log commits about once a second, and only the
// messages left waiting for a window that never comes (the stream's tail) are ever journaled.
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePlant } from '../../devices';
import { Gateway } from '../../runtime/gateway/gateway';
import { PlantPublisher } from '../../runtime/stream/plant-publisher';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { testConfig, waitFor } from '../helpers/gateway';

const plant = parsePlant({
  id: 'sd',
  title: 'two pumps',
  description: 'two healthy pumps streaming vibration blocks',
  machines: [
    { device: 'pump-1', profile: 'pump-motor', seed: 8 },
    { device: 'pump-2', profile: 'pump-motor', seed: 6 },
  ],
  publish: { topic: 'plant/{device}/{stream}', streams: ['vibration'], encoding: 'float32', qos: 1 },
});

describe("the gateway with profile 'sd'", () => {
  let broker: MosquittoBroker | undefined;
  let gateway: Gateway | undefined;
  afterAll(async () => {
    await gateway?.stop();
    await broker?.stop();
  });

  it('should log every window with about one commit a second, journaling only the messages still waiting at the end', async () => {
    broker = await startMosquitto();
    const config = testConfig(broker.url, { profile: 'sd', broker: { url: broker.url, protocol: 5, clientId: 'gw-sd', reconnectMs: 200 } });
    gateway = new Gateway(config);
    await gateway.start();
    const commits = () => gateway!.log.stats.commits + gateway!.log.journalStats.commits;
    const c0 = commits();
    const t0 = Date.now();
    const publisher = new PlantPublisher(plant, { url: broker.url, speed: 8, seconds: 6 });
    await publisher.start();
    const stats = await publisher.run();
    await publisher.stop();
    expect(stats.messages).toBe(120);

    // 30720 samples per device in windows of 2048, hop 1024: 29 windows; two models, two devices.
    const expected = 2 * 2 * (Math.floor((30720 - 2048) / 1024) + 1);
    await waitFor(() => gateway!.log.counts().results >= expected, 30_000, `${expected} results`);
    const seconds = (Date.now() - t0) / 1000;
    expect(gateway.log.counts().results).toBe(expected);
    expect(gateway.log.counts().deadLetters).toBe(0);
    expect(commits() - c0).toBeLessThanOrEqual(Math.ceil(seconds) + 2);

    // The tail: per device and model, the blocks after the last window's start wait for samples
    // that never come; after a second they are journaled, so the broker gets their acknowledgements.
    await waitFor(() => gateway!.log.journalDepth() > 0, 5000, 'the tail journaled');
    const file = new Database(config.storage.path, { readonly: true });
    try {
      const everJournaled = (file.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").pluck().get() as number | undefined) ?? 0;
      // 60 blocks per device of 512 samples; the last window starts at block 56: blocks 58 and 59 wait.
      expect(everJournaled).toBe(gateway.log.journalDepth());
      expect(everJournaled).toBeLessThanOrEqual(2 * 2 * 4);
    } finally {
      file.close();
    }
  }, 90_000);
});
