// What each step of an update says: one row in the log (model_updates) and one retained message
// on the model's status topic, so a subscriber (or a dashboard) sees the latest state of each
// model's update, and the log keeps all of them.
import type { ModelUpdateRecord, UpdateState } from '../store';

/** The status message's JSON. */
export interface UpdateStatus {
  model: string;
  pipeline: string | null;
  variant: string | null;
  sha256: string | null;
  state: UpdateState;
  reason: string | null;
  source: string;
  /** ISO time of the step. */
  time: string;
}

export function statusOf(r: ModelUpdateRecord): UpdateStatus {
  return { model: r.model, pipeline: r.pipeline, variant: r.variant, sha256: r.sha256, state: r.state, reason: r.reason, source: r.source, time: new Date(r.timeMs).toISOString() };
}

/** Fills the model id into a status (or update) topic template. */
export function modelTopic(template: string, model: string): string {
  return template.replace('{model}', model);
}

/** The subscription filter of an update topic template: `{model}` as `+`. */
export function modelFilter(template: string): string {
  return template.replace('{model}', '+');
}

/** The model id an update topic names, or undefined when the topic is not one. */
export function modelOfTopic(template: string, topic: string): string | undefined {
  const t = template.split('/');
  const g = topic.split('/');
  if (t.length !== g.length) return undefined;
  let model: string | undefined;
  for (let i = 0; i < t.length; i++) {
    if (t[i] === '{model}') model = g[i];
    else if (t[i] !== g[i]) return undefined;
  }
  return model || undefined;
}
