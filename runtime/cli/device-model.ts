// `edge-infer device-model set|clear|list`: a running gateway's per-device model variants, through
// its HTTP API (api/device-models). Setting and clearing need a login where the gateway asks for
// one: --user, and the password from stdin, as teach-in does. The folder is the gateway's path:
// the gateway reads it, so it is sent as given, made absolute against this directory.
import * as path from 'node:path';
import type { Command } from 'commander';
import { EdgeInferError } from '../errors';
import type { DeviceModelStatus } from '../gateway/device-models';
import { print, printJson } from './output';
import { call, login } from './teach-in';

interface DeviceModelOptions {
  url: string;
  device?: string;
  model?: string;
  dir?: string;
  user?: string;
  json?: boolean;
}

/** One device's model as a line an operator reads. */
export function deviceModelLine(s: DeviceModelStatus): string {
  const at = `${s.device} (${s.model})`;
  if (s.state === 'active') return `${at}: its own ${s.variant} from ${s.folder} (sha256 ${(s.sha256 ?? '').slice(0, 12)}), threshold ${s.threshold ?? 'none'}, since ${s.since}`;
  return `${at}: ${s.state}, the shared variant serves it, since ${s.since}${s.reason ? `: ${s.reason}` : ''}`;
}

/**
 * Serves `dir` to the device on the gateway (api/device-models/set), the folder made absolute
 * against this directory; `session` is a login's cookie header. The status it answers.
 */
export async function setDeviceModel(o: { url: string }, what: string, target: { device: string; model: string; dir: string }, session: Record<string, string>): Promise<DeviceModelStatus> {
  const body = JSON.stringify({ device: target.device, model: target.model, folder: path.resolve(target.dir) });
  return (await call(o, what, 'api/device-models/set', { method: 'POST', headers: { 'content-type': 'application/json', ...session }, body })) as DeviceModelStatus;
}

export function registerDeviceModel(program: Command): void {
  program
    .command('device-model')
    .description("give a device its own model folder (a fine-tuned variant) on a running gateway, clear it, or list who has one")
    .argument('<action>', 'set, clear or list')
    .option('--url <url>', "the gateway's HTTP address", 'http://127.0.0.1:8080')
    .option('--device <device>', 'the device')
    .option('--model <model>', 'the model id')
    .option('--dir <folder>', "set: the device's model folder (<id>.<variant>.onnx and .model.json files)")
    .option('--user <user>', 'log in as this user (password from stdin), where the gateway asks for a login')
    .option('--json', 'print the status as JSON')
    .addHelpText('after', '\nExamples:\n  edge-infer device-model set --device pump-1 --model vibration-anomaly --dir /var/lib/edge-infer/fine-tuned/pump-1\n  edge-infer device-model list\n  edge-infer device-model clear --device pump-1 --model vibration-anomaly')
    .action(async (action: string, o: DeviceModelOptions) => {
      const what = `device-model ${action}`;
      if (!['set', 'clear', 'list'].includes(action)) throw new EdgeInferError('E_ARGUMENT', `device-model: expected set, clear or list, got '${action}'`);
      if (action !== 'list' && (o.device === undefined || o.model === undefined)) throw new EdgeInferError('E_ARGUMENT', `${what}: expected --device and --model`);
      if (action === 'set' && o.dir === undefined) throw new EdgeInferError('E_ARGUMENT', `${what}: expected --dir, the device's model folder`);
      if (action !== 'set' && o.dir !== undefined) throw new EdgeInferError('E_ARGUMENT', `${what}: --dir is for set`);
      if (action === 'list' && (o.device !== undefined || o.model !== undefined)) throw new EdgeInferError('E_ARGUMENT', `${what}: --device and --model are for set and clear`);
      let statuses: DeviceModelStatus[];
      if (action === 'list') {
        statuses = ((await call(o, what, 'api/device-models', { headers: await login(o, what) })) as { deviceModels: DeviceModelStatus[] }).deviceModels;
      } else if (action === 'set') {
        statuses = [await setDeviceModel(o, what, { device: o.device!, model: o.model!, dir: o.dir! }, await login(o, what))];
      } else {
        const headers = { 'content-type': 'application/json', ...(await login(o, what)) };
        statuses = [(await call(o, what, 'api/device-models/clear', { method: 'POST', headers, body: JSON.stringify({ device: o.device, model: o.model }) })) as DeviceModelStatus];
      }
      if (o.json) printJson(action === 'list' ? statuses : statuses[0]);
      else if (statuses.length === 0) print('no device has a model of its own');
      else for (const s of statuses) print(deviceModelLine(s));
    });
}
