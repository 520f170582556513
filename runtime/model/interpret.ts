// What a model's raw output means, in the card's words: a score, a label, an anomaly flag.
import { EdgeInferError } from '../errors';
import type { ModelCard } from './card';

export interface Interpretation {
  /** Anomaly: the score; classification: the top probability; regression: the predicted value. */
  score: number;
  /** Classification: the most probable label; anomaly: 'anomaly' or 'normal'. */
  label?: string;
  /** Classification: probability per label. */
  probabilities?: Record<string, number>;
  /** True when the window needs attention: score over threshold, or a non-normal label confident enough. */
  anomaly: boolean;
  threshold?: number;
}

/** The label a classifier uses for a healthy machine: 'normal' if it has one, else its first label. */
export function normalLabel(card: ModelCard): string | undefined {
  const labels = card.output.labels;
  return labels?.includes('normal') ? 'normal' : labels?.[0];
}

/**
 * Reads one window's outputs as the card describes them: the tensor it names, interpreted.
 * E_RUN names the output when the model did not give it.
 */
export function interpretOutputs(card: ModelCard, outputs: Readonly<Record<string, { data: unknown }>>): Interpretation {
  const t = outputs[card.output.tensor];
  if (!t) throw new EdgeInferError('E_RUN', `${card.id}: the model gave no output '${card.output.tensor}' (it gave ${Object.keys(outputs).map((k) => `'${k}'`).join(', ') || 'none'})`);
  return interpret(card, t.data as ArrayLike<number>);
}

/** Reads one window's output tensor (card.output.tensor) as the card describes it. */
export function interpret(card: ModelCard, output: ArrayLike<number>): Interpretation {
  const threshold = card.output.threshold;
  if (output.length === 0) throw new EdgeInferError('E_RUN', `${card.id}: output '${card.output.tensor}' is empty`);
  switch (card.task) {
    case 'anomaly': {
      const score = output[0];
      const anomaly = threshold !== undefined && score >= threshold;
      return { score, label: anomaly ? 'anomaly' : 'normal', anomaly, threshold };
    }
    case 'classification': {
      const labels = card.output.labels ?? [];
      if (output.length !== labels.length) {
        throw new EdgeInferError('E_RUN', `${card.id}: output '${card.output.tensor}' has ${output.length} values for ${labels.length} labels`);
      }
      let best = 0;
      for (let k = 1; k < output.length; k++) if (output[k] > output[best]) best = k;
      const probabilities: Record<string, number> = {};
      labels.forEach((l, k) => (probabilities[l] = output[k]));
      const score = output[best];
      const anomaly = labels[best] !== normalLabel(card) && score >= (threshold ?? 0);
      return { score, label: labels[best], probabilities, anomaly, threshold };
    }
    case 'regression': {
      const score = output[0];
      return { score, anomaly: threshold !== undefined && score >= threshold, threshold };
    }
  }
}
