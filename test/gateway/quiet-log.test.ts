// A broker outage in the log of a gateway process: Mosquitto goes away for 30 s while the gateway
// retries five times a second, and the gateway's output holds a handful of lines (the broker
// unreachable, then reachable again with how long and how many attempts), not one line per retry.
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../runtime/gateway/config';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { ChildGateway, tempDir, waitFor } from '../helpers/gateway';
import { gatherModel } from '../helpers/models';
import { modelsDir, speedCard } from '../helpers/speed-models';

const OUTAGE_MS = 30_000;
const RECONNECT_MS = 200;

describe('the gateway log through a broker outage', () => {
  let broker: MosquittoBroker | undefined;
  let gateway: ChildGateway | undefined;
  afterAll(async () => {
    await gateway?.stop();
    await broker?.stop();
  });

  it('should write at most a handful of lines for a 30 s outage, the last saying the broker is back, after how long and how many attempts', async () => {
    broker = await startMosquitto();
    const dir = tempDir('edge-infer-quiet-');
    const config = parseGatewayConfig(
      {
        broker: { url: broker.url, protocol: 5, clientId: 'gw-quiet', reconnectMs: RECONNECT_MS, persistentSession: true },
        models: modelsDir([{ card: speedCard('speed-table'), onnx: gatherModel() }]),
        storage: { path: path.join(dir, 'log.db') },
        http: { port: 0, host: '127.0.0.1' },
        engine: { backend: 'wasm', threads: 1 },
        pipelines: [{ name: 'speeds', topic: 'machine/{device}/speed', decoder: { kind: 'json', channels: ['speed'] }, model: 'speed-table' }],
      },
      'quiet log test config',
    );
    gateway = new ChildGateway(config, path.join(dir, 'gateway.json'));
    await gateway.start();
    const before = gateway.output.length;

    await broker.stop();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    await broker.restart();
    const g = gateway;
    await waitFor(() => /reachable again/.test(g.output.slice(before)), 15_000, 'the line saying the broker is back');
    const port = gateway.port;
    expect(((await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { ok: boolean }).ok).toBe(true);

    const lines = gateway.output.slice(before).split('\n').filter((l) => l.trim() !== '');
    expect(lines.length, lines.join('\n')).toBeLessThanOrEqual(5);
    expect(lines[0]).toMatch(new RegExp(`^edge-infer: broker ${broker.url.replace(/[./]/g, '\\$&')} unreachable \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${broker.port}\\); retrying$`));
    const back = lines.find((l) => /reachable again/.test(l))!;
    expect(back).toMatch(/^edge-infer: broker \S+ reachable again after (29|3\d) s down \(since \d\d:\d\d:\d\d UTC\), \d+ failed attempts$/);
    // The gateway did retry all along (about five times a second), it only did not say so each time.
    const attempts = Number(/(\d+) failed attempts/.exec(back)![1]);
    expect(attempts).toBeGreaterThan((OUTAGE_MS / RECONNECT_MS) * 0.5);
  }, 90_000);
});
