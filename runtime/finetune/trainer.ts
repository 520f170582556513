// Runs the training on its own thread (train-worker.ts) and ends it when the fine-tune is
// cancelled: terminate() stops it mid-batch, and nothing it made is kept.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { EdgeInferError } from '../errors';
import type { TrainReply, TrainRequest } from './protocol';

export type TrainResult = Extract<TrainReply, { type: 'done' }>;

function spawn(request: TrainRequest): Worker {
  // Heap bounds for the thread's JS; the WASM backend's memory grows with the batch, not the set.
  const resourceLimits = { maxOldGenerationSizeMb: 256 };
  if (path.extname(__filename) === '.ts') {
    // Under tsx (tests, benchmarks): the worker loads the TypeScript source through tsx too.
    const entry = path.join(__dirname, 'train-worker.ts');
    const code = `require(${JSON.stringify(require.resolve('tsx/cjs'))});\nrequire(${JSON.stringify(entry)});`;
    return new Worker(code, { eval: true, workerData: request, resourceLimits });
  }
  return new Worker(path.join(__dirname, 'train-worker.js'), { workerData: request, resourceLimits });
}

/** Trains on a worker thread; progress per epoch; rejects with E_CANCELLED when the signal aborts. */
export function trainOnWorker(request: TrainRequest, opts: { onEpoch?: (epoch: number, epochs: number, loss: number) => void; signal?: AbortSignal } = {}): Promise<TrainResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new EdgeInferError('E_CANCELLED', 'fine-tune cancelled before training'));
    const worker = spawn(request);
    let settled = false;
    const settle = (f: () => void): void => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      f();
    };
    const onAbort = (): void => {
      settle(() => reject(new EdgeInferError('E_CANCELLED', 'fine-tune cancelled while training')));
      void worker.terminate();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: TrainReply) => {
      if (m.type === 'progress') opts.onEpoch?.(m.epoch, m.epochs, m.loss);
      else if (m.type === 'done') settle(() => resolve(m));
      else settle(() => reject(new EdgeInferError('E_RUN', `fine-tune: training failed: ${m.message}`)));
      if (m.type !== 'progress') void worker.terminate();
    });
    worker.on('error', (err) => settle(() => reject(new EdgeInferError('E_RUN', `fine-tune: the training thread failed: ${err.message}`, { cause: err }))));
    worker.on('exit', (code) => settle(() => reject(new EdgeInferError('E_RUN', `fine-tune: the training thread stopped (exit code ${code}) before it finished`))));
  });
}
