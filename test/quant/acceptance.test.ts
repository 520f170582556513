// The Quantize button's bound on a variant: agreement with fp32 and the task metric, on enough
// held-out windows; a refused variant leaves no file behind.
import { existsSync, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelRegistry } from '../../runtime/model';
import { readModelFile } from '../../runtime/onnx';
import { bundledModelsDir } from '../../runtime/paths';
import { DEFAULT_ACCEPTANCE, acceptanceFailure, runQuantizeJob } from '../../runtime/quant';
import { caught } from '../helpers/errors';

const base = { variant: 'int8-gateway', windows: 200, heldOutSource: 'newest 200 windows of the log' };

describe('acceptanceFailure', () => {
  it('should pass a variant at the bound and refuse one below it, with the figures', () => {
    expect(acceptanceFailure({ ...base, top1: 0.98 }, DEFAULT_ACCEPTANCE)).toBeUndefined();
    expect(acceptanceFailure({ ...base, top1: 0.975 }, DEFAULT_ACCEPTANCE)).toBe('int8-gateway refused: it agrees with fp32 on 97.5 % of 200 held-out windows (newest 200 windows of the log), the bound is 98.0 %. No file was written.');
  });

  it('should hold the task metric within the bound when the windows have labels', () => {
    expect(acceptanceFailure({ ...base, top1: 0.99, metric: { name: 'accuracy', fp32: 0.95, variant: 0.94, delta: -0.01 } }, DEFAULT_ACCEPTANCE)).toBeUndefined();
    expect(acceptanceFailure({ ...base, top1: 0.99, metric: { name: 'accuracy', fp32: 0.95, variant: 0.935, delta: -0.015 } }, DEFAULT_ACCEPTANCE)).toMatch(/its accuracy is 93\.50 against fp32's 95\.00, 1\.50 points below; the bound is 1\.00/);
  });
});

describe('runQuantizeJob with an acceptance bound', () => {
  it('should refuse fewer held-out windows than the bound needs, before quantizing or writing anything', async () => {
    const registry = await ModelRegistry.open(bundledModelsDir(), { watch: false });
    const fp32 = registry.pick('fault-classifier', 'fp32');
    await registry.close();
    const { model, bytes } = await readModelFile(fp32.file);
    const output = path.join(mkdtempSync(path.join(os.tmpdir(), 'edge-infer-accept-')), 'v.onnx');
    const err = await caught(() => runQuantizeJob({ model, bytes, card: fp32.card, to: 'fp8-e4m3', method: 'percentile', load: 'fast', backend: 'wasm', html: false, output, heldOut: { windows: [], source: 'an empty test set' }, acceptance: DEFAULT_ACCEPTANCE }));
    expect(err).toMatchObject({ code: 'E_ARGUMENT', message: 'fp8-e4m3: the check needs at least 50 held-out windows, an empty test set gives 0' });
    expect(existsSync(output)).toBe(false);
  });
});
