// A card is what the node, the pipeline and the dashboard believe about a model, so the registry
// checks it against the ONNX graph itself, and checks that the variants of one model agree.
import { type DimSpec, type ModelSignature, type TensorSpec, formatShape } from '../engine';
import { EdgeInferError } from '../errors';
import { type ModelCard, featureShape } from './card';

function listTensors(specs: readonly TensorSpec[]): string {
  return specs.length === 0 ? 'none' : specs.map((s) => `'${s.name}' ${formatShape(s.shape)}`).join(', ');
}

/** What the card's feature transform makes, in words: "3 channels × 16 fft-magnitude bins". */
function describeFeatures(card: ModelCard): string {
  const c = card.input.channels.length;
  const f = card.input.features;
  const channels = `${c} channel${c === 1 ? '' : 's'}`;
  if (f.transform === 'raw') return `${channels} × window ${card.input.window}`;
  if (f.transform === 'rms') return `${channels} of rms`;
  return `${channels} × ${f.bins} fft-magnitude bins`;
}

/** True when every dimension the model fixes equals the expected one. */
function fitsShape(declared: readonly DimSpec[], expected: readonly number[]): boolean {
  return declared.length === expected.length && declared.every((d, i) => typeof d !== 'number' || d === expected[i]);
}

/** The window's features must fit the model input, with or without a leading batch axis. */
function inputShapeProblem(card: ModelCard, input: TensorSpec): string | null {
  if (input.shape === null) return null; // the model leaves its shape open
  const expected = featureShape(card.input);
  const withoutBatch = input.shape.length === expected.length + 1 ? input.shape.slice(1) : input.shape;
  if (fitsShape(withoutBatch, expected)) return null;
  return `the model input '${input.name}' has shape ${formatShape(input.shape)}, the card's features are ${formatShape(expected)} (${describeFeatures(card)}) per window, with or without a batch axis in front`;
}

function labelsProblem(card: ModelCard, output: TensorSpec): string | null {
  const labels = card.output.labels;
  if (card.task !== 'classification' || !labels || !output.shape || output.shape.length === 0) return null;
  const classes = output.shape[output.shape.length - 1];
  if (typeof classes !== 'number' || classes === labels.length) return null;
  return `the model output '${output.name}' ${formatShape(output.shape)} gives ${classes} classes, the card has ${labels.length} labels (${labels.join(', ')})`;
}

/** The first way the card misdescribes the model, or null when they agree. */
function cardModelProblem(card: ModelCard, signature: ModelSignature): string | null {
  const input = signature.inputs.find((i) => i.name === card.input.tensor);
  if (!input) return `input.tensor '${card.input.tensor}' is not an input of the model (its inputs: ${listTensors(signature.inputs)})`;
  const output = signature.outputs.find((o) => o.name === card.output.tensor);
  if (!output) return `output.tensor '${card.output.tensor}' is not an output of the model (its outputs: ${listTensors(signature.outputs)})`;
  return inputShapeProblem(card, input) ?? labelsProblem(card, output);
}

/** Throws E_CARD_INVALID naming the model file, the card and what disagrees. */
export function checkCardAgainstModel(card: ModelCard, signature: ModelSignature, file: string, cardSource: string): void {
  const problem = cardModelProblem(card, signature);
  if (problem) throw new EdgeInferError('E_CARD_INVALID', `${file}: the card (${cardSource}) does not match the model: ${problem}`);
}

/** What every variant of one model must share, so that one pipeline can feed any of them. */
function sharedFacts(card: ModelCard): Record<string, string> {
  return {
    task: card.task,
    'input.channels': card.input.channels.map((c) => `${c.name} (${c.unit})`).join(', '),
    'input.window': String(card.input.window),
    'input.features': JSON.stringify(card.input.features),
  };
}

/** How `card` differs from the reference variant's card, or null when they agree. */
export function variantDisagreement(card: ModelCard, reference: ModelCard): string | null {
  const mine = sharedFacts(card);
  const theirs = sharedFacts(reference);
  const diffs = Object.keys(mine)
    .filter((k) => mine[k] !== theirs[k])
    .map((k) => `${k} is ${mine[k]}, there ${theirs[k]}`);
  return diffs.length === 0 ? null : diffs.join('; ');
}
