// Running a model over labelled windows and scoring it the way its card says it should be scored.
import type { ModelSession } from '../engine/session';
import { EdgeInferError } from '../errors';
import type { ModelCard } from '../model/card';
import { windowFeeds } from '../model/card';
import { accuracy, argmax, rocAuc } from './metrics';

/** The card's output tensor for each window (score or class probabilities), in window order. */
export async function predictWindows(session: ModelSession, card: ModelCard, features: readonly Float32Array[]): Promise<Float32Array[]> {
  const outcomes = await session.runWindows(features.map((f) => windowFeeds(card.input, f)));
  return outcomes.map((o, i) => {
    if (!o.ok) throw new EdgeInferError(o.error.code, `window ${i}: ${o.error.message}`, { cause: o.error });
    const out = o.outputs[card.output.tensor];
    if (!out) throw new EdgeInferError('E_CARD_INVALID', `the model has no output '${card.output.tensor}' named by its card`);
    return out.data as Float32Array;
  });
}

/**
 * Held-out metrics of a task: classification → accuracy and recall per label; anomaly → ROC AUC
 * (label 0 is normal, any other label an anomaly) and detection/false alarm rates at the card's
 * threshold. All as fractions 0..1.
 */
export function taskMetrics(card: ModelCard, outputs: readonly ArrayLike<number>[], labels: readonly number[]): Record<string, number> {
  if (outputs.length !== labels.length) throw new EdgeInferError('E_ARGUMENT', `${outputs.length} outputs for ${labels.length} labels`);
  if (card.task === 'classification') {
    const predicted = outputs.map((o) => argmax(o));
    const metrics: Record<string, number> = { accuracy: accuracy(predicted, labels as number[]) };
    (card.output.labels ?? []).forEach((name, k) => {
      const idx = labels.map((l, i) => (l === k ? i : -1)).filter((i) => i >= 0);
      if (idx.length) metrics[`recall.${name}`] = idx.filter((i) => predicted[i] === k).length / idx.length;
    });
    return metrics;
  }
  if (card.task === 'anomaly') {
    const scores = outputs.map((o) => o[0]);
    const positive = labels.map((l) => l !== 0);
    const t = card.output.threshold ?? Infinity;
    const flagged = scores.map((s) => s >= t);
    const pos = positive.filter(Boolean).length;
    const neg = positive.length - pos;
    return {
      rocAuc: rocAuc(scores, positive),
      detectionRate: pos ? flagged.filter((f, i) => f && positive[i]).length / pos : 0,
      falseAlarmRate: neg ? flagged.filter((f, i) => f && !positive[i]).length / neg : 0,
    };
  }
  throw new EdgeInferError('E_ARGUMENT', `no held-out metrics defined for task '${card.task}'`);
}

/** The card's headline metric for a task: accuracy, or ROC AUC for anomaly detection. */
export function primaryMetric(card: ModelCard): 'accuracy' | 'rocAuc' {
  return card.task === 'anomaly' ? 'rocAuc' : 'accuracy';
}
