// The process guard, in real child processes: a stray rejection is reported and counted and the
// process keeps running; an uncaught exception is reported and the process ends as Node would.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../runtime/paths';

function runChild(body: string): { status: number | null; out: string } {
  const script = `
    const { guardProcess } = require('./runtime/gateway/guard');
    const { GatewayMetrics } = require('./runtime/serve/metrics');
    const metrics = new GatewayMetrics({ processMetrics: false });
    const guard = guardProcess((err) => console.log('REPORTED ' + err.message.split('\\n')[0]), metrics);
    ${body}
  `;
  const r = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), '-e', script], { cwd: packageRoot(), encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

describe('the process guard', () => {
  it('should report and count a rejection nobody handles, and keep the process running', () => {
    const { status, out } = runChild(`
      Promise.reject(new Error('stray rejection in a stage'));
      setTimeout(async () => {
        const text = await metrics.text();
        console.log('ALIVE caught=' + guard.caught + ' ' + /edge_infer_internal_errors_total\\{pipeline="",stage="process"\\} (\\d+)/.exec(text)[1]);
      }, 200);
    `);
    expect(out).toMatch(/REPORTED unexpected error, caught so the gateway keeps running: Error: stray rejection in a stage/);
    expect(out).toMatch(/ALIVE caught=1 1/);
    expect(status).toBe(0);
  });

  it('should report an uncaught exception and let the process end with a failure', () => {
    const { status, out } = runChild(`setTimeout(() => { throw new Error('broken state'); }, 10);`);
    expect(out).toMatch(/REPORTED fatal error, the process ends: Error: broken state/);
    expect(status).not.toBe(0);
  });

  it('should remove its handlers when disposed', () => {
    const { status, out } = runChild(`guard.dispose(); Promise.reject(new Error('after dispose'));`);
    expect(out).not.toMatch(/REPORTED/);
    expect(status).not.toBe(0);
  });
});
