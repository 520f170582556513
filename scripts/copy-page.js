#!/usr/bin/env node
'use strict';
// The dashboard's page: tsc (tsconfig.page.json) emits it under a scratch folder, beside the
// contract's and the store's type-only modules it imports; only the page's modules, its HTML and
// its CSS go to dist/runtime/serve/page/, where the server reads them.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const built = path.join(root, 'dist', '.page-build');
const from = path.join(root, 'runtime', 'serve', 'page');
const to = path.join(root, 'dist', 'runtime', 'serve', 'page');
fs.rmSync(to, { recursive: true, force: true });
fs.mkdirSync(to, { recursive: true });
const modules = path.join(built, 'serve', 'page');
if (!fs.existsSync(modules)) throw new Error(`copy-page: ${modules} is missing; run tsc -p tsconfig.page.json first`);
for (const file of fs.readdirSync(modules)) if (file.endsWith('.js')) fs.copyFileSync(path.join(modules, file), path.join(to, file));
for (const file of fs.readdirSync(from)) if (file.endsWith('.html') || file.endsWith('.css')) fs.copyFileSync(path.join(from, file), path.join(to, file));
fs.rmSync(built, { recursive: true, force: true });
