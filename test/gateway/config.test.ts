// The gateway's config file: `edge-infer run --config` refuses a bad one with one line naming
// the file and the field, and relative paths in a good one are taken from the file's folder.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SD_BATCH_ROWS, loadGatewayConfig, logWriting, parseGatewayConfig } from '../../runtime/gateway/config';
import { packageRoot } from '../../runtime/paths';
import { tempDir } from '../helpers/gateway';

/** Runs `edge-infer run --config <file>` in a child process, as a user would. */
function run(configFile: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(packageRoot(), 'test', 'helpers', 'edge-infer-main.ts'), 'run', '--config', configFile, '--quiet', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => (stdout += String(d)));
  proc.stderr.on('data', (d) => (stderr += String(d)));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

const PIPELINE = { name: 'vib', topic: 'plant/{device}/vibration', decoder: { kind: 'float32', channels: ['vib_x', 'vib_y', 'vib_z'] }, model: 'fault-classifier' };
// Nothing listens on port 1: a config that got past its checks would fail on the broker instead.
const BASE = { broker: { url: 'mqtt://127.0.0.1:1' }, storage: { path: 'log/edge-infer.db' }, http: { port: 0, host: '127.0.0.1' } };

const yaml = (lines: string[]): string => `${lines.join('\n')}\n`;

const cases: Array<{ what: string; file: string; text: string; field: RegExp }> = [
  {
    what: 'an unknown field (YAML)',
    file: 'gateway.yaml',
    text: yaml(['broker:', '  url: mqtt://127.0.0.1:1', '  keepAlive: 30', 'pipelines:', '  - name: vib', '    topic: plant/{device}/vibration', '    decoder: { kind: float32, channels: [vib_x, vib_y, vib_z] }', '    model: fault-classifier']),
    field: /broker: unknown field 'keepAlive'/,
  },
  {
    what: 'an unknown field in a pipeline (JSON)',
    file: 'gateway.json',
    text: JSON.stringify({ ...BASE, pipelines: [{ ...PIPELINE, windw: 2048 }] }),
    field: /pipelines\[0\]: unknown field 'windw'/,
  },
  {
    what: 'a bad topic pattern (JSON)',
    file: 'gateway.json',
    text: JSON.stringify({ ...BASE, pipelines: [{ ...PIPELINE, topic: 'plant/#/vibration' }] }),
    field: /pipelines\[0\]\.topic: .*'#' must be a whole level, and the last/,
  },
  {
    what: 'a bad topic pattern (YAML)',
    file: 'gateway.yml',
    text: yaml(['pipelines:', '  - name: vib', '    topic: plant/{machine}/vibration', '    decoder: { kind: float32, channels: [vib_x] }', '    model: fault-classifier']),
    field: /pipelines\[0\]\.topic: .*the only placeholder is \{device\}/,
  },
  {
    what: 'an unknown decoder (YAML)',
    file: 'gateway.yaml',
    text: yaml(['pipelines:', '  - name: vib', '    topic: plant/{device}/vibration', '    decoder: { kind: csv }', '    model: fault-classifier']),
    field: /pipelines\[0\]\.decoder\.kind: .*'json' \| 'float32' \| 'sparkplug'/,
  },
  {
    what: 'a decoder setting of the wrong type (JSON)',
    file: 'gateway.json',
    text: JSON.stringify({ ...BASE, pipelines: [{ ...PIPELINE, decoder: { kind: 'float32', channels: 'vib_x' } }] }),
    field: /pipelines\[0\]\.decoder\.channels: expected array/,
  },
  {
    what: 'no pipelines (YAML)',
    file: 'gateway.yaml',
    text: yaml(['broker:', '  url: mqtt://127.0.0.1:1']),
    field: /: pipelines: /,
  },
  {
    what: 'an empty list of pipelines (JSON)',
    file: 'gateway.json',
    text: JSON.stringify({ ...BASE, pipelines: [] }),
    field: /: pipelines: expected at least one pipeline/,
  },
  {
    what: 'an unknown model id (YAML)',
    file: 'gateway.yaml',
    text: yaml(['broker: { url: "mqtt://127.0.0.1:1" }', 'storage: { path: log/edge-infer.db }', 'pipelines:', '  - name: vib', '    topic: plant/{device}/vibration', '    decoder: { kind: float32, channels: [vib_x, vib_y, vib_z] }', '    model: fault-clasifier']),
    field: /pipelines\[0\]\.model: no model 'fault-clasifier'.*fault-classifier/,
  },
  {
    what: 'an unknown model id in the second pipeline (JSON)',
    file: 'gateway.json',
    text: JSON.stringify({ ...BASE, pipelines: [PIPELINE, { ...PIPELINE, name: 'other', model: 'pump-anomaly' }] }),
    field: /pipelines\[1\]\.model: no model 'pump-anomaly'/,
  },
  {
    what: 'a variant the model does not have (JSON)',
    file: 'gateway.json',
    text: JSON.stringify({ ...BASE, pipelines: [{ ...PIPELINE, variant: 'fp64' }] }),
    field: /pipelines\[0\]\.variant: .*fp64/,
  },
  {
    what: 'a window a raw-sample model cannot take (JSON)',
    file: 'gateway.json',
    text: JSON.stringify({ ...BASE, pipelines: [{ ...PIPELINE, model: 'fault-transformer', window: 512 }] }),
    field: /pipelines\[0\]: .*window/,
  },
  {
    what: 'a negative commit wait (JSON)',
    file: 'gateway.json',
    text: JSON.stringify({ ...BASE, storage: { path: 'log/edge-infer.db', batchMs: -1 }, pipelines: [PIPELINE] }),
    field: /storage\.batchMs: .*>=0/,
  },
  {
    what: 'an unknown profile (YAML)',
    file: 'gateway.yaml',
    text: yaml(['profile: flash', 'pipelines:', '  - name: vib', '    topic: plant/{device}/vibration', '    decoder: { kind: float32, channels: [vib_x] }', '    model: fault-classifier']),
    field: /: profile: .*"default"\|"sd"/,
  },
  {
    what: 'a commit wait past 10 s (JSON)',
    file: 'gateway.json',
    text: JSON.stringify({ ...BASE, profile: 'sd', storage: { path: 'log/edge-infer.db', batchMs: 60_000 }, pipelines: [PIPELINE] }),
    field: /storage\.batchMs: .*<=10000/,
  },
  {
    what: 'YAML that does not parse',
    file: 'gateway.yaml',
    text: 'pipelines: [ { name: vib\n',
    field: /not valid YAML/,
  },
];

describe('edge-infer run --config with a bad config', () => {
  it.each(cases)('should exit non-zero with one line naming the file and the field: $what', async ({ file, text, field }) => {
    const dir = tempDir('edge-infer-config-');
    const configFile = path.join(dir, file);
    writeFileSync(configFile, text);
    const { code, stdout, stderr } = await run(configFile);
    expect(code).not.toBe(0);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0].startsWith(`edge-infer: ${configFile}: `)).toBe(true);
    expect(lines[0]).toMatch(field);
    // A refused config leaves nothing behind: no log is created for it.
    expect(existsSync(path.join(dir, 'log'))).toBe(false);
    expect(existsSync(path.join(dir, 'edge-infer.db'))).toBe(false);
  });
});

describe('edge-infer run --config with options the config has no place for', () => {
  const EMBEDDED = { ...BASE, broker: { embedded: { port: 0 } }, pipelines: [PIPELINE] };
  const refusals: Array<{ what: string; config: object; args: string[]; message: RegExp }> = [
    { what: 'a simulated plant that does not exist', config: { ...EMBEDDED, simulate: { plant: 'no-such-plant' } }, args: [], message: /no-such-plant/ },
    { what: '--broker-port without an embedded broker', config: { ...BASE, pipelines: [PIPELINE] }, args: ['--broker-port', '18830'], message: /--broker-port .* has no broker\.embedded/ },
    { what: '--speed without a simulated plant', config: EMBEDDED, args: ['--speed', '5'], message: /--speed .* has no simulate section/ },
    { what: 'a --profile that is not one', config: EMBEDDED, args: ['--profile', 'flash'], message: /--profile.*'flash' is invalid.*default, sd/ },
  ];
  it.each(refusals)('should exit non-zero at once, saying why: $what', async ({ config, args, message }) => {
    const dir = tempDir('edge-infer-config-');
    const configFile = path.join(dir, 'gateway.json');
    writeFileSync(configFile, JSON.stringify(config));
    const t0 = Date.now();
    const { code, stderr } = await run(configFile, ...args);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull(); // exited by itself, not killed by the 30 s guard
    expect(Date.now() - t0).toBeLessThan(25_000);
    expect(stderr).toMatch(message);
    expect(existsSync(path.join(dir, 'log'))).toBe(false);
  });
});

describe('loadGatewayConfig', () => {
  it('should take relative paths from the config file folder, not the working folder', async () => {
    const dir = tempDir('edge-infer-config-');
    mkdirSync(path.join(dir, 'site', 'certs'), { recursive: true });
    const file = path.join(dir, 'site', 'gateway.yaml');
    writeFileSync(
      file,
      yaml([
        'broker:',
        '  url: mqtts://broker.plant:8883',
        '  tls: { ca: certs/ca.pem, cert: ./certs/gw.pem, key: /etc/edge-infer/gw.key }',
        'models: ../models',
        'storage: { path: data/log.db }',
        'simulate: { plant: plants/line-1.json }',
        'pipelines:',
        '  - { name: vib, topic: "plant/{device}/vibration", decoder: { kind: float32, channels: [vib_x] }, model: fault-classifier }',
      ]),
    );
    const config = await loadGatewayConfig(path.relative(process.cwd(), file));
    const site = path.join(dir, 'site');
    expect(config.models).toBe(path.join(dir, 'models'));
    expect(config.storage.path).toBe(path.join(site, 'data', 'log.db'));
    expect(config.broker.tls).toMatchObject({ ca: path.join(site, 'certs', 'ca.pem'), cert: path.join(site, 'certs', 'gw.pem'), key: '/etc/edge-infer/gw.key' });
    expect(config.simulate?.plant).toBe(path.join(site, 'plants', 'line-1.json'));
  });

  it('should keep the defaults that are not files, and put the default log beside the config', async () => {
    const dir = tempDir('edge-infer-config-');
    const file = path.join(dir, 'gateway.json');
    writeFileSync(file, JSON.stringify({ simulate: { plant: 'demo' }, pipelines: [PIPELINE] }));
    const config = await loadGatewayConfig(file);
    expect(config.storage.path).toBe(path.join(dir, 'edge-infer.db'));
    expect(config.simulate?.plant).toBe('demo');
    expect(logWriting(config).store.batchMs).toBe(5);
    expect(path.isAbsolute(config.models)).toBe(true);
    expect(config.broker.tls).toBeUndefined();
  });
});

describe('the profile: how the log writes', () => {
  const config = (over: Record<string, unknown>) => parseGatewayConfig({ ...BASE, pipelines: [PIPELINE], ...over });

  it("should write as before by default: a commit every 5 ms, every message journaled, one window in 20 recorded", () => {
    const c = config({});
    expect(c.profile).toBe('default');
    expect(logWriting(c)).toEqual({ store: { batchMs: 5, journal: 'always' }, recordEvery: 20 });
  });

  it("should commit once a second with 'sd', journal only when needed, let runs wait for their commit, and record one window in 200", () => {
    expect(logWriting(config({ profile: 'sd' }))).toEqual({ store: { batchMs: 1000, batchRows: SD_BATCH_ROWS, journal: 'when-needed' }, maxDelivering: 256, recordEvery: 200 });
  });

  it("should keep a batchMs the config gives, whatever the profile", () => {
    expect(logWriting(config({ profile: 'sd', storage: { path: 'x.db', batchMs: 5000 } })).store.batchMs).toBe(5000);
    expect(logWriting(config({ storage: { path: 'x.db', batchMs: 50 } })).store.batchMs).toBe(50);
  });
});
