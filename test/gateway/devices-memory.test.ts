// 10,000 made-up device ids, then silence: the gateway follows each (within its device limit),
// and once they are evicted its memory is back within 10 % of where it started. Measured in a
// fresh process after a garbage collection (test/helpers/device-flood.ts).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../runtime/paths';

describe('a publisher that makes up device ids', () => {
  it('should give back the memory of 10,000 silent devices once they are evicted', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(packageRoot(), 'test', 'helpers', 'device-flood.ts'), '10000'], { cwd: packageRoot(), encoding: 'utf8', timeout: 170_000 });
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { devices: number; followed: number; startMb: number; peakMb: number; endMb: number };
    expect(m.followed).toBe(10_000);
    // The flood itself was visible (each device's window and journal entry cost memory)...
    expect(m.peakMb).toBeGreaterThan(m.startMb * 1.1);
    // ...and it is gone with the devices.
    expect(m.endMb, JSON.stringify(m)).toBeLessThan(m.startMb * 1.1);
  }, 180_000);
});
