#!/usr/bin/env node
'use strict';
// install.sh runs this from a freshly unpacked version BEFORE switching to it: the version must
// answer, open a SQLite database through its better-sqlite3 and start an onnxruntime-node session
// on one of its example models. A failure is one line, and the running version stays.
// Usage: node self-check.js <version folder>
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');

const dir = path.resolve(process.argv[2] || path.join(__dirname, '..'));

function fail(what, err) {
  // The line that names the error (Node puts a stack position before it), else the first one.
  const lines = (err && err.message ? err.message : String(err)).split('\n').map((l) => l.trim()).filter(Boolean);
  const text = lines.find((l) => /^(\w*Error|Error)\b/.test(l)) || lines[0] || 'no output';
  process.stderr.write(`self-check of ${dir}: ${what}: ${text}\n`);
  process.exit(1);
}

async function main() {
  let version;
  try {
    version = execFileSync(process.execPath, [path.join(dir, 'bin', 'edge-infer.js'), '--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    fail('edge-infer --version failed', { message: (err.stderr || err.message || '').toString().trim() || String(err) });
  }
  try {
    const Database = require(path.join(dir, 'node_modules', 'better-sqlite3'));
    const db = new Database(':memory:');
    db.prepare('select sqlite_version() as v').get();
    db.close();
  } catch (err) {
    fail('better-sqlite3 does not load', err);
  }
  try {
    const ort = require(path.join(dir, 'node_modules', 'onnxruntime-node'));
    const models = path.join(dir, 'models', 'vibration-anomaly');
    const file = fs.readdirSync(models).find((f) => f.endsWith('.onnx'));
    if (!file) throw new Error(`no .onnx file in ${models}`);
    const session = await ort.InferenceSession.create(path.join(models, file));
    await session.release();
  } catch (err) {
    fail('onnxruntime-node does not start a session', err);
  }
  process.stdout.write(`self-check of ${dir}: edge-infer ${version}, better-sqlite3 and onnxruntime-node load\n`);
}

main().catch((err) => fail('unexpected error', err));
