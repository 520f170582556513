// The simulated plant streams through the gateway on a real broker (Mosquitto and the embedded
// aedes): results and alerts land in SQLite and on the results topic; an injected fault raises
// alerts; /health and /metrics answer.
import { afterAll, describe, expect, it } from 'vitest';
import { parsePlant } from '../../devices';
import { Gateway } from '../../runtime/gateway/gateway';
import { PlantPublisher } from '../../runtime/stream/plant-publisher';
import { type TestBroker, startAedes, startMosquitto } from '../helpers/brokers';
import { client, testConfig, waitFor } from '../helpers/gateway';

const plant = parsePlant({
  id: 'e2e',
  title: 'two pumps, one with a fault',
  description: 'pump-2 develops a strong imbalance after one second',
  machines: [
    // A pump the classifier reads as healthy (some machine individuals draw 1–2 % false alarms).
    { device: 'pump-1', profile: 'pump-motor', seed: 8 },
    { device: 'pump-2', profile: 'pump-motor', seed: 6, faults: [{ type: 'imbalance', onsetS: 1, rampS: 0.5, severity: 0.8 }] },
  ],
  publish: { topic: 'plant/{device}/{stream}', streams: ['vibration'], encoding: 'float32', qos: 1 },
});

const brokers: Array<[string, () => Promise<TestBroker>]> = [
  ['mosquitto', () => startMosquitto()],
  ['aedes', () => startAedes()],
];

describe.each(brokers)('the gateway on %s', (_name, start) => {
  let broker: TestBroker;
  afterAll(async () => {
    await broker?.stop();
  });

  it('should log every window of the plant, publish the results and raise alerts on the fault', async () => {
    broker = await start();
    const gateway = new Gateway(testConfig(broker.url));
    await gateway.start();
    const results: Array<{ topic: string; body: { device: string; label: string; model: string } }> = [];
    const alerts: string[] = [];
    const sub = await client(broker.url);
    sub.on('message', (topic, payload) => {
      if (topic.startsWith('edge-infer/results/')) results.push({ topic, body: JSON.parse(String(payload)) });
      if (topic.startsWith('edge-infer/alerts/')) alerts.push(topic);
    });
    await new Promise((r) => sub.subscribe(['edge-infer/results/#', 'edge-infer/alerts/#'], { qos: 1 }, r));
    const publisher = new PlantPublisher(plant, { url: broker.url, speed: 8, seconds: 6 });
    await publisher.start();
    const stats = await publisher.run();
    await publisher.stop();
    expect(stats.messages).toBe(2 * Math.floor((6 * 5120) / 512));

    // 30720 samples per device in windows of 2048, hop 1024: 29 windows; both models, two devices.
    const expected = 2 * 2 * (Math.floor((30720 - 2048) / 1024) + 1);
    await waitFor(() => gateway.log.counts().results >= expected && results.length >= expected, 30_000, `${expected} results`);
    const log = gateway.log;
    expect(log.counts().results).toBe(expected);
    expect(log.counts().deadLetters).toBe(0);
    const latest = log.latestPerDevice({ model: 'fault-classifier' });
    expect(latest.find((r) => r.device === 'pump-2')?.label).toBe('imbalance');
    expect(latest.find((r) => r.device === 'pump-1')?.label).toBe('normal');
    // The fault raises alerts; the healthy pump is flagged rarely if ever (the models' false
    // alarm rates on healthy machines are around 1 %).
    const faultAlerts = log.alerts({ device: 'pump-2' });
    expect(faultAlerts.length).toBeGreaterThan(0);
    expect(faultAlerts.filter((a) => a.model === 'fault-classifier').every((a) => a.label === 'imbalance')).toBe(true);
    expect(log.alerts({ device: 'pump-1' }).length).toBeLessThanOrEqual(1);
    expect(alerts.filter((t) => t.startsWith('edge-infer/alerts/pump-2/')).length).toBe(faultAlerts.length);
    // Results are dated by their windows: at 8× the simulated seconds run ahead of the wall clock.
    const flagged = (device: string) => log.series({ device, model: 'fault-classifier', fromMs: 0, toMs: Date.now() + 60_000, maxPoints: 1000 }).filter((p) => p.label !== 'normal').length;
    expect(flagged('pump-2')).toBeGreaterThan(20);
    expect(flagged('pump-1')).toBeLessThanOrEqual(2);
    expect(new Set(results.map((r) => r.topic))).toEqual(new Set(['edge-infer/results/pump-1/fault-classifier', 'edge-infer/results/pump-2/fault-classifier', 'edge-infer/results/pump-1/vibration-anomaly', 'edge-infer/results/pump-2/vibration-anomaly']));
    expect(results.filter((r) => r.body.device === 'pump-2' && r.body.model === 'fault-classifier').at(-1)?.body.label).toBe('imbalance');

    const health = await (await fetch(`http://127.0.0.1:${gateway.httpPort}/health`)).json();
    expect(health).toMatchObject({ ok: true, broker: 'connected' });
    const metrics = await (await fetch(`http://127.0.0.1:${gateway.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/edge_infer_inferences_total\{pipeline="classifier",model="fault-classifier",variant="fp32"\} 58/);
    expect(metrics).toMatch(/edge_infer_messages_total\{pipeline="classifier"\} 120\n/);
    expect(metrics).toMatch(/edge_infer_broker_connected 1/);
    sub.end(true);
    await gateway.stop();
  });
});
