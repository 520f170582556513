// Models folders of tiny real models that read one 'speed' channel, each with its card: what the
// gateway tests need to see a model's output refused, a NaN score, or windows of several samples.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { type GatewayConfig, parseGatewayConfig } from '../../runtime/gateway/config';
import type { ModelCardInput } from '../../runtime/model';
import { tempDir } from './gateway';
import { gatherModel } from './models';

/** A regression card on one speed channel at 1 Hz, window 1 (one sample, one window), RMS feature. */
export function speedCard(id: string, over: { task?: ModelCardInput['task']; labels?: string[]; window?: number; threshold?: number } = {}): ModelCardInput {
  const window = over.window ?? 1;
  return {
    schema: 1,
    id,
    version: '1.0.0',
    title: `Speed model ${id}`,
    description: 'A test model on one speed channel.',
    task: over.task ?? 'regression',
    input: { tensor: 'x', channels: [{ name: 'speed', unit: 'krpm' }], sampleRate: 1, window, hop: window, features: { transform: 'rms' } },
    output: { tensor: 'y', score: 'first output value', unit: '-', ...(over.labels ? { labels: over.labels } : {}), ...(over.threshold !== undefined ? { threshold: over.threshold } : {}) },
    precision: 'fp32',
  };
}

/** A models folder holding each model as <id>.fp32.onnx with its card. */
export function modelsDir(models: Array<{ card: ModelCardInput; onnx: Uint8Array }>): string {
  const dir = tempDir('edge-infer-models-');
  for (const m of models) {
    writeFileSync(path.join(dir, `${m.card.id}.fp32.onnx`), m.onnx);
    writeFileSync(path.join(dir, `${m.card.id}.fp32.model.json`), JSON.stringify(m.card));
  }
  return dir;
}

/**
 * A gateway config with the speed-table model (wasm, a temp log, HTTP on a free port); `broker`
 * holds the broker fields (url, protocol, clientId, ...), which win over reconnectMs 100.
 */
export function speedTableConfig(broker: Record<string, unknown> & { url: string }, pipelines: unknown[], what: string): GatewayConfig {
  return parseGatewayConfig(
    {
      broker: { reconnectMs: 100, ...broker },
      models: modelsDir([{ card: speedCard('speed-table'), onnx: gatherModel() }]),
      storage: { path: path.join(tempDir(), 'log.db') },
      http: { port: 0, host: '127.0.0.1' },
      engine: { backend: 'wasm', threads: 1 },
      pipelines,
    },
    what,
  );
}
