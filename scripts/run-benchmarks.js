#!/usr/bin/env node
'use strict';
// `npm run bench`: runs every benchmark script in test/bench/ (or those named on the command
// line), one after another so they do not compete for the cores, and lets each print its table.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const dir = path.join(__dirname, '..', 'test', 'bench');
const wanted = process.argv.slice(2);
const scripts = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();
if (scripts.length === 0) {
  console.error(`no benchmark in ${dir}${wanted.length ? ` matching ${wanted.join(', ')}` : ''}`);
  process.exit(1);
}
const tsx = require.resolve('tsx/cli');
let failed = 0;
for (const script of scripts) {
  console.log(`\n## ${script.replace(/\.bench\.ts$/, '')}\n`);
  const r = spawnSync(process.execPath, [tsx, path.join(dir, script)], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`${script} failed (exit ${r.status ?? r.signal})`);
  }
}
process.exit(failed ? 1 : 0);
