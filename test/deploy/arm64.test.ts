// The arm64 release bundle runs under qemu-aarch64 pinned to a Raspberry Pi 4's Cortex-A72, with
// npm's arm64 Node: every example model through the engine (WASM and onnxruntime-node's arm64
// binary) gives the x64 outputs on the same windows within tolerances/why in
// arm64/tolerances.json; the gateway (`edge-infer run`) and the bundle's Node-RED with a model
// node log results from a real Mosquitto through the bundle's arm64 better-sqlite3. Missing qemu
// or cross packages fail, never skip. vitest.config.mts runs this file after the rest.
// Times under emulation mean nothing; what runs, and what it computes, does.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelSession } from '../../runtime/engine';
import { simulatedWindows } from '../../runtime/eval';
import { type ModelCard, interpret, parseCard, windowFeeds } from '../../runtime/model';
import { packageRoot } from '../../runtime/paths';
import { computeFeatures } from '../../runtime/stream';
import { encodeFloat32Block } from '../../runtime/stream/decoders';
import { nodeTypeOf } from '../../nodes/help';
import { type MosquittoBroker, freePort, startMosquitto } from '../helpers/brokers';
import { client, publish, waitFor } from '../helpers/gateway';
import { sharedBundle } from '../helpers/shared-bundle';
import { QEMU_CPU, arm64Node, cacheDir, arm64TempDir, checkArm64Tools, elfMachine, emulatedEnv, filesUnder, runEmulated, spawnEmulated } from '../helpers/arm64';

const HERE = path.join(packageRoot(), 'test', 'deploy', 'arm64');
const MINUTES = 60_000;
/** The Cortex-A72's part number in /proc/cpuinfo, as a Pi 4 shows it. */
const CORTEX_A72 = '0xd08';
const SEED = 20261207;
const WINDOWS_PER_MODEL = 6;
/** Threads per session, as a Pi 4 runs by default (min(4, cores); both runs here get the same cores). */
const THREADS = '4';

interface Tolerance {
  abs: number;
  rel: number;
  ofRange: number;
}
const TOLERANCES = JSON.parse(readFileSync(path.join(HERE, 'tolerances.json'), 'utf8')) as { wasm: { all: Tolerance }; native: Record<string, Tolerance> };

interface ModelsRun {
  arch: string;
  node: string;
  cpuPart: string | null;
  cpuFeatures: string | null;
  results: Array<{ model: string; file: string; precision: string; task: string; threshold: number | null; weights: string; backend: string; features: number[][]; outputs: number[][] }>;
}

let setup: Promise<{ root: string; work: string }> | undefined;
const timings: string[] = [];

/** Checks the tools, fetches the arm64 Node, builds the arm64 bundle and unpacks it (once per file). */
function arm64Bundle(): Promise<{ root: string; work: string }> {
  setup ??= (async () => {
    checkArm64Tools();
    let t = Date.now();
    arm64Node();
    timings.push(`arm64 Node from npm: ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const work = arm64TempDir('edge-infer-arm64-');
    t = Date.now();
    // EDGE_INFER_ARM64_BUNDLE: a tarball built before (npm run bundle -- --arch arm64), for runs by hand.
    // Otherwise the one built from these very sources for test/deploy/bundle.test.ts earlier in the run.
    const prebuilt = process.env.EDGE_INFER_ARM64_BUNDLE;
    const bundle = prebuilt ? { tarball: path.resolve(prebuilt), arch: /-linux-(\w+)\.tar\.gz$/.exec(prebuilt)?.[1] } : await sharedBundle('arm64');
    timings.push(`arm64 bundle: ${bundle.tarball}, ${Date.now() - t < 5_000 ? 'built before' : `ready after ${((Date.now() - t) / 1000).toFixed(1)} s`}`);
    expect(bundle.arch).toBe('arm64');
    const unpacked = path.join(work, 'bundle');
    mkdirSync(unpacked, { recursive: true });
    execFileSync('tar', ['-xzf', bundle.tarball, '-C', unpacked]);
    return { root: packageIn(unpacked), work };
  })();
  return setup;
}

/** The folder of edge-infer's package.json in an unpacked bundle (at its top or one folder down). */
function packageIn(dir: string): string {
  for (const candidate of [dir, ...readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(dir, e.name))]) {
    const file = path.join(candidate, 'package.json');
    if (existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name === 'edge-infer') return candidate;
  }
  throw new Error(`no edge-infer package.json in the unpacked bundle ${dir}`);
}

/** Fixed raw windows per example model, from the simulator, written once for both machines. */
function fixedInputs(work: string): string {
  const file = path.join(work, 'inputs.json');
  if (existsSync(file)) return file;
  const inputs: Record<string, number[][][]> = {};
  for (const id of ['fault-classifier', 'fault-transformer', 'vibration-anomaly']) {
    const card = cardOf(path.join(packageRoot(), 'models', id, `${id}.fp32.onnx`));
    inputs[id] = simulatedWindows(card.input, { count: WINDOWS_PER_MODEL, seed: SEED }).map((w) => w.channels.map((c) => Array.from(c)));
  }
  writeFileSync(file, JSON.stringify(inputs));
  return file;
}

function cardOf(onnxFile: string): ModelCard {
  return parseCard(JSON.parse(readFileSync(onnxFile.replace(/\.onnx$/, '.model.json'), 'utf8')), onnxFile);
}

function toleranceFor(backend: string, precision: string): Tolerance {
  const t = backend === 'wasm' ? TOLERANCES.wasm.all : TOLERANCES.native[precision];
  if (!t) throw new Error(`arm64/tolerances.json has no tolerance for ${backend} ${precision}`);
  return t;
}

/** What the output decides: the top label of a classifier, the side of the threshold of an anomaly score. */
function decision(task: string, threshold: number | null, output: readonly number[]): string {
  if (task === 'classification') return `label ${output.indexOf(Math.max(...output))}`;
  return threshold !== null && output[0] >= threshold ? 'anomaly' : 'normal';
}

/** The devices of the end-to-end runs and the tones they send: a pump's running speed, and one with strong harmonics. */
const SIGNALS: Record<string, number[]> = { 'pump-1': [24.6], 'pump-2': [24.6, 73.8, 147.6] };
const DEVICES = Object.keys(SIGNALS);
/** 8 blocks of 512 samples at 5120 Hz per device: windows of 2048 with hop 1024 → 3 per device and model. */
const BLOCKS = 8;
const BLOCK = 512;
const WINDOWS_PER_DEVICE = 3;

/** A device's three vibration channels, the same on every call. */
function deviceChannels(device: string): Float32Array[] {
  const tones = SIGNALS[device];
  return [0, 1, 2].map((c) => Float32Array.from({ length: BLOCKS * BLOCK }, (_, i) => tones.reduce((sum, f, h) => sum + (0.1 / (h + 1)) * Math.sin((i / 5120) * 2 * Math.PI * f + c), 0)));
}

/** Publishes every device's blocks as float32 blocks with the edge-infer header, QoS 1. */
async function publishDevices(url: string): Promise<void> {
  const pub = await client(url);
  try {
    for (const device of DEVICES) {
      const channels = deviceChannels(device);
      for (let seq = 0; seq < BLOCKS; seq++) {
        const block = (c: number) => channels[c].subarray(seq * BLOCK, (seq + 1) * BLOCK);
        const payload = encodeFloat32Block({ vib_x: block(0), vib_y: block(1), vib_z: block(2) }, { channels: ['vib_x', 'vib_y', 'vib_z'], header: { seq, timestampMs: 1_700_000_000_000 + (seq * BLOCK * 1000) / 5120 } });
        await publish(pub, `plant/${device}/vibration`, payload, 1);
      }
    }
  } finally {
    pub.end();
  }
}

interface LoggedResult {
  device: string;
  model: 'fault-classifier' | 'vibration-anomaly';
  variant: string;
  score: number;
  label: string | null;
}

/** The results of a log written under emulation, read here through the host's (x64) better-sqlite3. */
function loggedResults(file: string): LoggedResult[] {
  const log = new Database(file, { readonly: true });
  try {
    return log.prepare('SELECT device, model, variant, score, label FROM results ORDER BY device, model, window_start_ms').all() as LoggedResult[];
  } finally {
    log.close();
  }
}

/** The device's windows through the x64 engine (onnxruntime-node) give the logged scores and labels, within the variant's tolerance. */
async function expectScoredAsOnX64(model: string, variant: string, device: string, logged: readonly LoggedResult[]): Promise<void> {
  const file = path.join(packageRoot(), 'models', model, `${model}.${variant}.onnx`);
  const card = cardOf(file);
  const channels = deviceChannels(device);
  const session = await ModelSession.load(file, { backend: 'native', threads: 1, warmupRuns: 0 });
  try {
    const windows = Array.from({ length: WINDOWS_PER_DEVICE }, (_, w) => windowFeeds(card.input, computeFeatures(card.input, channels.map((c) => c.slice(w * 1024, w * 1024 + 2048)))));
    const outcomes = await session.runWindows(windows);
    const tol = toleranceFor('native', card.precision);
    outcomes.forEach((o, w) => {
      if (!o.ok) throw o.error;
      const ref = interpret(card, o.outputs[card.output.tensor].data as Float32Array);
      const allowed = tol.abs + tol.rel * Math.abs(ref.score) + tol.ofRange * Math.max(1, Math.abs(ref.score));
      expect(Math.abs(logged[w].score - ref.score), `${device} ${model} window ${w}: arm64 ${logged[w].score}, x64 ${ref.score}`).toBeLessThanOrEqual(allowed);
      expect(logged[w].label, `${device} ${model} window ${w}`).toBe(ref.label ?? null);
    });
  } finally {
    await session.dispose();
  }
}

/** (Node ids no field value repeats: Node-RED takes a value equal to a node's id for a reference to it.) Vibration in, the device from the topic, the int8 classifier node (native, logging to `db`), results out on nr/results/<device>; a probe answers once the flow listens. */
function nodeRedFlow(brokerPort: number, db: string): object[] {
  return [
    { id: 'arm64-tab', type: 'tab', label: 'arm64' },
    { id: 'arm64-broker', type: 'mqtt-broker', name: 'test broker', broker: '127.0.0.1', port: String(brokerPort), clientid: '', autoConnect: true, usetls: false, protocolVersion: '4', keepalive: '60', cleansession: true },
    { id: 'arm64-runtime', type: 'edge-infer-runtime', name: 'runtime', backend: 'native', threads: 1, weights: 'fast', log: true, dbPath: db, retentionDays: 30, recordEvery: 0 },
    { id: 'arm64-probe-in', type: 'mqtt in', z: 'arm64-tab', topic: 'probe/ping', qos: '1', datatype: 'utf8', broker: 'arm64-broker', nl: false, rap: true, rh: 0, inputs: 0, wires: [['arm64-probe-out']] },
    { id: 'arm64-probe-out', type: 'mqtt out', z: 'arm64-tab', topic: 'probe/pong', qos: '1', retain: 'false', broker: 'arm64-broker', wires: [] },
    { id: 'arm64-in', type: 'mqtt in', z: 'arm64-tab', topic: 'plant/+/vibration', qos: '1', datatype: 'buffer', broker: 'arm64-broker', nl: false, rap: true, rh: 0, inputs: 0, wires: [['arm64-device']] },
    { id: 'arm64-device', type: 'change', z: 'arm64-tab', rules: [{ t: 'set', p: 'topic', pt: 'msg', to: "$split(topic, '/')[1]", tot: 'jsonata' }], wires: [['arm64-model']] },
    { id: 'arm64-model', type: nodeTypeOf('fault-classifier'), z: 'arm64-tab', runtime: 'arm64-runtime', variant: 'int8', threshold: '', device: 'topic', log: true, alertConsecutive: 3, alertCooldownS: 0, alertClearAfter: '', wires: [['arm64-topic'], []] },
    { id: 'arm64-topic', type: 'change', z: 'arm64-tab', rules: [{ t: 'set', p: 'topic', pt: 'msg', to: "'nr/results/' & payload.device", tot: 'jsonata' }], wires: [['arm64-out']] },
    { id: 'arm64-out', type: 'mqtt out', z: 'arm64-tab', topic: '', qos: '1', retain: 'false', broker: 'arm64-broker', wires: [] },
  ];
}

describe(`the arm64 bundle under qemu-aarch64 (${QEMU_CPU}, a Raspberry Pi 4's core)`, () => {
  afterAll(() => {
    if (timings.length) process.stdout.write(`ARM64 run under emulation:\n  ${timings.join('\n  ')}\n`);
  });

  it('should run npm\'s arm64 Node as aarch64 on a Cortex-A72 without the ARMv8.2 extensions', async () => {
    await arm64Bundle();
    const run = await runEmulated(['-p', "JSON.stringify({ arch: process.arch, version: process.version, cpuinfo: require('fs').readFileSync('/proc/cpuinfo', 'utf8') })"]);
    expect(run.err).toBe('');
    const seen = JSON.parse(run.out) as { arch: string; version: string; cpuinfo: string };
    expect(seen.arch).toBe('arm64');
    expect(seen.version).toBe('v20.20.2');
    expect(elfMachine(arm64Node())).toBe('aarch64');
    expect(/^CPU part\s*:\s*(\S+)/m.exec(seen.cpuinfo)?.[1]).toBe(CORTEX_A72);
    const features = /^Features\s*:\s*(.*)$/m.exec(seen.cpuinfo)?.[1].split(/\s+/) ?? [];
    expect(features).toContain('asimd');
    // Dot product, LSE atomics, SVE: a Pi 5 has the first two, a Pi 4 none.
    for (const absent of ['asimddp', 'atomics', 'sve']) expect(features).not.toContain(absent);
  }, 10 * MINUTES);

  it('should stop a program that uses an instruction the Pi 4 lacks (SIGILL on sdot), which runs on a Cortex-A76', async () => {
    const { work } = await arm64Bundle();
    const program = path.join(work, 'dot-product');
    execFileSync('aarch64-linux-gnu-gcc', ['-march=armv8.2-a+dotprod', '-O0', path.join(HERE, 'dot-product.c'), '-o', program]);
    const run = (cpu: string): { status: number | null; signal: string | null; out: string } => {
      try {
        const out = execFileSync('qemu-aarch64', [program], { env: emulatedEnv({ QEMU_CPU: cpu }), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        return { status: 0, signal: null, out };
      } catch (err) {
        const e = err as { status: number | null; signal: string | null; stdout: string };
        return { status: e.status, signal: e.signal, out: e.stdout };
      }
    };
    expect(run('cortex-a76')).toEqual({ status: 0, signal: null, out: 'sdot ran\n' });
    const onA72 = run(QEMU_CPU);
    expect(onA72.out).toBe('');
    // qemu reports the guest's SIGILL by dying of SIGILL itself.
    expect(onA72.signal).toBe('SIGILL');
  }, 10 * MINUTES);

  it('should ship aarch64 builds of better-sqlite3 and onnxruntime-node', async () => {
    const { root } = await arm64Bundle();
    const sqlite = filesUnder(path.join(root, 'node_modules', 'better-sqlite3'), 'better_sqlite3.node');
    expect(sqlite.length).toBeGreaterThan(0);
    for (const f of sqlite) expect(`${path.relative(root, f)}: ${elfMachine(f)}`).toBe(`${path.relative(root, f)}: aarch64`);
    const ort = path.join(root, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'arm64', 'onnxruntime_binding.node');
    expect(elfMachine(ort)).toBe('aarch64');
    expect(elfMachine(path.join(path.dirname(ort), 'libonnxruntime.so.1'))).toBe('aarch64');
  }, 10 * MINUTES);

  for (const backend of ['wasm', 'native'] as const) {
    it(`should give every example model's x64 outputs on the ${backend} backend (fp32, int8, FP8 compact and fast)`, async () => {
      const { root, work } = await arm64Bundle();
      const inputs = fixedInputs(work);
      const script = path.join(HERE, 'run-models.cjs');
      const t = Date.now();
      const arm = await runEmulated([script, root, inputs, backend, THREADS]);
      if (arm.code !== 0) throw new Error(`the arm64 run of the models on ${backend} exited ${arm.code ?? arm.signal}: ${arm.err.trim().split('\n').slice(0, 8).join(' | ')}`);
      timings.push(`${backend}: every model variant on ${WINDOWS_PER_MODEL} windows: ${((Date.now() - t) / 1000).toFixed(1)} s emulated`);
      const x64 = JSON.parse(execFileSync(process.execPath, [script, packageRoot(), inputs, backend, THREADS], { encoding: 'utf8', maxBuffer: 256 << 20 })) as ModelsRun;
      const a64 = JSON.parse(arm.out) as ModelsRun;
      expect(a64.arch).toBe('arm64');
      expect(a64.cpuPart).toBe(CORTEX_A72);
      expect(x64.arch).toBe('x64');
      // Every variant of every example model, both FP8 loadings: 3 models × (fp32, int8, int8-dynamic, 2 FP8 × 2).
      expect(a64.results.map((r) => `${r.file} ${r.weights} ${r.backend}`)).toEqual(x64.results.map((r) => `${r.file} ${r.weights} ${backend}`));
      expect(a64.results).toHaveLength(21);

      const problems: string[] = [];
      let worst = 0;
      a64.results.forEach((a, i) => {
        const x = x64.results[i];
        const name = `${a.file} (${a.weights})`;
        // The features are JavaScript (FFT, log): the same bits on both, or the engine sees other windows.
        a.features.forEach((f, w) => {
          if (f.some((v, k) => !Object.is(v, x.features[w][k]))) problems.push(`${name} window ${w}: features differ`);
        });
        const tol = toleranceFor(backend, a.precision);
        const range = Math.max(...x.outputs.flat().map(Math.abs));
        a.outputs.forEach((out, w) => {
          out.forEach((v, k) => {
            const ref = x.outputs[w][k];
            const allowed = tol.abs + tol.rel * Math.abs(ref) + tol.ofRange * range;
            const d = Math.abs(v - ref);
            if (!Number.isFinite(v) || !(d <= allowed)) problems.push(`${name} window ${w} output ${k}: arm64 ${v}, x64 ${ref} (|d| ${d.toExponential(2)} > ${allowed.toExponential(2)})`);
            worst = Math.max(worst, d / Math.max(Math.abs(ref), 1e-30));
          });
          // Within tolerance and still another decision only where x64 sat on the boundary.
          if (decision(a.task, a.threshold, out) !== decision(x.task, x.threshold, x.outputs[w])) problems.push(`${name} window ${w}: arm64 decides ${decision(a.task, a.threshold, out)}, x64 ${decision(x.task, x.threshold, x.outputs[w])}`);
        });
      });
      timings.push(`${backend}: largest relative difference to x64 ${worst.toExponential(2)}`);
      expect(problems).toEqual([]);
    }, 15 * MINUTES);
  }

  describe('the gateway', () => {
    let broker: MosquittoBroker | undefined;
    afterAll(async () => {
      await broker?.stop();
    });

    it('should log results from Mosquitto through the arm64 better-sqlite3 that x64 reads back, scored as on x64', async () => {
      const { root, work } = await arm64Bundle();
      broker = await startMosquitto();
      const db = path.join(work, 'gateway.db');
      const configFile = path.join(work, 'gateway.json');
      const decoder = { kind: 'float32', channels: ['vib_x', 'vib_y', 'vib_z'], header: 'edge-infer' };
      const variants = { 'fault-classifier': 'int8', 'vibration-anomaly': 'fp8-e4m3' } as const;
      // Defaults (the bundle's own models folder, weights 'fast') are filled in by the arm64 process.
      writeFileSync(configFile, JSON.stringify({
        broker: { url: broker.url, protocol: 4, clientId: 'edge-infer-arm64', reconnectMs: 200 },
        storage: { path: db },
        http: { port: 0, host: '127.0.0.1' },
        engine: { backend: 'native', threads: 1 },
        pipelines: [
          { name: 'classifier', topic: 'plant/{device}/vibration', decoder, model: 'fault-classifier', variant: variants['fault-classifier'] },
          { name: 'anomaly', topic: 'plant/{device}/vibration', decoder, model: 'vibration-anomaly', variant: variants['vibration-anomaly'] },
        ],
      }));
      const archFile = path.join(work, 'gateway-arch.txt');
      const t = Date.now();
      // The preload writes what the gateway process is, from inside it.
      const gateway = spawnEmulated(['--require', path.join(HERE, 'report-arch.cjs'), path.join(root, 'bin', 'edge-infer.js'), 'run', '--config', configFile, '--quiet'], {
        cwd: work,
        env: { EDGE_INFER_REPORT_ARCH: archFile },
      });
      let output = '';
      gateway.stdout?.on('data', (d: Buffer) => (output += String(d)));
      gateway.stderr?.on('data', (d: Buffer) => (output += String(d)));
      const exited = new Promise<number | null>((resolve) => gateway.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
      try {
        // Its start-up lines end with one per pipeline.
        await waitFor(() => /→ vibration-anomaly \[/.test(output) || gateway.exitCode !== null, 5 * MINUTES, 'the arm64 gateway to start');
        expect(output).toMatch(/classifier: plant\/\{device\}\/vibration → fault-classifier \[int8, native\]/);
        expect(output).toMatch(/anomaly: plant\/\{device\}\/vibration → vibration-anomaly \[fp8-e4m3, native\]/);
        timings.push(`gateway started: ${((Date.now() - t) / 1000).toFixed(1)} s emulated`);
        await publishDevices(broker.url);
        const expected = DEVICES.length * 2 * WINDOWS_PER_DEVICE;
        const port = Number(/http:\/\/127\.0\.0\.1:(\d+)\/health/.exec(output)?.[1]);
        await waitFor(async () => {
          const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          const done = [...metrics.matchAll(/^edge_infer_inferences_total\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
          return done >= expected;
        }, 5 * MINUTES, `${expected} inferences in the arm64 gateway`);
        timings.push(`gateway: ${expected} results logged ${((Date.now() - t) / 1000).toFixed(1)} s after its start`);
      } finally {
        gateway.kill('SIGTERM');
      }
      expect(await exited, output).toBe(0);
      expect(readFileSync(archFile, 'utf8')).toBe(`arm64 ${process.platform}`);

      // The log, written by the arm64 better-sqlite3, read here by the x64 one.
      const rows = loggedResults(db);
      expect(rows).toHaveLength(DEVICES.length * 2 * WINDOWS_PER_DEVICE);
      for (const model of ['fault-classifier', 'vibration-anomaly'] as const) {
        for (const device of DEVICES) {
          const logged = rows.filter((r) => r.device === device && r.model === model);
          expect(logged.map((r) => r.variant)).toEqual(Array(WINDOWS_PER_DEVICE).fill(variants[model]));
          await expectScoredAsOnX64(model, variants[model], device, logged);
        }
      }
    }, 15 * MINUTES);
  });

  describe('Node-RED', () => {
    let broker: MosquittoBroker | undefined;
    afterAll(async () => {
      await broker?.stop();
    });

    it("should run the bundle's Node-RED with edge-infer's classifier node on MQTT, logging through the arm64 better-sqlite3", async () => {
      const { root, work } = await arm64Bundle();
      broker = await startMosquitto();
      const userDir = path.join(work, 'node-red');
      mkdirSync(path.join(userDir, 'node_modules'), { recursive: true });
      // edge-infer installed in the user folder as install.sh does it: a link to the version.
      symlinkSync(root, path.join(userDir, 'node_modules', 'edge-infer'), 'dir');
      const db = path.join(work, 'node-red.db');
      const port = await freePort();
      writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(nodeRedFlow(broker.port, db)));
      writeFileSync(path.join(userDir, 'settings.js'), `module.exports = ${JSON.stringify({ uiPort: port, uiHost: '127.0.0.1', userDir, flowFile: 'flows.json', credentialSecret: false, logging: { console: { level: 'warn' } } })};\n`);
      const archFile = path.join(work, 'node-red-arch.txt');
      const t = Date.now();
      const nodeRed = spawnEmulated(['--require', path.join(HERE, 'report-arch.cjs'), path.join(root, 'node_modules', 'node-red', 'red.js'), '--userDir', userDir, '--settings', path.join(userDir, 'settings.js')], {
        cwd: work,
        env: { EDGE_INFER_REPORT_ARCH: archFile },
      });
      let output = '';
      nodeRed.stdout?.on('data', (d: Buffer) => (output += String(d)));
      nodeRed.stderr?.on('data', (d: Buffer) => (output += String(d)));
      const exited = new Promise<number | null>((resolve) => nodeRed.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
      const results: Array<{ device: string; variant: string; score: number; label: string }> = [];
      const sub = await client(broker.url);
      try {
        let pong = false;
        sub.on('message', (topic, payload) => {
          if (topic === 'probe/pong') pong = true;
          else results.push(JSON.parse(String(payload)) as (typeof results)[number]);
        });
        await new Promise((r) => sub.subscribe(['nr/results/#', 'probe/pong'], { qos: 1 }, r));
        // Node-RED's MQTT nodes connect in their own time: the blocks go out once its flow answers.
        await waitFor(() => {
          if (nodeRed.exitCode !== null) throw new Error(`Node-RED exited ${nodeRed.exitCode}: ${output.slice(-1000)}`);
          sub.publish('probe/ping', 'ping', { qos: 1 });
          return pong;
        }, 5 * MINUTES, `the arm64 Node-RED's flow to answer on the broker (log: ${output.slice(-500)})`);
        timings.push(`Node-RED started: ${((Date.now() - t) / 1000).toFixed(1)} s emulated`);
        await publishDevices(broker.url);
        await waitFor(() => results.length >= DEVICES.length * WINDOWS_PER_DEVICE, 5 * MINUTES, `${DEVICES.length * WINDOWS_PER_DEVICE} results from the arm64 Node-RED (log: ${output.slice(-500)})`);
      } finally {
        sub.end(true);
        nodeRed.kill('SIGTERM');
      }
      expect(await exited, output).toBe(0);
      expect(readFileSync(archFile, 'utf8')).toBe(`arm64 ${process.platform}`);
      expect(results).toHaveLength(DEVICES.length * WINDOWS_PER_DEVICE);
      expect(existsSync(db), `${db}: Node-RED's log: ${output.slice(-2000)}`).toBe(true);
      const rows = loggedResults(db);
      for (const device of DEVICES) {
        const logged = rows.filter((r) => r.device === device);
        expect(logged.map((r) => `${r.model} ${r.variant}`)).toEqual(Array(WINDOWS_PER_DEVICE).fill('fault-classifier int8'));
        // What the node sent is what it logged.
        expect(results.filter((r) => r.device === device).map((r) => r.score)).toEqual(logged.map((r) => r.score));
        await expectScoredAsOnX64('fault-classifier', 'int8', device, logged);
      }
    }, 15 * MINUTES);
  });
});
