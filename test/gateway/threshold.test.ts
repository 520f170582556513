// An alert rule's threshold replaces the card's everywhere: a threshold below the card's flags
// and alerts windows the card's would pass, and the results and alerts say which threshold held.
import * as path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../runtime/gateway/gateway';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { type TestBroker, startAedes } from '../helpers/brokers';
import { client, tempDir, waitFor } from '../helpers/gateway';
import { logModel } from '../helpers/models';
import { modelsDir, speedCard } from '../helpers/speed-models';

describe('an alert threshold that overrides the card', () => {
  let broker: TestBroker | undefined;
  let gateway: Gateway | undefined;
  let sub: MqttClient | undefined;
  let pub: MqttClient | undefined;
  afterAll(async () => {
    sub?.end(true);
    pub?.end(true);
    await gateway?.stop();
    await broker?.stop();
  });

  it('should flag and alert windows under the card\'s threshold and publish the override as the threshold', async () => {
    broker = await startAedes();
    // An anomaly model whose score is log(speed − 2); the card calls 5 and more an anomaly.
    const card = speedCard('speed-anomaly', { task: 'anomaly', threshold: 5 });
    const json = { kind: 'json', channels: ['speed'] } as const;
    const config = parseGatewayConfig(
      {
        broker: { url: broker.url, protocol: 4, clientId: 'gw-threshold', reconnectMs: 200 },
        models: modelsDir([{ card, onnx: logModel() }]),
        storage: { path: path.join(tempDir(), 'log.db') },
        http: { port: 0, host: '127.0.0.1' },
        engine: { backend: 'wasm', threads: 1 },
        pipelines: [
          { name: 'card', topic: 'card/{device}/speed', decoder: json, model: 'speed-anomaly', alerts: { consecutive: 1, cooldownS: 0 } },
          { name: 'override', topic: 'override/{device}/speed', decoder: json, model: 'speed-anomaly', results: 'override/results/{device}', alerts: { topic: 'override/alerts/{device}', consecutive: 1, cooldownS: 0, threshold: 1 } },
        ],
      },
      'threshold config',
    );
    gateway = new Gateway(config, () => undefined);
    await gateway.start();
    const published: Array<{ topic: string; body: { threshold: number; anomaly: boolean; label: string; score: number; message?: string } }> = [];
    sub = await client(broker.url);
    sub.on('message', (topic, payload) => published.push({ topic, body: JSON.parse(String(payload)) }));
    await new Promise((r) => sub!.subscribe(['edge-infer/#', 'override/results/#', 'override/alerts/#'], { qos: 1 }, r));
    pub = await client(broker.url);
    // Scores log(3), log(4), log(5): all under the card's 5, all over the override's 1.
    for (const speed of [5, 6, 7]) {
      for (const prefix of ['card', 'override']) await new Promise((r) => pub!.publish(`${prefix}/m-1/speed`, JSON.stringify({ speed }), { qos: 1 }, r));
    }
    const results = (prefix: string) => published.filter((m) => m.topic.startsWith(prefix)).map((m) => m.body);
    await waitFor(() => results('edge-infer/results/').length === 3 && results('override/results/').length === 3 && results('override/alerts/').length === 3, 10_000, 'three results of each pipeline and three alerts');
    expect(results('edge-infer/results/').every((r) => !r.anomaly && r.label === 'normal' && r.threshold === 5)).toBe(true);
    expect(results('override/results/').every((r) => r.anomaly && r.label === 'anomaly' && r.threshold === 1 && r.score < 5)).toBe(true);
    expect(results('edge-infer/alerts/')).toEqual([]);
    const alerts = gateway.log.alerts({ device: 'm-1' });
    expect(alerts).toHaveLength(3);
    expect(alerts.every((a) => a.threshold === 1 && a.label === 'anomaly')).toBe(true);
    expect(alerts[0].message).toMatch(/over threshold 1 /);
  });
});
