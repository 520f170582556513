// The Node-RED user folder `edge-infer run` keeps in the working folder.
import { existsSync, mkdirSync, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NODE_RED_DIR, prepareUserDir } from '../../runtime/cli/node-red-user-dir';
import { packageRoot } from '../../runtime/paths';
import { tempDir } from '../helpers/gateway';

describe('prepareUserDir', () => {
  it('should make a new folder with edge-infer linked in, settings, package.json and the example flows', () => {
    const dir = path.join(tempDir('edge-infer-nr-dir-'), NODE_RED_DIR);
    const prepared = prepareUserDir(dir);
    expect(prepared).toEqual({ dir, wroteFlows: true, log: path.join(dir, 'edge-infer.db') });
    expect(realpathSync(path.join(dir, 'node_modules', 'edge-infer'))).toBe(realpathSync(packageRoot()));
    expect(JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).dependencies).toEqual({ 'edge-infer': `file:${packageRoot()}` });
    const settings = readFileSync(path.join(dir, 'settings.js'), 'utf8');
    expect(settings).toMatch(/uiHost: '127\.0\.0\.1'/);
    expect(settings).toMatch(/credentialSecret: '[0-9a-f]{48}'/);
    const flows = JSON.parse(readFileSync(path.join(dir, 'flows.json'), 'utf8')) as Array<{ type: string }>;
    expect(flows.filter((n) => n.type === 'tab')).toHaveLength(3);
  });

  it('should keep the flows and settings the user changed on the next run', () => {
    const dir = path.join(tempDir('edge-infer-nr-dir-'), NODE_RED_DIR);
    prepareUserDir(dir);
    writeFileSync(path.join(dir, 'flows.json'), '[{"id":"mine","type":"tab"}]');
    writeFileSync(path.join(dir, 'settings.js'), 'module.exports = { flowFile: "flows.json" };\n');
    expect(prepareUserDir(dir).wroteFlows).toBe(false);
    expect(readFileSync(path.join(dir, 'flows.json'), 'utf8')).toBe('[{"id":"mine","type":"tab"}]');
    expect(readFileSync(path.join(dir, 'settings.js'), 'utf8')).toBe('module.exports = { flowFile: "flows.json" };\n');
  });

  it('should write the examples again when the user deleted flows.json', () => {
    const dir = path.join(tempDir('edge-infer-nr-dir-'), NODE_RED_DIR);
    prepareUserDir(dir);
    const settings = readFileSync(path.join(dir, 'settings.js'), 'utf8');
    writeFileSync(path.join(dir, 'flows.json'), '');
    expect(prepareUserDir(dir).wroteFlows).toBe(false);
    rmSync(path.join(dir, 'flows.json'));
    expect(prepareUserDir(dir).wroteFlows).toBe(true);
    // Its credential key is the folder's own: written once, never replaced.
    expect(readFileSync(path.join(dir, 'settings.js'), 'utf8')).toBe(settings);
  });

  it('should point a link left by a package elsewhere at this one', () => {
    const base = tempDir('edge-infer-nr-dir-');
    const dir = path.join(base, NODE_RED_DIR);
    mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
    mkdirSync(path.join(base, 'old-clone'));
    symlinkSync(path.join(base, 'old-clone'), path.join(dir, 'node_modules', 'edge-infer'), 'dir');
    prepareUserDir(dir);
    expect(readlinkSync(path.join(dir, 'node_modules', 'edge-infer'))).toBe(path.resolve(packageRoot()));
  });

  it('should leave an edge-infer installed as a real folder alone', () => {
    const dir = path.join(tempDir('edge-infer-nr-dir-'), NODE_RED_DIR);
    mkdirSync(path.join(dir, 'node_modules', 'edge-infer'), { recursive: true });
    writeFileSync(path.join(dir, 'node_modules', 'edge-infer', 'package.json'), '{"name":"edge-infer"}');
    prepareUserDir(dir);
    expect(existsSync(path.join(dir, 'node_modules', 'edge-infer', 'package.json'))).toBe(true);
  });

  it('should refuse a file where the folder should be, naming it', () => {
    const file = path.join(tempDir('edge-infer-nr-dir-'), NODE_RED_DIR);
    writeFileSync(file, 'not a folder');
    expect(() => prepareUserDir(file)).toThrow(new RegExp(`${file}: the Node-RED user folder is a file`));
  });
});
