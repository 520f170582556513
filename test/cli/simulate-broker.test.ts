import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plantById } from '../../devices';
import { packageRoot } from '../../runtime/paths';
import { cli, expectOneLine } from '../helpers/cli';
import { type TestBroker, startAedes } from '../helpers/brokers';

let broker: TestBroker;
let dir: string;

beforeAll(async () => {
  broker = await startAedes();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edge-infer-simulate-'));
});
afterAll(async () => {
  await broker?.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

/** Counts what arrives on plant/# per topic. */
async function subscribe(url: string): Promise<{ client: MqttClient; perTopic: Map<string, number>; total(): number }> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
  const perTopic = new Map<string, number>();
  client.on('message', (topic) => perTopic.set(topic, (perTopic.get(topic) ?? 0) + 1));
  await client.subscribeAsync('plant/#', { qos: 1 });
  return { client, perTopic, total: () => [...perTopic.values()].reduce((a, b) => a + b, 0) };
}

async function until(done: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) throw new Error(`not done within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}


describe('edge-infer simulate --broker', () => {
  it('should publish a built-in plant and print a one-line summary', async () => {
    const sub = await subscribe(broker.url);
    try {
      const r = await cli('simulate', '--broker', broker.url, '--plant', 'demo', '--speed', '0', '--seconds', '2');
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      // 6 machines × (20 vibration blocks + 2 temperature samples)
      expectOneLine(r.out, new RegExp(`^published 132 messages \\([\\d.]+ [kM]B\\) on 12 topics of plant 'demo' to ${broker.url.replace(/\./g, '\\.')}: 2\\.0 s simulated in [\\d.]+ s, [\\d,]+ msg/s$`));
      await until(() => sub.total() === 132);
      expect(sub.perTopic.get('plant/pump-2/vibration')).toBe(20);
      expect(sub.perTopic.get('plant/compressor-1/temperature')).toBe(2);
    } finally {
      await sub.client.endAsync();
    }
  });

  it('should publish a plant file, with --qos and --max-messages', async () => {
    const file = path.join(dir, 'two.json');
    const demo = plantById('demo');
    await fs.writeFile(file, JSON.stringify({ ...demo, id: 'two', machines: demo.machines.slice(0, 2), publish: { ...demo.publish, streams: ['vibration'] } }));
    const r = await cli('simulate', '--broker', broker.url, '--plant', file, '--qos', '0', '--speed', '0', '--max-messages', '7');
    expect(r.code).toBe(0);
    expectOneLine(r.out, /^published 7 messages .* on 2 topics of plant 'two'/);
  });

  it('should refuse --plant without --broker on one line', async () => {
    const r = await cli('simulate', '--plant', 'demo');
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expectOneLine(r.err, /option '--plant <id\|file>' needs --broker <url>/);
  });

  it('should refuse --broker without --plant, and with file options, on one line', async () => {
    const alone = await cli('simulate', '--broker', broker.url);
    expect(alone.code).toBe(2);
    expectOneLine(alone.err, /option '--broker <url>' needs --plant <id\|file>.*demo, line/);
    const withOutput = await cli('simulate', '--broker', broker.url, '--plant', 'demo', '-o', path.join(dir, 'x.jsonl'));
    expect(withOutput.code).toBe(2);
    expectOneLine(withOutput.err, /'--broker <url>' cannot be used with option '-o, --output <file>'/);
  });

  it('should name the file and field of a bad plant, and an unreachable broker, on one line', async () => {
    const file = path.join(dir, 'bad.json');
    await fs.writeFile(file, JSON.stringify({ ...plantById('demo'), publish: { encoding: 'csv' } }));
    const bad = await cli('simulate', '--broker', broker.url, '--plant', file);
    expect(bad.code).toBe(1);
    expectOneLine(bad.err, new RegExp(`${file.replace(/[.]/g, '\\.')}: invalid plant: publish\\.encoding: expected one of "float32"\\|"json", got "csv"`));
    const gone = await cli('simulate', '--broker', 'mqtt://127.0.0.1:1', '--plant', 'demo');
    expect(gone.code).toBe(1);
    expectOneLine(gone.err, /^edge-infer: broker mqtt:\/\/127\.0\.0\.1:1: cannot connect \(ECONNREFUSED\)$/);
  });

  it('should stop publishing cleanly on Ctrl-C and still print its summary', async () => {
    const sub = await subscribe(broker.url);
    // A real process and a real SIGINT: the command line runs from source through tsx.
    const args = ['node', 'edge-infer', 'simulate', '--broker', broker.url, '--plant', 'demo', '--speed', '1'];
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', `require('./runtime/cli').main(${JSON.stringify(args)}).then((c) => { process.exitCode = c; })`], {
      cwd: packageRoot(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await until(() => sub.total() >= 12, 15_000);
      child.kill('SIGINT');
      const t = performance.now();
      const code = await exited;
      expect(performance.now() - t).toBeLessThan(3000);
      expect(err).toBe('');
      expect(code).toBe(0);
      expectOneLine(out, /^stopped: published [\d,]+ messages .* of plant 'demo'/);
      const published = Number(/published ([\d,]+) messages/.exec(out)?.[1].replace(/,/g, ''));
      await until(() => sub.total() >= published);
      expect(sub.total()).toBe(published);
    } finally {
      child.kill('SIGKILL');
      await sub.client.endAsync();
    }
  });
});
