// The Node-RED that `edge-infer run` starts beside the gateway on embedded defaults, so that a
// newcomer sees the flows in the editor next to the gateway's dashboard. Everything that can go
// wrong with it (not installed, port taken, it dies) is one line, and the gateway goes on.
import * as path from 'node:path';
import { BROKER_HOST_ENV, BROKER_PORT_ENV } from './node-red-flows';
import { NodeRedChild, portFree, resolveNodeRed } from './node-red-child';
import { NODE_RED_DIR, prepareUserDir } from './node-red-user-dir';

export interface BesideOptions {
  port: number;
  /** The embedded broker Node-RED's example flows connect to. */
  brokerHost: string;
  brokerPort: number;
  /** The working folder; the user directory is `<cwd>/edge-infer-node-red`. */
  cwd: string;
  /** Where lines go: stdout (say) and stderr (complain). */
  say: (line: string) => void;
  complain: (line: string) => void;
  /** red.js to run; default: the installed node-red package (tests give none that exists). */
  redJs?: string | null;
  /** How long to wait for the editor to answer before saying so. */
  answerWithinMs?: number;
}

/**
 * Node.js options for Node-RED: a smaller young generation (V8 grows each semi-space to 16 MB
 * under the flows' steady garbage, and it stays resident: about 95 MB more in all) and a heap
 * bound well above what the example flows use (about 60 MB), so a leak ends in an error rather
 * than in the gateway's memory.
 */
export const NODE_RED_NODE_OPTIONS = ['--max-semi-space-size=2', '--max-old-space-size=256'];

/** How long Node-RED gets to close its flows after SIGTERM before it is killed. */
export const NODE_RED_STOP_WITHIN_MS = 10_000;

/**
 * Node-RED's start-up notices that a newcomer cannot act on (projects are off in our settings; no
 * flow has credentials yet): left out of the terminal, which the gateway shares.
 */
const NOTICES = [/\[warn\] Projects disabled/, /\[warn\] Encrypted credentials not found/];

/** Where Node-RED's lines are told apart from the gateway's. */
const PREFIX = '  node-red │ ';

export interface Beside {
  child: NodeRedChild;
  userDir: string;
  /** Resolves once the editor answers (its URL printed), or it never will. */
  ready: Promise<boolean>;
  stop(): Promise<void>;
}

/** Starts Node-RED, or says in one line why not and resolves undefined. */
export async function startNodeRedBeside(o: BesideOptions): Promise<Beside | undefined> {
  const redJs = o.redJs === undefined ? resolveNodeRed() : o.redJs;
  if (!redJs) {
    o.say('  Node-RED: left out, the node-red package is not installed (edge-infer installed without its dev dependencies); `npm install node-red` beside it brings it, --no-node-red says nothing');
    return undefined;
  }
  if (!(await portFree(o.port))) {
    o.complain(`edge-infer: Node-RED left out: port ${o.port} is taken (another Node-RED?); --node-red-port <n> picks another, --no-node-red leaves it out`);
    return undefined;
  }
  let prepared;
  try {
    prepared = prepareUserDir(path.join(o.cwd, NODE_RED_DIR));
  } catch (err) {
    o.complain(`edge-infer: Node-RED left out: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
  const shown = path.relative(o.cwd, prepared.dir) || '.';
  o.say(`  Node-RED: starting on port ${o.port}, folder ./${shown}/ (${prepared.wroteFlows ? 'the example flows written now' : 'its flows kept from the last run'}; model nodes log to ./${path.join(shown, 'edge-infer.db')})`);
  const child = NodeRedChild.start({
    redJs,
    userDir: prepared.dir,
    port: o.port,
    env: { [BROKER_HOST_ENV]: o.brokerHost, [BROKER_PORT_ENV]: String(o.brokerPort) },
    nodeOptions: NODE_RED_NODE_OPTIONS,
    onLine: (line, stderr) => {
      if (!NOTICES.some((n) => n.test(line))) (stderr ? o.complain : o.say)(`${PREFIX}${line}`);
    },
    onUnexpectedExit: (how, last) => o.complain(`edge-infer: Node-RED stopped (${how})${last ? `: ${last.trim()}` : ''}; the gateway goes on without it`),
  });
  const ready = child.answering(o.answerWithinMs ?? 60_000).then((ok) => {
    if (ok) o.say(`  Node-RED editor: ${child.url} (dashboard: ${child.url}edge-infer/)`);
    else if (child.running) o.complain(`edge-infer: Node-RED has not answered on ${child.url} yet; its lines above (prefixed node-red) say why`);
    return ok;
  });
  return { child, userDir: prepared.dir, ready, stop: () => child.stop(NODE_RED_STOP_WITHIN_MS) };
}
