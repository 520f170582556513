// The checks an update passes before it serves: its card describes the model the pipeline runs
// (same id, task, input, output), and on the newest windows the log recorded it decides as the
// serving variant does, within the configured bounds.
import type { ModelSession } from '../engine';
import { type ModelCard, interpret } from '../model';
import type { WindowRow } from '../store';

/** How the candidate's card differs from the serving variant's, or null when it may replace it. */
export function cardMismatch(serving: ModelCard, candidate: ModelCard): string | null {
  const diffs: string[] = [];
  if (candidate.id !== serving.id) diffs.push(`id is '${candidate.id}', the serving model's is '${serving.id}'`);
  if (candidate.task !== serving.task) diffs.push(`task is ${candidate.task}, the serving model's is ${serving.task}`);
  // Input and output as a whole: channels, rate, window, hop, features, normalization, the
  // tensors, labels, score and threshold. Anything else would change what the pipeline feeds or
  // what its results and alerts mean: that is a new model and a restart, not a swap.
  for (const part of ['input', 'output'] as const) {
    const mine = candidate[part] as Record<string, unknown>;
    const theirs = serving[part] as Record<string, unknown>;
    for (const k of new Set([...Object.keys(mine), ...Object.keys(theirs)])) {
      const a = JSON.stringify(mine[k]);
      const b = JSON.stringify(theirs[k]);
      if (a !== b) diffs.push(`${part}.${k} is ${a ?? 'not set'}, the serving model's is ${b ?? 'not set'}`);
    }
  }
  return diffs.length ? `its card does not match the serving model: ${diffs.join('; ')}` : null;
}

export interface AgreementBounds {
  /** Least share of windows with the same decision, 0..1. */
  minLabelAgreement: number;
  /** Largest score difference on any window; undefined: not checked. */
  maxScoreDelta?: number;
}

export interface AgreementFigures {
  windows: number;
  /** Share of windows with the same decision (label, or anomaly verdict). */
  labelAgreement: number;
  /** Largest |score difference|. */
  maxScoreDelta: number;
}

/** The decision a result stands for: the label (which for anomaly models is the verdict). */
function decisions(card: ModelCard, outcomes: Awaited<ReturnType<ModelSession['runWindows']>>, who: string): Array<{ score: number; label: string | undefined } | string> {
  return outcomes.map((o, i) => {
    if (!o.ok) return `${who} failed on window ${i}: ${o.error.message}`;
    const out = o.outputs[card.output.tensor]?.data;
    if (!(out instanceof Float32Array)) return `${who} gave no float32 output '${card.output.tensor}' on window ${i}`;
    const m = interpret(card, out);
    if (!Number.isFinite(m.score)) return `${who} gave a score of ${m.score} on window ${i}`;
    return { score: m.score, label: m.label };
  });
}

/**
 * Runs both sessions on the windows and compares them. Resolves to the figures and, when a bound
 * is not met (or the candidate fails a window the serving variant runs), the reason.
 */
export async function compareOnWindows(card: ModelCard, serving: ModelSession, candidate: ModelSession, windows: readonly WindowRow[], bounds: AgreementBounds): Promise<{ figures: AgreementFigures; problem: string | null }> {
  const feeds = windows.map((w) => ({ [card.input.tensor]: { type: 'float32' as const, data: w.features, dims: w.dims } }));
  const a = decisions(card, await serving.runWindows(feeds), 'the serving variant');
  // The live batches waiting on the serving session run before the candidate's turn.
  await new Promise((resolve) => setImmediate(resolve));
  const b = decisions(card, await candidate.runWindows(feeds), 'the update');
  let same = 0;
  let compared = 0;
  let maxDelta = 0;
  let failure: string | null = null;
  for (let i = 0; i < windows.length; i++) {
    const x = a[i];
    const y = b[i];
    if (typeof x === 'string') continue; // a window the serving variant cannot run says nothing of the update
    if (typeof y === 'string') {
      failure ??= y;
      continue;
    }
    compared++;
    if (x.label === y.label) same++;
    maxDelta = Math.max(maxDelta, Math.abs(x.score - y.score));
  }
  const figures: AgreementFigures = { windows: compared, labelAgreement: compared ? same / compared : 0, maxScoreDelta: maxDelta };
  const pct = (v: number): string => `${(v * 100).toFixed(1)} %`;
  let problem: string | null = null;
  if (failure) problem = failure;
  else if (compared === 0) problem = `the serving variant ran none of the ${windows.length} recorded windows: nothing to compare`;
  else if (figures.labelAgreement < bounds.minLabelAgreement) problem = `it agrees with the serving variant on ${pct(figures.labelAgreement)} of the ${compared} newest recorded windows, the bound is ${pct(bounds.minLabelAgreement)} (modelUpdates.agreement.minLabelAgreement)`;
  else if (bounds.maxScoreDelta !== undefined && maxDelta > bounds.maxScoreDelta) problem = `its score differs from the serving variant's by up to ${maxDelta.toPrecision(4)} on the ${compared} newest recorded windows, the bound is ${bounds.maxScoreDelta} (modelUpdates.agreement.maxScoreDelta)`;
  return { figures, problem };
}
