// What one window's model output becomes: the result record the log keeps and the JSON it is
// published as. The gateway's pipelines and the Node-RED model nodes share both, so a result
// reads the same (and is refused for the same reasons) wherever it comes from.
import type { WindowOutcome } from '../engine';
import { EdgeInferError } from '../errors';
import { type ModelCard, interpret } from '../model';
import type { ResultRecord } from '../store';
import type { ReadyWindow } from './device-windows';

/**
 * A time as ISO 8601, or as milliseconds where a Date cannot hold it: a message naming a bad
 * time must never fail on the time it names.
 */
export function isoTime(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `${ms} ms since 1970` : d.toISOString();
}

/** The card with its threshold replaced (an operator's override); the card itself when none is given. */
export function withThreshold(card: ModelCard, threshold: number | undefined): ModelCard {
  return threshold === undefined ? card : { ...card, output: { ...card.output, threshold } };
}

export interface WindowResultRecord {
  record: ResultRecord;
  probabilities?: Record<string, number>;
}

/**
 * One window's result, as the card reads the output, dated by the window's end (data time), with
 * `processedMs` (when it was made) beside it. Throws E_RUN naming the output when it is missing,
 * does not fit the card, or gives a score that is not a finite number (the log keeps numbers; a
 * NaN would fail the whole commit it travels in).
 */
export function resultRecord(card: ModelCard, variant: string, w: ReadyWindow, outcome: Extract<WindowOutcome, { ok: true }>, processedMs: number): WindowResultRecord {
  const tensor = card.output.tensor;
  const output = outcome.outputs[tensor]?.data;
  if (!(output instanceof Float32Array)) {
    const got = outcome.outputs[tensor] === undefined ? `none (it gave ${Object.keys(outcome.outputs).map((k) => `'${k}'`).join(', ') || 'nothing'})` : 'not float32';
    throw new EdgeInferError('E_RUN', `${card.id}: output '${tensor}' of the window of ${w.device} from ${isoTime(w.startMs)} is ${got}`);
  }
  const meaning = interpret(card, output);
  if (!Number.isFinite(meaning.score)) {
    throw new EdgeInferError('E_RUN', `${card.id}: output '${tensor}' gives a score of ${meaning.score} for the window of ${w.device} from ${isoTime(w.startMs)}, expected a finite number`);
  }
  const record: ResultRecord = {
    timeMs: w.endMs,
    processedMs,
    device: w.device,
    model: card.id,
    variant,
    score: meaning.score,
    label: meaning.label ?? null,
    anomaly: meaning.anomaly,
    outputs: Array.from(output),
    latencyMs: outcome.ms / outcome.batch,
    windowStartMs: w.startMs,
    windowEndMs: w.endMs,
    messageKeys: w.messageKeys,
    // Non-finite samples (refused upstream) must not fail the commit the result travels in.
    rms: w.rms !== undefined && Number.isFinite(w.rms) ? w.rms : null,
  };
  return { record, probabilities: meaning.probabilities };
}

/**
 * The JSON a result is published as (the Node-RED nodes emit the same shape). `card` is the one
 * the window was judged by (with the device's teach-in threshold); `baseline` the device's
 * teach-in state (learning, active, none).
 */
export function resultPayload(card: ModelCard, variant: string, r: ResultRecord, probabilities?: Record<string, number>, baseline: 'learning' | 'active' | 'none' = 'none'): Record<string, unknown> {
  return {
    device: r.device,
    model: r.model,
    variant,
    time: isoTime(r.timeMs),
    processed: r.processedMs === undefined ? undefined : isoTime(r.processedMs),
    score: r.score,
    label: r.label,
    probabilities,
    anomaly: r.anomaly,
    threshold: card.output.threshold ?? null,
    baseline,
    latencyMs: Number(r.latencyMs.toFixed(3)),
    window: { start: isoTime(r.windowStartMs), end: isoTime(r.windowEndMs) },
  };
}
