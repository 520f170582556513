'use strict';
// Preloaded (node --require) into a process under test: writes "<process.arch> <process.platform>"
// to the file EDGE_INFER_REPORT_ARCH names, so the test knows what really ran, from inside it.
const file = process.env.EDGE_INFER_REPORT_ARCH;
if (file) require('node:fs').writeFileSync(file, `${process.arch} ${process.platform}`);
