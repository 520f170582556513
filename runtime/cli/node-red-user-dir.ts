// The Node-RED user directory that `edge-infer run` keeps in the working folder: edge-infer
// installed in it as `npm install <path>` does it (a link in node_modules), settings, and the
// example flows. Kept across runs: what the user changes in the editor, or in settings.js, stays.
import { existsSync, lstatSync, mkdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { EdgeInferError } from '../errors';
import { packageRoot } from '../paths';
import { exampleFlows } from './node-red-flows';

/** The folder's name in the working folder. */
export const NODE_RED_DIR = 'edge-infer-node-red';

export interface PreparedUserDir {
  dir: string;
  /** The example flows were written now (the folder had no flows.json). */
  wroteFlows: boolean;
  /** The model nodes' default log (their runtime's dbPath is empty in the example flows). */
  log: string;
}

/**
 * settings.js, written once. The port comes from the command line each run (`--port`), the
 * broker from the environment (see node-red-flows.ts), so nothing here goes stale.
 */
const settingsJs = (credentialSecret: string): string => `// Node-RED settings for the Node-RED that \`edge-infer run\` starts beside the gateway.
// Written once and never again: edit freely. The port is given on the command line
// (edge-infer run --node-red-port, default 1880); the example flows' broker node reads
// EDGE_INFER_BROKER_HOST and EDGE_INFER_BROKER_PORT, which edge-infer sets to its embedded broker.
module.exports = {
    flowFile: 'flows.json',
    // Encrypts the credentials of the flows (broker passwords); made for this folder.
    credentialSecret: '${credentialSecret}',
    editorTheme: { projects: { enabled: false } },
    // This machine only, as the gateway's dashboard. Set adminAuth (and httpNodeAuth for the
    // dashboard at /edge-infer/) before listening on other interfaces.
    uiHost: '127.0.0.1',
    // Warnings and errors only: the gateway shares the terminal.
    logging: { console: { level: 'warn', metrics: false, audit: false } },
    // edge-infer's nodes: edgeInfer: { modelsDir: '/path/to/models' } to use your own models.
    edgeInfer: {},
};
`;

/** An `npm install <path>` link to `target` at `link`, made or repaired; a real folder there is left alone. */
function ensureLink(link: string, target: string): void {
  let stat;
  try {
    stat = lstatSync(link);
  } catch {
    stat = undefined;
  }
  if (stat && !stat.isSymbolicLink()) return;
  if (stat) {
    if (path.resolve(path.dirname(link), readlinkSync(link)) === target) return;
    // A link to where this package was before (moved, or another clone): point it here.
    rmSync(link, { force: true });
  }
  symlinkSync(target, link, 'dir');
}

/**
 * Makes `dir` a Node-RED user directory with this package installed; writes settings.js and
 * package.json when they are missing, and the example flows when there is no flows.json (a new
 * folder, or one whose flows.json the user deleted to get the examples back).
 */
export function prepareUserDir(dir: string, root = packageRoot()): PreparedUserDir {
  const at = path.resolve(dir);
  if (existsSync(at) && !lstatSync(at).isDirectory()) throw new EdgeInferError('E_ARGUMENT', `${at}: the Node-RED user folder is a file; move it away or run elsewhere`);
  mkdirSync(path.join(at, 'node_modules'), { recursive: true });
  ensureLink(path.join(at, 'node_modules', 'edge-infer'), path.resolve(root));
  const pkg = path.join(at, 'package.json');
  if (!existsSync(pkg)) {
    const manifest = { name: 'edge-infer-node-red', description: 'Node-RED started by edge-infer run', version: '0.0.1', private: true, dependencies: { 'edge-infer': `file:${path.resolve(root)}` } };
    writeFileSync(pkg, `${JSON.stringify(manifest, null, 2)}\n`);
  }
  const settings = path.join(at, 'settings.js');
  if (!existsSync(settings)) writeFileSync(settings, settingsJs(randomBytes(24).toString('hex')));
  const flows = path.join(at, 'flows.json');
  const wroteFlows = !existsSync(flows);
  if (wroteFlows) writeFileSync(flows, `${JSON.stringify(exampleFlows(path.join(root, 'flows')), null, 2)}\n`);
  return { dir: at, wroteFlows, log: path.join(at, 'edge-infer.db') };
}
