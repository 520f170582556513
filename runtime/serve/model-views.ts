// The part of a model's view that its card and file say (title, task, variant, threshold ...):
// the gateway and Node-RED each know which models they run and give these to the dashboard,
// which adds what the log says (windows/s, latency, agreement).
import type { ModelCard } from '../model';
import type { ModelView } from './dashboard-contract';

/** What the dashboard learns of a model in use from its host, before the log's numbers. */
export type ModelStatic = Omit<ModelView, 'windowsPerS' | 'latencyP50Ms' | 'latencyP99Ms' | 'agreement'>;

/**
 * A model's static view from its card (with the threshold the operator set, if any), its file
 * size and the backend running it.
 */
export function modelStaticOf(o: { pipeline: string | null; card: ModelCard; variant: string; bytes: number; backend: string | null }): ModelStatic {
  const card = o.card;
  return {
    pipeline: o.pipeline,
    model: card.id,
    title: card.title,
    task: card.task,
    variant: o.variant,
    precision: card.precision,
    bytes: o.bytes,
    backend: o.backend,
    threshold: card.output.threshold ?? null,
    labels: card.output.labels ?? null,
    // top-1 agreement is the one figure every task's card gives (anomaly: the flag's agreement).
    cardAgreement: card.quantization?.agreement?.top1 ?? null,
  };
}
