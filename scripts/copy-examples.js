#!/usr/bin/env node
'use strict';
// Node-RED lists a module's example flows from its `examples/` folder (Import > Examples); the
// project keeps them in `flows/`. The build copies them over.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const from = path.join(root, 'flows');
const to = path.join(root, 'examples');
fs.rmSync(to, { recursive: true, force: true });
fs.mkdirSync(to, { recursive: true });
for (const file of fs.readdirSync(from)) if (file.endsWith('.json')) fs.copyFileSync(path.join(from, file), path.join(to, file));
