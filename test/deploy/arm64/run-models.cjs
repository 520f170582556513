'use strict';
// Runs every example model of an installed edge-infer through its engine on fixed raw windows and
// prints one JSON document: which machine ran it (process.arch, the CPU the kernel reports) and
// each variant's features and outputs. The ARM64 test runs it twice on the same input file, under
// qemu-aarch64 with the arm64 Node against the arm64 bundle, and on the host against the build,
// and compares the two. Plain JavaScript, so that any Node runs it without a build step.
//
//   node run-models.cjs <edge-infer root> <inputs.json> <wasm|native> [threads, default 1]
const fs = require('node:fs');
const path = require('node:path');

async function main() {
  const [root, inputsFile, backend, threadsArg] = process.argv.slice(2);
  const threads = Number(threadsArg ?? 1);
  if (!root || !inputsFile || !['wasm', 'native'].includes(backend) || !(Number.isInteger(threads) && threads >= 1)) {
    throw new Error('usage: run-models.cjs <edge-infer root> <inputs.json> <wasm|native> [threads]');
  }
  const lib = require(path.join(path.resolve(root), 'dist', 'runtime', 'index.js'));
  // { "<model id>": [ [channel samples...], ... ] per window }
  const inputs = JSON.parse(fs.readFileSync(inputsFile, 'utf8'));
  const modelsDir = path.join(path.resolve(root), 'models');
  const results = [];
  for (const id of fs.readdirSync(modelsDir).sort()) {
    const dir = path.join(modelsDir, id);
    if (!fs.statSync(dir).isDirectory() || !inputs[id]) continue;
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort()) {
      const card = lib.parseCard(JSON.parse(fs.readFileSync(path.join(dir, file.replace(/\.onnx$/, '.model.json')), 'utf8')));
      const features = inputs[id].map((w) => lib.computeFeatures(card.input, w.map((c) => Float32Array.from(c))));
      // FP8 variants load two ways (dequantized at every run, or once at load); both must agree.
      const modes = card.precision.startsWith('fp8') ? ['compact', 'fast'] : ['fast'];
      for (const weights of modes) {
        const session = await lib.ModelSession.load(path.join(dir, file), {
          backend,
          threads,
          warmupRuns: 0,
          ...lib.loadOptionsFor(card.precision, weights),
        });
        try {
          const outcomes = await session.runWindows(features.map((f) => lib.windowFeeds(card.input, f)));
          results.push({
            model: id,
            file,
            precision: card.precision,
            task: card.task,
            threshold: card.output.threshold ?? null,
            weights,
            backend: session.backend,
            features: features.map((f) => Array.from(f)),
            outputs: outcomes.map((o, i) => {
              if (!o.ok) throw new Error(`${file} window ${i}: ${o.error.message}`);
              return Array.from(o.outputs[card.output.tensor].data, Number);
            }),
          });
        } finally {
          await session.dispose();
        }
      }
    }
  }
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const field = (name) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo)?.[1] ?? null;
  const machine = { arch: process.arch, node: process.version, cpuPart: field('CPU part'), cpuFeatures: field('Features') ?? field('flags') };
  process.stdout.write(`${JSON.stringify({ ...machine, results })}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : String(err)}\n`);
  process.exit(1);
});
