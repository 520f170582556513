// What the npm package holds for Node-RED: the built nodes, the example flows where Node-RED's
// Import > Examples looks for them (examples/, made from flows/ by the build) and only there, and
// the license package.json names. A user's install into a Node-RED user directory downloads
// nothing: onnxruntime-node (whose install script fetches CUDA files on x64 Linux) is an optional
// peer dependency the user adds with the skip flag, and its absence is a reason, not a crash.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
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

describe('onnxruntime-node in a Node-RED user directory', () => {
  it('should not be installed with edge-infer, so that a user\'s install downloads nothing, while the project\'s own npm ci keeps it', () => {
    const manifest = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    expect(manifest.dependencies['onnxruntime-node']).toBeUndefined();
    expect(manifest.optionalDependencies?.['onnxruntime-node']).toBeUndefined();
    expect(manifest.peerDependencies['onnxruntime-node']).toBe('~1.30.0');
    expect(manifest.peerDependenciesMeta['onnxruntime-node']).toEqual({ optional: true });
    expect(manifest.devDependencies['onnxruntime-node']).toBe('~1.30.0');
    const ownLock = JSON.parse(readFileSync(path.join(packageRoot(), 'package-lock.json'), 'utf8')) as { packages: Record<string, { devDependencies?: Record<string, string>; dev?: boolean }> };
    expect(ownLock.packages[''].devDependencies?.['onnxruntime-node']).toBe('~1.30.0');
    expect(ownLock.packages['node_modules/onnxruntime-node'].dev).toBe(true);
    // What npm resolves for `npm install edge-infer` in a user directory, from the packed package.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-userdir-'));
    execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: packageRoot(), stdio: 'ignore' });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'node-red-project', private: true }));
    execFileSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', `./${tarball}`], { cwd: dir, stdio: 'ignore' });
    const lock = JSON.parse(readFileSync(path.join(dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
    expect(Object.keys(lock.packages)).toContain('node_modules/onnxruntime-web');
    expect(Object.keys(lock.packages).filter((p) => p.includes('onnxruntime-node'))).toEqual([]);
  }, 120_000);

  it('should skip every download of onnxruntime-node\'s install script with the flag the README gives', () => {
    const script = path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'script', 'install.js');
    // No npm around it (so not a "local install"), no network: with the flag it exits at once, having fetched nothing.
    const env = { PATH: process.env.PATH, ONNXRUNTIME_NODE_INSTALL: 'skip', GLOBAL_AGENT_HTTPS_PROXY: 'http://127.0.0.1:9' };
    expect(execFileSync(process.execPath, [script], { env, encoding: 'utf8', timeout: 20_000 })).toBe('');
  });

  it('should say why native is missing when onnxruntime-node is not installed, and run on wasm', () => {
    // edge-infer's build on a node_modules with every package of this checkout but onnxruntime-node.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-infer-no-native-'));
    cpSync(path.join(packageRoot(), 'dist'), path.join(dir, 'dist'), { recursive: true });
    mkdirSync(path.join(dir, 'node_modules'));
    const modules = path.join(packageRoot(), 'node_modules');
    for (const name of readdirSync(modules)) {
      if (name === 'onnxruntime-node' || name.startsWith('.')) continue;
      symlinkSync(path.join(modules, name), path.join(dir, 'node_modules', name), 'dir');
    }
    const probe = `const e = require('./dist/runtime/engine'); const r = require('./dist/nodes/resources');
      console.log(JSON.stringify({ why: e.unavailableReason('native'), auto: e.resolveBackend('auto').name, note: r.whyNotNative('auto', 'wasm') }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', probe], { cwd: dir, encoding: 'utf8' })) as { why: string; auto: string; note: string };
    expect(out.why).toBe('onnxruntime-node is not installed (add it with ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@~1.30.0 where edge-infer is installed)');
    expect(out.auto).toBe('wasm');
    expect(out.note).toBe(out.why);
  });
});
