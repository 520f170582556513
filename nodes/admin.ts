// The nodes' admin HTTP endpoints (behind Node-RED's adminAuth): the models for the editor, and
// quantizing a model from the editor, calibrated on the windows this gateway recorded. A job's
// variant is checked against fp32 on the newest windows of the log and refused below the bound
// (DEFAULT_ACCEPTANCE); it never replaces a variant file; one job runs per model, two at most.
import { existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { unavailableReason } from '../runtime/engine';
import { EdgeInferError } from '../runtime/errors';
import { readModelFile } from '../runtime/onnx';
import { CALIBRATION_METHODS, type CalibrationMethod, DEFAULT_ACCEPTANCE, QUANT_TARGETS, type QuantTarget, calibrationFromLog, runQuantizeJob } from '../runtime/quant';
import type { ModelCatalog } from './catalog';
import { helpHtml, nodeTypeOf } from './help';
import type { AdminRequest, AdminResponse, RED } from './red';
import { type RuntimeNode, defaultResources } from './runtime-node';

export interface ModelSummary {
  type: string;
  id: string;
  title: string;
  task: string;
  help: string;
  channels: string[];
  variants: Array<{ variant: string; precision: string; sizeBytes: number; top1?: number; metricDelta?: number }>;
}

/** What the editor needs to build each model's palette entry, dialog and help. */
export function modelSummaries(catalog: ModelCatalog): ModelSummary[] {
  return catalog.models().map((m) => {
    const card = (m.variants.find((v) => v.precision === 'fp32') ?? m.variants[0]).card;
    return {
      type: nodeTypeOf(m.id),
      id: m.id,
      title: card.title,
      task: card.task,
      help: helpHtml(m),
      channels: card.input.channels.map((c) => c.name),
      variants: m.variants.map((v) => ({ variant: v.variant, precision: v.precision, sizeBytes: v.sizeBytes, top1: v.card.quantization?.agreement?.top1, metricDelta: v.card.quantization?.agreement?.metricDelta })),
    };
  });
}

export interface QuantizeStatus {
  id: string;
  model: string;
  to: QuantTarget;
  state: 'running' | 'done' | 'failed';
  done: number;
  total: number;
  error?: string;
  report?: { variant: string; sizeBytes: number; fp32SizeBytes: number; top1: number; cosine: number; metric?: { name: string; fp32: number; variant: number }; speedup: number; windows: number };
}

const jobs = new Map<string, QuantizeStatus>();
let jobCounter = 0;

/** Jobs at once on the gateway: quantizing and checking take a core each, and the flows need theirs. */
export const MAX_QUANTIZE_JOBS = 2;
/**
 * Windows the log must hold: the newest fifth is held out for the check, which needs
 * DEFAULT_ACCEPTANCE.minWindows of them.
 */
export const MIN_LOGGED_WINDOWS = DEFAULT_ACCEPTANCE.minWindows * 5;

/** A request the endpoint refuses with an HTTP status other than 400, and what the body says besides the error. */
class Refusal extends Error {
  constructor(readonly status: number, message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
  }
}

function fail(res: AdminResponse, status: number, err: unknown): void {
  if (err instanceof Refusal) {
    res.status(err.status).json({ error: err.message, ...err.extra });
    return;
  }
  res.status(status).json({ error: err instanceof Error ? err.message : String(err) });
}

const running = (): QuantizeStatus[] => [...jobs.values()].filter((j) => j.state === 'running');

/** `<model>.<to>-gateway.onnx`, or -2, -3, ... when a variant of that name is already there: a job never replaces one. */
function freeVariantName(folder: string, model: string, to: QuantTarget): string {
  for (let n = 1; ; n++) {
    const name = n === 1 ? `${to}-gateway` : `${to}-gateway-${n}`;
    const file = path.join(folder, `${model}.${name}.onnx`);
    if (!existsSync(file) && !existsSync(file.replace(/\.onnx$/, '.model.json'))) return name;
  }
}

/**
 * Starts a quantization job; progress and the report go out on comms topic
 * edge-infer/quantize/<job>, retained, so an editor that subscribes after a quick job still
 * hears how it ended (GET /edge-infer/quantize/<job> tells the same).
 */
async function startJob(RED: RED, catalog: ModelCatalog, body: Record<string, unknown>): Promise<QuantizeStatus> {
  const model = String(body.model ?? '');
  const to = String(body.to ?? '') as QuantTarget;
  const method = String(body.method ?? 'percentile') as CalibrationMethod;
  const samples = Number(body.samples ?? 1000);
  if (!QUANT_TARGETS.includes(to)) throw new EdgeInferError('E_ARGUMENT', `to must be one of ${QUANT_TARGETS.join(', ')}, got '${to}'`);
  if (!CALIBRATION_METHODS.includes(method)) throw new EdgeInferError('E_ARGUMENT', `method must be one of ${CALIBRATION_METHODS.join(', ')}, got '${method}'`);
  const minSamples = MIN_LOGGED_WINDOWS - DEFAULT_ACCEPTANCE.minWindows;
  if (!Number.isInteger(samples) || samples < minSamples) throw new EdgeInferError('E_ARGUMENT', `samples must be a whole number ≥ ${minSamples} (a fifth more are read and held out for the check, which needs ${DEFAULT_ACCEPTANCE.minWindows}), got ${String(body.samples)}`);
  const fp32 = catalog.pick(model, 'fp32');
  const same = running().find((j) => j.model === model);
  if (same) throw new Refusal(409, `${model}: quantization job ${same.id} is still running; one job at a time per model`, { job: same.id });
  const all = running();
  if (all.length >= MAX_QUANTIZE_JOBS) throw new Refusal(429, `${all.length} quantization jobs are running (${all.map((j) => j.id).join(', ')}); at most ${MAX_QUANTIZE_JOBS} at once`, { jobs: all.map((j) => j.id) });
  // Taken now, before the first await, so that a second request at the same moment sees it.
  const status: QuantizeStatus = { id: `q${++jobCounter}`, model, to, state: 'running', done: 0, total: 1 };
  jobs.set(status.id, status);
  try {
    await prepareAndRun(RED, catalog, body, status, { fp32, method, samples });
  } catch (err) {
    jobs.delete(status.id);
    throw err;
  }
  return status;
}

async function prepareAndRun(RED: RED, catalog: ModelCatalog, body: Record<string, unknown>, status: QuantizeStatus, o: { fp32: ReturnType<ModelCatalog['pick']>; method: CalibrationMethod; samples: number }): Promise<void> {
  const { fp32, method, samples } = o;
  const { model, to } = status;
  const runtimeNode = body.runtime ? (RED.nodes.getNode(String(body.runtime)) as RuntimeNode | null) : null;
  const resources = runtimeNode?.resources ?? defaultResources(RED);
  const log = resources.log();
  if (!log) throw new EdgeInferError('E_ARGUMENT', 'the runtime logs nowhere, so there are no recorded windows to calibrate on');
  const set = await calibrationFromLog(log, fp32.card, { samples, atLeast: MIN_LOGGED_WINDOWS, hint: `the newest fifth is held out to check the variant, and the check needs ${DEFAULT_ACCEPTANCE.minWindows}; let the flow run longer: the runtime keeps one window in ${resources.options.recordEvery}` });
  // The example models live in the package (node_modules: read-only, replaced on update); their
  // variants go to the user directory, which the catalog scans too.
  const folder = catalog.variantsDir ? path.join(catalog.variantsDir, model) : path.dirname(fp32.file);
  try {
    mkdirSync(folder, { recursive: true });
  } catch (err) {
    throw new EdgeInferError('E_ARGUMENT', `${folder}: cannot hold the new variant: ${err instanceof Error ? err.message : String(err)}`);
  }
  const variantName = freeVariantName(folder, model, to);
  const { model: proto, bytes } = await readModelFile(fp32.file);
  status.total = to === 'int8' ? set.calibration.length * 2 : 1;
  const topic = `edge-infer/quantize/${status.id}`;
  const publish = (): void => RED.comms.publish(topic, status, true);
  void runQuantizeJob({
    model: proto, bytes, card: fp32.card, to, method, load: 'fast', backend: 'wasm', html: true,
    calibration: set,
    heldOut: set.heldOut,
    output: path.join(folder, `${model}.${variantName}.onnx`),
    variantName,
    acceptance: DEFAULT_ACCEPTANCE,
    onProgress: (done, total) => {
      status.done = done;
      status.total = total;
      publish();
    },
  }).then(
    ({ comparison: c }) => {
      status.state = 'done';
      status.report = { variant: c.variant, sizeBytes: c.sizeBytes, fp32SizeBytes: c.fp32SizeBytes, top1: c.top1, cosine: c.cosine, metric: c.metric, speedup: c.latency.speedup, windows: c.windows };
      publish();
      // The registry notices the new file by itself; rescan now so the editor hears at once.
      void catalog.rescan().catch(() => undefined);
    },
    (err: unknown) => {
      status.state = 'failed';
      status.error = err instanceof Error ? err.message : String(err);
      publish();
    },
  );
}

export function registerAdmin(RED: RED, catalog: ModelCatalog): void {
  RED.httpAdmin.get('/edge-infer/models', RED.auth.needsPermission('edge-infer.read'), (_req: AdminRequest, res: AdminResponse) => {
    try {
      res.json(modelSummaries(catalog));
    } catch (err) {
      fail(res, 500, err);
    }
  });
  RED.httpAdmin.post('/edge-infer/quantize', RED.auth.needsPermission('edge-infer.write'), (req: AdminRequest, res: AdminResponse) => {
    startJob(RED, catalog, (req.body ?? {}) as Record<string, unknown>).then(
      (status) => res.json(status),
      (err: unknown) => fail(res, 400, err),
    );
  });
  // The runtime node's dialog: which backend each model loaded on it runs on, and why not native.
  RED.httpAdmin.get('/edge-infer/runtimes/:id/backends', RED.auth.needsPermission('edge-infer.read'), (req: AdminRequest, res: AdminResponse) => {
    const runtimeNode = RED.nodes.getNode(req.params.id) as RuntimeNode | null;
    if (!runtimeNode?.resources) {
      fail(res, 404, new EdgeInferError('E_ARGUMENT', `no deployed edge-infer runtime '${req.params.id}'`));
      return;
    }
    const { backend } = runtimeNode.resources.options;
    runtimeNode.resources.backends().then(
      (models) => res.json({ backend, native: unavailableReason('native') ?? 'available', models }),
      (err: unknown) => fail(res, 500, err),
    );
  });
  RED.httpAdmin.get('/edge-infer/quantize/:job', RED.auth.needsPermission('edge-infer.read'), (req: AdminRequest, res: AdminResponse) => {
    const status = jobs.get(req.params.job);
    if (status) res.json(status);
    else fail(res, 404, new EdgeInferError('E_ARGUMENT', `no quantization job '${req.params.job}'`));
  });
}
