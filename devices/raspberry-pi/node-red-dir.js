#!/usr/bin/env node
'use strict';
// install.sh runs this after switching versions. It makes the Node-RED unit's user folder as
// `edge-infer run` makes its own (runtime/cli/node-red-user-dir.ts: edge-infer linked into its
// node_modules, the example flows written only when there is no flows.json), and writes the
// unit's settings file once (--settings in edge-infer-node-red.service), never overwriting it.
// Usage: node node-red-dir.js <user folder> <edge-infer folder to link> <settings file>
const fs = require('node:fs');
const path = require('node:path');

const [userDir, current, settingsFile] = process.argv.slice(2);
if (!userDir || !current || !settingsFile) {
  process.stderr.write('usage: node node-red-dir.js <Node-RED user folder> <edge-infer folder to link> <settings file>\n');
  process.exit(2);
}

/** The unit's settings: those `edge-infer run` writes, with the broker of this machine for the example flows. */
function serviceSettings(written) {
  const body = written.slice(written.indexOf('module.exports'));
  return `// Node-RED settings for edge-infer-node-red.service, written once by install.sh and never
// again: edit freely, then \`sudo systemctl restart edge-infer-node-red\`. Port: uiPort (default 1880).
// The example flows' broker node reads EDGE_INFER_BROKER_HOST and EDGE_INFER_BROKER_PORT: this
// machine's Mosquitto unless the unit's environment says otherwise (systemctl edit edge-infer-node-red).
process.env.EDGE_INFER_BROKER_HOST = process.env.EDGE_INFER_BROKER_HOST || '127.0.0.1';
process.env.EDGE_INFER_BROKER_PORT = process.env.EDGE_INFER_BROKER_PORT || '1883';
${body}`;
}

/** Whether the folder is made already: then nothing is touched, so a second install changes nothing. */
function ready() {
  const link = path.join(userDir, 'node_modules', 'edge-infer');
  try {
    return fs.readlinkSync(link) === path.relative(path.dirname(link), path.resolve(current)) && ['flows.json', 'package.json'].every((f) => fs.existsSync(path.join(userDir, f))) && fs.existsSync(settingsFile);
  } catch {
    return false;
  }
}

try {
  if (ready()) process.exit(0);
  const { prepareUserDir } = require(path.join(current, 'dist', 'runtime', 'cli', 'node-red-user-dir.js'));
  const local = path.join(userDir, 'settings.js');
  const hadLocal = fs.existsSync(local);
  const r = prepareUserDir(userDir, current);
  // Relative, so that the folder stays right when the root is an image mounted elsewhere (--root).
  const link = path.join(r.dir, 'node_modules', 'edge-infer');
  const relative = path.relative(path.dirname(link), path.resolve(current));
  if (fs.readlinkSync(link) !== relative) {
    fs.rmSync(link, { force: true });
    fs.symlinkSync(relative, link, 'dir');
  }
  const changed = [];
  if (!fs.existsSync(settingsFile)) {
    fs.writeFileSync(settingsFile, serviceSettings(fs.readFileSync(local, 'utf8')), { mode: 0o640 });
    changed.push(`${settingsFile} written`);
  }
  // The unit reads its settings from settingsFile; a second settings.js here would only mislead.
  if (!hadLocal) fs.rmSync(local, { force: true });
  if (r.wroteFlows) changed.push('example flows written');
  process.stdout.write(changed.length ? `${r.dir}: Node-RED user folder ready (${changed.join(', ')})\n` : '');
} catch (err) {
  process.stderr.write(`Node-RED user folder ${userDir}: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(1);
}
