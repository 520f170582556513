// What `edge-infer run` says about the Node-RED beside it when it cannot be had, or dies. (The
// real Node-RED beside a real gateway: run-node-red.test.ts.)
import { existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startNodeRedBeside } from '../../runtime/cli/node-red-beside';
import { freePort } from '../helpers/brokers';
import { tempDir, waitFor } from '../helpers/gateway';

function lines(): { say: (l: string) => void; complain: (l: string) => void; said: string[]; complained: string[] } {
  const said: string[] = [];
  const complained: string[] = [];
  return { say: (l) => said.push(l), complain: (l) => complained.push(l), said, complained };
}

describe('startNodeRedBeside', () => {
  it('should say in one line that Node-RED is left out when node-red is not installed, and how to get it', async () => {
    const out = lines();
    const cwd = tempDir('edge-infer-beside-');
    const beside = await startNodeRedBeside({ port: await freePort(), brokerHost: '127.0.0.1', brokerPort: 1883, cwd, redJs: null, ...out });
    expect(beside).toBeUndefined();
    expect(out.said).toEqual(['  Node-RED: left out, the node-red package is not installed (edge-infer installed without its dev dependencies); `npm install node-red` beside it brings it, --no-node-red says nothing']);
    expect(out.complained).toEqual([]);
    expect(existsSync(path.join(cwd, 'edge-infer-node-red'))).toBe(false);
  });

  it('should report a Node-RED that dies in one line with its last words, and not when it is stopped', async () => {
    const out = lines();
    const cwd = tempDir('edge-infer-beside-');
    const red = path.join(cwd, 'red.js');
    writeFileSync(red, "console.log('[warn] starting'); console.log('[error] out of luck'); setTimeout(() => process.exit(1), 100);");
    const beside = await startNodeRedBeside({ port: await freePort(), brokerHost: '127.0.0.1', brokerPort: 1883, cwd, redJs: red, answerWithinMs: 5000, ...out });
    expect(beside).toBeDefined();
    await beside!.child.exited;
    expect(await beside!.ready).toBe(false);
    expect(out.said).toContain('  node-red │ [error] out of luck');
    expect(out.complained).toEqual(['edge-infer: Node-RED stopped (exit code 1): [error] out of luck; the gateway goes on without it']);
    await beside!.stop();
    expect(out.complained).toHaveLength(1);
  });

  it('should hand Node-RED the embedded broker through the environment its flows read', async () => {
    const out = lines();
    const cwd = tempDir('edge-infer-beside-');
    const red = path.join(cwd, 'red.js');
    writeFileSync(red, 'console.log(process.env.EDGE_INFER_BROKER_HOST + ":" + process.env.EDGE_INFER_BROKER_PORT); setInterval(() => undefined, 1000);');
    const beside = await startNodeRedBeside({ port: await freePort(), brokerHost: '127.0.0.1', brokerPort: 18831, cwd, redJs: red, ...out });
    try {
      await waitFor(() => out.said.includes('  node-red │ 127.0.0.1:18831'), 10_000, 'the child to print the broker');
    } finally {
      await beside!.stop();
    }
    expect(out.complained).toEqual([]);
  });
});
