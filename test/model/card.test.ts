import { describe, expect, it } from 'vitest';
import { EdgeInferError } from '../../runtime/errors';
import { type ModelCardInput, featureShape, parseCard, parseCardJson, variantOf } from '../../runtime/model';
import { makeCard } from './fixtures';

const FILE = '/models/fault-classifier.fp32.model.json';

/** A valid card with one change made to a copy of it. */
function cardWith(change: (card: Record<string, any>) => void, base: ModelCardInput = makeCard()): unknown {
  const card = structuredClone(base) as Record<string, any>;
  change(card);
  return card;
}

/** The E_CARD_INVALID error that parsing `value` throws. */
function cardError(value: unknown): EdgeInferError {
  try {
    parseCard(value, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeInferError);
    expect((err as EdgeInferError).code).toBe('E_CARD_INVALID');
    return err as EdgeInferError;
  }
  throw new Error('expected the card to be refused');
}

/** Asserts that the message starts with the file and holds every fragment (field, expectation, value). */
function expectProblem(value: unknown, ...fragments: string[]): void {
  const { message } = cardError(value);
  expect(message.startsWith(`${FILE}: `)).toBe(true);
  for (const f of fragments) expect(message).toContain(f);
}

describe('model card', () => {
  it('should accept a valid card and fill in the defaults', () => {
    const card = parseCard(makeCard(), FILE);
    expect(card.input.normalization).toEqual({ kind: 'none' });
    expect(card.input.features).toEqual({ transform: 'fft-magnitude', bins: 16, scale: 'linear' });
    expect(card.metrics).toEqual({});
    expect(variantOf(card)).toBe('fp32');
    expect(featureShape(card.input)).toEqual([2, 16]);
  });

  it('should name the variant by its precision unless the card names it', () => {
    expect(variantOf(parseCard(makeCard({ precision: 'int8', metricDelta: -0.002 })))).toBe('int8');
    expect(variantOf(parseCard(makeCard({ precision: 'int8', variant: 'int8-dynamic', metricDelta: -0.002 })))).toBe('int8-dynamic');
  });

  it('should give the feature shape of each transform without the batch axis', () => {
    const input = parseCard(makeCard()).input;
    expect(featureShape({ ...input, features: { transform: 'raw' } })).toEqual([2, 64]);
    expect(featureShape({ ...input, features: { transform: 'rms' } })).toEqual([2]);
  });

  it('should refuse a field of the wrong type, naming the field, the type expected and the value', () => {
    expectProblem(cardWith((c) => (c.input.window = '64')), 'input.window: expected number, got "64"');
  });

  it('should refuse a missing required field, naming it and what was expected', () => {
    expectProblem(cardWith((c) => delete c.title), 'title: missing, expected string');
    expectProblem(cardWith((c) => delete c.input.channels[1].unit), 'input.channels[1].unit: missing, expected string');
  });

  it('should refuse an unknown field and list the fields that are allowed there', () => {
    expectProblem(cardWith((c) => (c.colour = 'red')), "colour: unknown field, expected one of schema, id, variant", 'precision');
    expectProblem(cardWith((c) => (c.input.features.window = 'hann')), 'input.features.window: unknown field, expected one of transform, bins, maxHz, scale');
  });

  it('should refuse a task, precision or transform outside its list, naming the choices', () => {
    expectProblem(cardWith((c) => (c.task = 'detection')), 'task: expected one of "anomaly"|"classification"|"regression", got "detection"');
    expectProblem(cardWith((c) => (c.precision = 'int4')), 'precision: expected one of "fp32"|"fp16"|"int8"|"fp8-e4m3"|"fp8-e5m2", got "int4"');
    expectProblem(cardWith((c) => (c.input.features = { transform: 'wavelet' })), 'input.features.transform: expected one of "raw"|"rms"|"fft-magnitude", got "wavelet"');
  });

  it('should refuse an id that is not lowercase letters, digits and dashes', () => {
    expectProblem(cardWith((c) => (c.id = 'Fault Classifier')), 'id: expected lowercase letters, digits and -, got "Fault Classifier"');
  });

  it('should refuse a hop longer than the window', () => {
    expectProblem(cardWith((c) => (c.input.hop = 65)), 'input.hop: expected at most the window (64), got 65');
  });

  it('should refuse a classification card without labels', () => {
    expectProblem(cardWith((c) => delete c.output.labels), 'output.labels: expected the class labels of a classification model');
  });

  it('should refuse an anomaly card without a threshold', () => {
    expectProblem(cardWith((c) => (c.task = 'anomaly')), 'output.threshold: expected the score threshold of an anomaly model');
  });

  it('should refuse a quantized card that does not say how it was quantized', () => {
    expectProblem(cardWith((c) => delete c.quantization, makeCard({ precision: 'fp8-e4m3', metricDelta: -0.01 })), 'quantization: expected how the fp8-e4m3 variant was quantized');
  });

  it('should refuse a normalization whose mean and std differ in length', () => {
    expectProblem(cardWith((c) => (c.input.normalization = { kind: 'standard', mean: [0, 0], std: [1] })), 'input.normalization.std: expected as many values as mean (2), got 1');
  });

  it('should refuse an fft band above the Nyquist frequency', () => {
    expectProblem(cardWith((c) => (c.input.features.maxHz = 600)), 'input.features.maxHz: expected at most the Nyquist frequency (500 Hz), got 600');
  });

  it('should refuse more fft bins than half the window', () => {
    expectProblem(cardWith((c) => (c.input.features.bins = 40)), 'input.features.bins: expected at most half the window (32 bins for 64 samples), got 40');
  });

  it('should refuse numbers and lists out of bounds in words', () => {
    expectProblem(cardWith((c) => (c.input.window = 0)), 'input.window: expected a number ≥ 1, got 0');
    expectProblem(cardWith((c) => (c.output.labels = ['normal'])), 'output.labels: expected at least 2 items, got 1 item');
  });

  it('should list every problem of a card in one message', () => {
    const { message } = cardError(cardWith((c) => {
      c.task = 'detection';
      delete c.version;
    }));
    expect(message).toContain('task: expected one of');
    expect(message).toContain('version: missing');
  });

  it('should refuse text that is not JSON, naming the file', () => {
    try {
      parseCardJson('{ "schema": 1, ', FILE);
      expect.unreachable();
    } catch (err) {
      expect((err as EdgeInferError).code).toBe('E_CARD_INVALID');
      expect((err as EdgeInferError).message).toMatch(new RegExp(`^${FILE}: expected a model card as JSON, got text that is not valid JSON`));
    }
  });

  it('should refuse JSON that is not an object', () => {
    expectProblem([], '(card): expected object, got 0 items');
  });

  it('should read a valid card from JSON text', () => {
    expect(parseCardJson(JSON.stringify(makeCard()), FILE).id).toBe('fault-classifier');
  });
});
