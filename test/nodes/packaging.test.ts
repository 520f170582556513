// What the npm package holds for Node-RED: the built nodes, the example flows where Node-RED's
// Import > Examples looks for them (examples/, made from flows/ by the build) and only there, and
// the license package.json names.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../runtime/paths';

describe('the npm package', () => {
  it('should ship the examples once, in examples/, the built nodes and the Apache 2.0 license', () => {
    // --ignore-scripts: the tree as built (npm test builds first), without building again.
    const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: packageRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as Array<{ files: Array<{ path: string }> }>;
    const files = packed[0].files.map((f) => f.path);
    const manifest = readFileSync(path.join(packageRoot(), 'package.json'), 'utf8');
    const examples = ['ab-precision.json', 'fault-classification.json', 'vibration-anomaly-detection.json'];
    for (const e of examples) expect(files).toContain(`examples/${e}`);
    expect(files.filter((f) => f.startsWith('flows/'))).toEqual([]);
    expect(files).toEqual(expect.arrayContaining(['nodes/edge-infer.js', 'nodes/edge-infer.html', 'nodes/locales/en-US/edge-infer.json', 'dist/nodes/index.js', 'LICENSE']));
    expect((JSON.parse(manifest) as { license: string }).license).toBe('Apache-2.0');
    const license = readFileSync(path.join(packageRoot(), 'LICENSE'), 'utf8');
    expect(license).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    expect(license).toMatch(/END OF TERMS AND CONDITIONS/);
  });
});
