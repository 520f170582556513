import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundledModelsDir, packageRoot } from '../../runtime/paths';
import { cli, expectOneLine } from '../helpers/cli';
import { gemmModel } from '../helpers/models';

const classifier = path.join(bundledModelsDir(), 'fault-classifier', 'fault-classifier.fp32.onnx');
let dir: string;
let gemm: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edge-infer-cli-'));
  gemm = path.join(dir, 'gemm.onnx');
  await fs.writeFile(gemm, gemmModel());
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});


describe('edge-infer', () => {
  it('should list its commands with --help and exit 0', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    for (const c of ['inspect', 'infer', 'bench', 'simulate', 'demo']) expect(r.out).toContain(c);
  });

  it('should give every command a --help', async () => {
    for (const c of ['inspect', 'infer', 'bench', 'simulate', 'demo']) {
      const r = await cli(c, '--help');
      expect(r.code, c).toBe(0);
      expect(r.out).toContain(`Usage: edge-infer ${c}`);
    }
  });

  it('should refuse an unknown command on one line with exit 2', async () => {
    const r = await cli('inspekt', 'x.onnx');
    expect(r.code).toBe(2);
    expectOneLine(r.err, /unknown command 'inspekt'.*inspect/);
  });

  it('should run as an installed command', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(packageRoot(), 'bin', 'edge-infer.js'), '--version']);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe('edge-infer inspect', () => {
  it('should show inputs, outputs, opset, operators, parameters and the card', async () => {
    const r = await cli('inspect', classifier);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/inputs\s+spectrum\s+float32 \[batch, 3, 256\]/);
    expect(r.out).toMatch(/outputs\s+probabilities\s+float32 \[batch, 5\]/);
    expect(r.out).toMatch(/ai\.onnx 17/);
    expect(r.out).toMatch(/Gemm×3/);
    expect(r.out).toMatch(/parameters\s+[\d,]+ \(/);
    expect(r.out).toMatch(/card\s+Rotating machine fault classifier/);
    expect(r.out).toMatch(/metrics\s+accuracy 0\.9/);
  });

  it('should print JSON with --json', async () => {
    const r = await cli('inspect', gemm, '--json');
    const j = JSON.parse(r.out);
    expect(j.inputs).toEqual([{ name: 'x', type: 'float32', shape: ['batch', 2] }]);
    expect(j.operators).toEqual({ Gemm: 1, Identity: 1 });
    expect(j.parameters).toBe(9);
    expect(j.card).toBeNull();
  });

  it('should report a file that is not a model on one line with exit 1', async () => {
    const bad = path.join(dir, 'bad.onnx');
    await fs.writeFile(bad, 'not a model at all, just some text\n');
    const r = await cli('inspect', bad);
    expect(r.code).toBe(1);
    expectOneLine(r.err, /^edge-infer: .*bad\.onnx: not (an|a whole) ONNX model/);
    const missing = await cli('inspect', path.join(dir, 'nope.onnx'));
    expect(missing.code).toBe(1);
    expectOneLine(missing.err, /nope\.onnx: cannot read \(ENOENT\)/);
  });

  it('should report an invalid card, naming the file and the field', async () => {
    const copy = path.join(dir, 'broken-card.onnx');
    await fs.copyFile(gemm, copy);
    await fs.writeFile(path.join(dir, 'broken-card.model.json'), JSON.stringify({ schema: 1, id: 'BAD' }));
    const r = await cli('inspect', copy);
    expect(r.code).toBe(1);
    expectOneLine(r.err, /broken-card\.model\.json: invalid model card: id: expected lowercase/);
  });
});

describe('edge-infer infer', () => {
  it('should run tensors given by input name and print outputs as JSON', async () => {
    const input = path.join(dir, 'x.json');
    await fs.writeFile(input, JSON.stringify({ x: [1, 1] }));
    const r = await cli('infer', gemm, '--input', input, '--backend', 'wasm');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.windows[0].outputs.y).toEqual({ dims: [3], data: [3, 7, 12] });
  });

  it('should cut raw samples from a CSV into windows and label them with the card', async () => {
    const csv = path.join(dir, 'pump.csv');
    const sim = await cli('simulate', '--seconds', '1', '--format', 'csv', '--fault', 'imbalance,onset=0,severity=0.6', '-o', csv);
    expect(sim.code).toBe(0);
    const r = await cli('infer', classifier, '--input', csv, '--backend', 'wasm');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.id).toBe('fault-classifier');
    expect(j.windows).toHaveLength(Math.floor((5120 - 2048) / 1024) + 1);
    expect(j.windows[0].span).toEqual({ start: 0, end: 2048 });
    expect(j.windows.every((w: { label: string }) => w.label === 'imbalance')).toBe(true);
  });

  it('should name the line and column of a bad CSV value', async () => {
    const csv = path.join(dir, 'bad.csv');
    await fs.writeFile(csv, `vib_x,vib_y,vib_z\n${'0,0,0\n'.repeat(10)}0,abc,0\n`);
    const r = await cli('infer', classifier, '--input', csv);
    expect(r.code).toBe(1);
    expectOneLine(r.err, /bad\.csv: line 12, column 'vib_y': "abc" is not a number/);
  });

  it('should refuse input of the wrong shape, naming the input', async () => {
    const input = path.join(dir, 'wrong.json');
    await fs.writeFile(input, JSON.stringify({ x: [1, 2, 3] }));
    const r = await cli('infer', gemm, '--input', input);
    expect(r.code).toBe(1);
    expectOneLine(r.err, /input 'x': expected \[batch, 2\], got \[1, 3\]/);
  });

  it('should say which channels are missing from raw samples', async () => {
    const input = path.join(dir, 'channels.json');
    await fs.writeFile(input, JSON.stringify({ channels: { vib_x: [1, 2, 3] } }));
    const r = await cli('infer', classifier, '--input', input);
    expect(r.code).toBe(1);
    expectOneLine(r.err, /channels 'vib_y', 'vib_z' missing \(the model reads vib_x, vib_y, vib_z\)/);
  });

  it('should refuse a card that names an output the model does not have, naming both', async () => {
    const model = path.join(dir, 'mismatch.onnx');
    await fs.copyFile(classifier, model);
    const card = JSON.parse(await fs.readFile(classifier.replace(/\.onnx$/, '.model.json'), 'utf8'));
    await fs.writeFile(path.join(dir, 'mismatch.model.json'), JSON.stringify({ ...card, output: { ...card.output, tensor: 'logits' } }));
    const input = path.join(dir, 'spectrum.json');
    await fs.writeFile(input, JSON.stringify({ spectrum: Array.from({ length: 3 }, () => new Array(256).fill(0.01)) }));
    const r = await cli('infer', model, '--input', input);
    expect(r.code).toBe(1);
    expectOneLine(r.err, /mismatch\.model\.json.*'logits'/);
  });

  it('should require --input', async () => {
    const r = await cli('infer', gemm);
    expect(r.code).toBe(2);
    expectOneLine(r.err, /required option '--input <file>' not specified/);
  });
});

describe('edge-infer bench', () => {
  it('should report latency percentiles and throughput', async () => {
    const r = await cli('bench', gemm, '--batch', '8', '--runs', '20', '--warmup', '0.2', '--backend', 'wasm', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ batch: 8, runs: 20, backend: 'wasm', warmupS: 0.2 });
    expect(j.p99Ms).toBeGreaterThanOrEqual(j.p50Ms);
    expect(j.windowsPerSecond).toBeGreaterThan(0);
  });

  it('should report one window per run for a model with a fixed batch of 1', async () => {
    const fixed = path.join(dir, 'gemm-fixed.onnx');
    await fs.writeFile(fixed, gemmModel({ batch: 1 }));
    const r = await cli('bench', fixed, '--batch', '8', '--runs', '20', '--backend', 'wasm', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ batch: 1, runs: 20 });
    const text = await cli('bench', fixed, '--batch', '8', '--runs', '5', '--backend', 'wasm');
    expect(text.out).toMatch(/batch\s+1 \(the model has no dynamic batch axis\)/);
  });

  it('should refuse a batch that is not a whole number, on one line', async () => {
    const r = await cli('bench', gemm, '--batch', 'lots');
    expect(r.code).toBe(2);
    expectOneLine(r.err, /option '--batch <n>' argument 'lots' is invalid\. expected a whole number from 1 to 4096/);
  });

  it('should refuse a negative warm-up, on one line', async () => {
    const r = await cli('bench', gemm, '--warmup', '-1');
    expect(r.code).toBe(2);
    expectOneLine(r.err, /option '--warmup <s>' argument '-1' is invalid\. expected a number ≥ 0/);
  });

  it('should refuse an unknown backend, listing the choices', async () => {
    const r = await cli('bench', gemm, '--backend', 'gpu');
    expect(r.code).toBe(2);
    expectOneLine(r.err, /Allowed choices are auto, wasm, native/);
  });
});

describe('edge-infer simulate', () => {
  it('should print one JSON line per published block, the same for the same seed', async () => {
    const a = await cli('simulate', '--seconds', '0.5', '--seed', '3');
    const b = await cli('simulate', '--seconds', '0.5', '--seed', '3');
    const lines = a.out.trim().split('\n');
    expect(lines).toHaveLength(5); // 2560 samples in blocks of 512
    expect(a.out).toBe(b.out);
    const first = JSON.parse(lines[0]);
    expect(first).toMatchObject({ device: 'pump-motor', stream: 'vibration', t0: 0, sampleRate: 5120, label: 'normal' });
    expect(first.channels.vib_x).toHaveLength(512);
  });

  it('should label samples with the injected fault after its onset', async () => {
    const r = await cli('simulate', '--stream', 'temperature', '--seconds', '4', '--format', 'csv', '--fault', 'bearing,onset=2,severity=0.5');
    const rows = r.out.trim().split('\n').slice(1).map((l) => l.split(','));
    expect(rows.map((c) => c[1])).toEqual(['normal', 'normal', 'bearing', 'bearing']);
  });

  it('should refuse a bad fault spec, a bad stream and an unwritable output', async () => {
    const fault = await cli('simulate', '--fault', 'wobble,onset=2');
    expect(fault.code).toBe(2);
    expectOneLine(fault.err, /the fault type comes first, one of imbalance, misalignment, bearing, looseness/);
    const stream = await cli('simulate', '--stream', 'pressure');
    expect(stream.code).toBe(1);
    expectOneLine(stream.err, /profile 'pump-motor' has no stream 'pressure' \(it has vibration, current, temperature\)/);
    const out = await cli('simulate', '-o', '/nonexistent-dir/x.jsonl');
    expect(out.code).toBe(1);
    expectOneLine(out.err, /\/nonexistent-dir\/x\.jsonl: cannot write/);
  });
});

describe('edge-infer demo', () => {
  it('should stream a machine through the example models and sum up', async () => {
    const r = await cli('demo', '--seconds', '3', '--speed', '50', '--every', '1', '--backend', 'wasm', '--fault', 'imbalance,onset=1,severity=0.8');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Centrifugal pump motor/);
    expect(r.out).toMatch(/truth imbalance 0\.80/);
    for (const id of ['vibration-anomaly', 'fault-classifier', 'fault-transformer']) expect(r.out).toMatch(new RegExp(`${id}: \\d+ windows`));
  });
});
