// The arm64 release bundle runs under qemu-aarch64 pinned to a Raspberry Pi 4's Cortex-A72, with
// npm's arm64 Node: every example model through the engine (WASM and onnxruntime-node's arm64
// binary) gives the x64 outputs on the same windows within tolerances/why in
// arm64/tolerances.json, and the gateway (`edge-infer run`) logs results from a real Mosquitto
// through the bundle's arm64 better-sqlite3. Missing qemu or cross packages fail, never skip.
// Times under emulation mean nothing; what runs, and what it computes, does.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../../devices/raspberry-pi/bundle';
import { ModelSession } from '../../runtime/engine';
import { simulatedWindows } from '../../runtime/eval';
import { type ModelCard, interpret, parseCard, windowFeeds } from '../../runtime/model';
import { packageRoot } from '../../runtime/paths';
import { computeFeatures } from '../../runtime/stream';
import { encodeFloat32Block } from '../../runtime/stream/decoders';
import { type MosquittoBroker, startMosquitto } from '../helpers/brokers';
import { client, publish, waitFor } from '../helpers/gateway';
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
    const lines: string[] = [];
    const bundle = await buildBundle({ arch: 'arm64', outDir: path.join(work, 'out'), cacheDir: cacheDir(), log: (line) => lines.push(line) }).catch((err: Error) => {
      throw new Error(`the arm64 bundle did not build: ${err.message}\n${lines.slice(-20).join('\n')}`);
    });
    timings.push(`arm64 bundle built: ${((Date.now() - t) / 1000).toFixed(1)} s`);
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
      // What the two devices send: a pump's running speed, and one with strong harmonics.
      const signals = { 'pump-1': [24.6], 'pump-2': [24.6, 73.8, 147.6] };
      const streams: Record<string, Float32Array[]> = {};
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

        // Two devices, 8 blocks of 512 samples each: windows of 2048 with hop 1024 → 3 per device and model.
        const pub = await client(broker.url);
        for (const [device, tones] of Object.entries(signals)) {
          const all = [0, 1, 2].map((c) => Float32Array.from({ length: 8 * 512 }, (_, i) => tones.reduce((s, f, h) => s + (0.1 / (h + 1)) * Math.sin((i / 5120) * 2 * Math.PI * f + c), 0)));
          streams[device] = all;
          for (let seq = 0; seq < 8; seq++) {
            const block = (c: number) => all[c].subarray(seq * 512, (seq + 1) * 512);
            const payload = encodeFloat32Block({ vib_x: block(0), vib_y: block(1), vib_z: block(2) }, { channels: ['vib_x', 'vib_y', 'vib_z'], header: { seq, timestampMs: 1_700_000_000_000 + (seq * 512 * 1000) / 5120 } });
            await publish(pub, `plant/${device}/vibration`, payload, 1);
          }
        }
        pub.end();
        const expected = 2 * 2 * 3;
        const port = Number(/http:\/\/127\.0\.0\.1:(\d+)\/health/.exec(output)?.[1]);
        await waitFor(async () => {
          const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          const done = [...metrics.matchAll(/^edge_infer_inferences_total\{[^}]*\} (\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
          return done >= expected;
        }, 5 * MINUTES, `${expected} inferences in the arm64 gateway`);
        timings.push(`gateway: ${expected} results logged ${((Date.now() - t) / 1000).toFixed(1)} s after its start`);
      } finally {
        gateway.kill('SIGTERM');
      }
      expect(await exited, output).toBe(0);
      expect(readFileSync(archFile, 'utf8')).toBe(`arm64 ${process.platform}`);

      // The log, written by the arm64 better-sqlite3, read here by the x64 one.
      const log = new Database(db, { readonly: true });
      const rows = log.prepare('SELECT device, model, variant, score, label, window_start_ms FROM results ORDER BY device, model, window_start_ms').all() as Array<{ device: string; model: keyof typeof variants; variant: string; score: number; label: string | null; window_start_ms: number }>;
      log.close();
      expect(rows).toHaveLength(2 * 2 * 3);
      // The same windows through the x64 engine (onnxruntime-node) give the same scores.
      for (const model of ['fault-classifier', 'vibration-anomaly'] as const) {
        const file = path.join(packageRoot(), 'models', model, `${model}.${variants[model]}.onnx`);
        const card = cardOf(file);
        const session = await ModelSession.load(file, { backend: 'native', threads: 1, warmupRuns: 0 });
        try {
          for (const device of ['pump-1', 'pump-2']) {
            const logged = rows.filter((r) => r.device === device && r.model === model);
            expect(logged.map((r) => r.variant)).toEqual([variants[model], variants[model], variants[model]]);
            const outcomes = await session.runWindows([0, 1, 2].map((w) => windowFeeds(card.input, computeFeatures(card.input, streams[device].map((c) => c.slice(w * 1024, w * 1024 + 2048))))));
            outcomes.forEach((o, w) => {
              if (!o.ok) throw o.error;
              const ref = interpret(card, o.outputs[card.output.tensor].data as Float32Array);
              const tol = toleranceFor('native', card.precision);
              expect(Math.abs(logged[w].score - ref.score), `${device} ${model} window ${w}: arm64 ${logged[w].score}, x64 ${ref.score}`).toBeLessThanOrEqual(tol.abs + tol.rel * Math.abs(ref.score) + tol.ofRange * Math.max(1, Math.abs(ref.score)));
              expect(logged[w].label).toBe(ref.label ?? null);
            });
          }
        } finally {
          await session.dispose();
        }
      }
    }, 15 * MINUTES);
  });
});
