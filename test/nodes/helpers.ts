// Node-RED for the node tests: node-red-node-test-helper on the real Node-RED runtime, with the
// user directory in a temp folder (the runtime's log goes there).
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MachineSimulator, profileById } from '../../devices';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper');

helper.init(require.resolve('node-red'));

export const userDir = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-nodered-'));
process.on('exit', () => rmSync(userDir, { recursive: true, force: true }));

export { helper };

export interface TestNode {
  id: string;
  on(event: string, cb: (...args: never[]) => void): void;
  receive(msg: object): void;
  status: { (s: object): void };
}

/** Messages a helper node receives, collected. */
export function collect(node: TestNode): Array<{ payload: Record<string, unknown>; topic?: string }> {
  const got: Array<{ payload: Record<string, unknown>; topic?: string }> = [];
  node.on('input', ((msg: { payload: Record<string, unknown>; topic?: string }) => got.push(msg)) as never);
  return got;
}

export async function until(check: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** 2048 samples of a healthy pump, one array per channel: a window's payload for the vibration models. */
export function pumpWindow(seed: number): Record<'vib_x' | 'vib_y' | 'vib_z', number[]> {
  const b = new MachineSimulator(profileById('pump-motor'), { seed }).next('vibration', 2048);
  return { vib_x: Array.from(b.channels.vib_x), vib_y: Array.from(b.channels.vib_y), vib_z: Array.from(b.channels.vib_z) };
}
