// The nodes' admin HTTP endpoints (behind Node-RED's adminAuth): the models for the editor, and
// quantizing a model from the editor, calibrated on the windows this gateway recorded.
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { EdgeInferError } from '../runtime/errors';
import { readModelFile } from '../runtime/onnx';
import { CALIBRATION_METHODS, type CalibrationMethod, QUANT_TARGETS, type QuantTarget, calibrationFromLog, runQuantizeJob } from '../runtime/quant';
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

function fail(res: AdminResponse, status: number, err: unknown): void {
  res.status(status).json({ error: err instanceof Error ? err.message : String(err) });
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
  if (!Number.isInteger(samples) || samples < 10) throw new EdgeInferError('E_ARGUMENT', `samples must be a whole number ≥ 10, got ${String(body.samples)}`);
  const fp32 = catalog.pick(model, 'fp32');
  const runtimeNode = body.runtime ? (RED.nodes.getNode(String(body.runtime)) as RuntimeNode | null) : null;
  const resources = runtimeNode?.resources ?? defaultResources(RED);
  const log = resources.log();
  if (!log) throw new EdgeInferError('E_ARGUMENT', 'the runtime logs nowhere, so there are no recorded windows to calibrate on');
  const set = await calibrationFromLog(log, fp32.card, { samples, atLeast: 20, hint: `let the flow run longer: the runtime keeps one window in ${resources.options.recordEvery}` });
  const variantName = `${to}-gateway`;
  // The example models live in the package (node_modules: read-only, replaced on update); their
  // variants go to the user directory, which the catalog scans too.
  const folder = catalog.variantsDir ? path.join(catalog.variantsDir, model) : path.dirname(fp32.file);
  try {
    mkdirSync(folder, { recursive: true });
  } catch (err) {
    throw new EdgeInferError('E_ARGUMENT', `${folder}: cannot hold the new variant: ${err instanceof Error ? err.message : String(err)}`);
  }
  const { model: proto, bytes } = await readModelFile(fp32.file);
  const status: QuantizeStatus = { id: `q${++jobCounter}`, model, to, state: 'running', done: 0, total: to === 'int8' ? set.calibration.length * 2 : 1 };
  jobs.set(status.id, status);
  const topic = `edge-infer/quantize/${status.id}`;
  const publish = (): void => RED.comms.publish(topic, status, true);
  void runQuantizeJob({
    model: proto, bytes, card: fp32.card, to, method, load: 'fast', backend: 'wasm', html: true,
    calibration: set,
    heldOut: set.heldOut,
    output: path.join(folder, `${model}.${variantName}.onnx`),
    variantName,
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
  return status;
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
  RED.httpAdmin.get('/edge-infer/quantize/:job', RED.auth.needsPermission('edge-infer.read'), (req: AdminRequest, res: AdminResponse) => {
    const status = jobs.get(req.params.job);
    if (status) res.json(status);
    else fail(res, 404, new EdgeInferError('E_ARGUMENT', `no quantization job '${req.params.job}'`));
  });
}
