// `edge-infer teach-in start|status|cancel`: a running gateway's teach-in, through its HTTP API
// (api/teach-in). Starting and cancelling need a login where the gateway asks for one (bound
// beyond 127.0.0.1 with users): --user, and the password from stdin as hash-password reads it.
import type { Command } from 'commander';
import { EdgeInferError } from '../errors';
import type { TeachInStatus } from '../teachin';
import { readPassword } from './hash-password';
import { print, printJson } from './output';

interface TeachInOptions {
  url: string;
  device?: string;
  model?: string;
  windows?: string;
  minutes?: string;
  user?: string;
  json?: boolean;
}

/** A whole number or a decimal from the command line, named when it is not one. */
function numberOption(name: string, text: string | undefined, whole: boolean): number | undefined {
  if (text === undefined) return undefined;
  if (!(whole ? /^-?\d+$/ : /^-?\d+(\.\d+)?$/).test(text)) throw new EdgeInferError('E_ARGUMENT', `--${name}: expected ${whole ? 'a whole number' : 'a number'}, got '${text}'`);
  return Number(text);
}

/** A route under the gateway's address; --url named when it is not an http(s) address. */
export function urlOf(base: string, route: string): URL {
  let u: URL;
  try {
    u = new URL(route, base.endsWith('/') ? base : `${base}/`);
  } catch {
    throw new EdgeInferError('E_ARGUMENT', `--url: expected the gateway's address, such as http://127.0.0.1:8080, got '${base}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new EdgeInferError('E_ARGUMENT', `--url: expected an http:// or https:// address, got '${base}'`);
  return u;
}

/** One request to the gateway; its error answer becomes one line naming the action. */
export async function call(o: TeachInOptions, what: string, route: string, init: RequestInit = {}): Promise<unknown> {
  let res: Response;
  const url = urlOf(o.url, route);
  try {
    res = await fetch(url, init);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new EdgeInferError('E_ARGUMENT', `${what}: the gateway at ${o.url} did not answer (${cause?.code ?? cause?.message ?? (err as Error).message})`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new EdgeInferError('E_ARGUMENT', `${what}: ${o.url} answered HTTP ${res.status} with no JSON; is it an edge-infer gateway?`);
  }
  // The gateway's own errors start with 'teach-in: ', which the action's name already says.
  if (!res.ok) throw new EdgeInferError('E_ARGUMENT', `${what}: ${(body as { error?: string }).error?.replace(/^teach-in: /, '') ?? `HTTP ${res.status}`}`);
  return body;
}

/** The session cookie of a login, when --user is given. */
export async function login(o: TeachInOptions, what: string): Promise<Record<string, string>> {
  if (o.user === undefined) return {};
  const url = urlOf(o.url, 'api/login');
  const password = await readPassword(process.stdin, process.stderr);
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: o.user, password }) }).catch((err: Error) => {
    throw new EdgeInferError('E_ARGUMENT', `${what}: the gateway at ${o.url} did not answer (${(err.cause as { code?: string } | undefined)?.code ?? err.message})`);
  });
  // The gateway's answer names the login already ('login: wrong user or password').
  if (!res.ok) throw new EdgeInferError('E_ARGUMENT', `${what}: ${((await res.json().catch(() => ({}))) as { error?: string }).error ?? `login as ${o.user}: HTTP ${res.status}`}`);
  const cookie = res.headers.get('set-cookie')?.split(';')[0];
  return cookie ? { cookie } : {};
}

/** One status as a line an operator reads. */
export function statusLine(s: TeachInStatus): string {
  const card = `the card's ${s.cardThreshold ?? 'none'}`;
  if (s.state === 'learning') {
    const l = s.learning!;
    const target = l.targetWindows !== null ? `${l.windows}/${l.targetWindows} windows` : `${l.windows} windows of ${l.targetMinutes} min`;
    return `${s.device} (${s.model}): learning, ${target}; threshold ${s.threshold} in force (${s.baseline ? 'the earlier baseline' : card})`;
  }
  if (s.state === 'active') {
    const b = s.baseline!;
    // Said only when the baseline learned from runs of K windows (the alert's K in a row), not single windows.
    const runs = b.consecutive > 1 ? `, the lowest of each ${b.consecutive} in a row` : '';
    return `${s.device} (${s.model}): baseline active, threshold ${s.threshold} from ${b.windows} healthy windows${runs} (${card})`;
  }
  return `${s.device} (${s.model}): no baseline, threshold ${s.threshold} (${card})`;
}

export function registerTeachIn(program: Command): void {
  program
    .command('teach-in')
    .description("start, follow or cancel a device's teach-in on a running gateway: its own threshold, learned from windows declared healthy")
    .argument('<action>', 'start, status or cancel')
    .option('--url <url>', "the gateway's HTTP address", 'http://127.0.0.1:8080')
    .option('--device <device>', 'the device')
    .option('--model <model>', 'the model id')
    .option('--windows <n>', 'start: learn this many windows')
    .option('--minutes <m>', "start: learn this many minutes of the device's data")
    .option('--user <user>', 'log in as this user (password from stdin), where the gateway asks for a login')
    .option('--json', 'print the status as JSON')
    .addHelpText('after', '\nExamples:\n  edge-infer teach-in start --device pump-1 --model vibration-anomaly --windows 2000\n  edge-infer teach-in status --device pump-1 --model vibration-anomaly\n  edge-infer teach-in status            (every device taught)\n  edge-infer teach-in cancel --device pump-1 --model vibration-anomaly')
    .action(async (action: string, o: TeachInOptions) => {
      const what = `teach-in ${action}`;
      if (!['start', 'status', 'cancel'].includes(action)) throw new EdgeInferError('E_ARGUMENT', `teach-in: expected start, status or cancel, got '${action}'`);
      if ((o.device === undefined) !== (o.model === undefined) || (action !== 'status' && o.device === undefined)) {
        throw new EdgeInferError('E_ARGUMENT', `${what}: expected --device and --model${action === 'status' ? ' together, or neither' : ''}`);
      }
      const windows = numberOption('windows', o.windows, true);
      const minutes = numberOption('minutes', o.minutes, false);
      if (action !== 'start' && (windows !== undefined || minutes !== undefined)) throw new EdgeInferError('E_ARGUMENT', `${what}: --windows and --minutes are for start`);
      if (action === 'start' && windows === undefined && minutes === undefined) throw new EdgeInferError('E_ARGUMENT', `${what}: expected --windows or --minutes`);
      let statuses: TeachInStatus[];
      if (action === 'status') {
        const q = o.device === undefined ? '' : `?device=${encodeURIComponent(o.device)}&model=${encodeURIComponent(o.model!)}`;
        const body = await call(o, what, `api/teach-in${q}`, { headers: await login(o, what) });
        statuses = o.device === undefined ? (body as { teachIns: TeachInStatus[] }).teachIns : [body as TeachInStatus];
      } else {
        const headers = { 'content-type': 'application/json', ...(await login(o, what)) };
        statuses = [(await call(o, what, `api/teach-in/${action}`, { method: 'POST', headers, body: JSON.stringify({ device: o.device, model: o.model, windows, minutes }) })) as TeachInStatus];
      }
      if (o.json) printJson(o.device === undefined && action === 'status' ? statuses : statuses[0]);
      else if (statuses.length === 0) print('no device is learning nor has a baseline');
      else for (const s of statuses) print(statusLine(s));
    });
}
