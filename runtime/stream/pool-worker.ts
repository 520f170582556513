// A thread of the worker pool (pool.ts): loads the models it is asked to run, computes each
// window's features from its shared samples and runs the model on the batch. Started by
// WorkerPool; never imported by anything else.
import { parentPort } from 'node:worker_threads';
// The session module itself, not the engine's index: a thread starts with less to load.
import { ModelSession, type SessionOptions, type WindowOutcome } from '../engine/session';
import { type ErrorCode, isEdgeInferError } from '../errors';
import { computeFeatures } from './features';
import type { WireJob, WireLoad, WireOutcome, WireReply, WireRequest } from './pool';

const port = parentPort;
if (!port) throw new Error('pool-worker: not started as a worker thread');

const sessions = new Map<number, Promise<ModelSession>>();

function wire(err: unknown): { code: ErrorCode; message: string } {
  if (isEdgeInferError(err)) return { code: err.code, message: err.message };
  return { code: 'E_RUN', message: err instanceof Error ? err.message : String(err) };
}

function sessionFor(job: WireJob | WireLoad): Promise<ModelSession> {
  let s = sessions.get(job.model.id);
  if (!s) {
    s = ModelSession.load(job.model.file, job.model.options as SessionOptions);
    // A load that failed is tried again by the next batch (the file may be back by then).
    s.catch(() => sessions.delete(job.model.id));
    sessions.set(job.model.id, s);
  }
  return s;
}

async function run(job: WireJob): Promise<WireReply> {
  const session = await sessionFor(job);
  const features: Array<Float32Array | null> = [];
  const outcomes: WireOutcome[] = new Array(job.windows.length);
  const feeds = [];
  const index: number[] = [];
  for (const [i, channels] of job.windows.entries()) {
    try {
      const f = computeFeatures(job.input, channels);
      features.push(f);
      feeds.push({ [job.input.tensor]: { type: 'float32' as const, data: f, dims: job.dims } });
      index.push(i);
    } catch (err) {
      features.push(null);
      outcomes[i] = { ok: false, ...wire(err) };
    }
  }
  const ran: WindowOutcome[] = feeds.length ? await session.runWindows(feeds) : [];
  ran.forEach((o, k) => (outcomes[index[k]] = o.ok ? o : { ok: false, code: o.error.code, message: o.error.message }));
  return { type: 'ran', job: job.job, features, outcomes };
}

/** Loads a model and, when asked, runs silent windows through it: the JIT and the model's buffers are ready before the stream. */
async function load(m: WireLoad): Promise<WireReply> {
  await sessionFor(m);
  if (m.warm) {
    const { input, dims, windows } = m.warm;
    const silent = Array.from({ length: windows }, () => input.channels.map(() => new Float32Array(input.window)));
    await run({ type: 'run', job: m.job, model: m.model, input, dims, windows: silent });
  }
  return { type: 'ran', job: m.job, features: [], outcomes: [] };
}

/** The buffers to hand back without a copy: the features and the outputs (each its own). */
function transfers(reply: WireReply): ArrayBuffer[] {
  if (reply.type !== 'ran') return [];
  const out = new Set<ArrayBuffer>();
  for (const f of reply.features) if (f && f.buffer instanceof ArrayBuffer) out.add(f.buffer);
  for (const o of reply.outcomes) {
    if (!o.ok) continue;
    for (const t of Object.values(o.outputs)) {
      const b = (t.data as { buffer?: unknown }).buffer;
      if (b instanceof ArrayBuffer) out.add(b);
    }
  }
  return [...out];
}

port.on('message', (m: WireRequest) => {
  if (m.type === 'unload') {
    const s = sessions.get(m.model);
    sessions.delete(m.model);
    s?.then((session) => session.dispose()).catch(() => undefined);
    return;
  }
  const answer = m.type === 'load' ? load(m) : run(m);
  answer.then(
    (reply) => port.postMessage(reply, transfers(reply)),
    (err: unknown) => port.postMessage({ type: 'failed', job: m.job, ...wire(err) } satisfies WireReply),
  );
});

