#!/usr/bin/env node
'use strict';
// The edge-infer command; the code lives in dist/ (built by `npm install`).
require('../dist/runtime/cli/index.js')
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
