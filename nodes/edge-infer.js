// Node-RED loads this file; the nodes are written in TypeScript and built into dist/ by `npm install`.
module.exports = require('../dist/nodes/index.js');
