// One model variant as the registry knows it: its card, where it lives, what it declares.
// Reading one decodes the ONNX file and its card; it never starts an inference session.
import { promises as fs } from 'node:fs';
import { type ModelSignature, signatureOf } from '../engine';
import { EdgeInferError } from '../errors';
import { type ModelProto, metadataOf, readModelFile } from '../onnx';
import { CARD_METADATA_KEY, type ModelCard, type Precision, type Task, parseCardJson, variantOf } from './card';
import { checkCardAgainstModel } from './check';
import { type ModelFileFound, cardFileFor } from './files';

export interface VariantEntry {
  /** The model id, shared by all its variants. */
  readonly id: string;
  /** The variant name, unique within the id: the card's `variant`, or its precision. */
  readonly variant: string;
  readonly precision: Precision;
  /** Absolute path of the .onnx file. */
  readonly file: string;
  /** The card file next to the model, or null when the card came from the model's metadata_props. */
  readonly cardFile: string | null;
  readonly card: ModelCard;
  readonly sizeBytes: number;
  readonly mtimeMs: number;
  /** The model's inputs and outputs as the ONNX graph declares them. */
  readonly signature: ModelSignature;
}

/** A model with every variant that is fit to run. */
export interface ModelEntry {
  readonly id: string;
  readonly title: string;
  readonly task: Task;
  readonly variants: readonly VariantEntry[];
}

export interface CardFound {
  card: ModelCard;
  cardFile: string | null;
  /** Names where the card came from in messages. */
  source: string;
}

async function readCardText(cardFile: string): Promise<string | null> {
  try {
    return await fs.readFile(cardFile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw new EdgeInferError('E_CARD_INVALID', `${cardFile}: cannot read the card (${code ?? String(err)})`, { cause: err });
  }
}

/**
 * The card of a model file, or null when it has none. The card file next to the model wins; a
 * card mirrored in the model's metadata_props is the fallback. A card that is there but bad throws.
 */
export async function findCard(file: string, model: ModelProto): Promise<CardFound | null> {
  const cardFile = cardFileFor(file);
  const text = await readCardText(cardFile);
  if (text !== null) return { card: parseCardJson(text, cardFile), cardFile, source: cardFile };
  const embedded = metadataOf(model)[CARD_METADATA_KEY];
  if (embedded !== undefined) {
    const source = `${file} (card in metadata_props '${CARD_METADATA_KEY}')`;
    return { card: parseCardJson(embedded, source), cardFile: null, source };
  }
  return null;
}

async function readCard(found: ModelFileFound, model: ModelProto): Promise<CardFound> {
  const card = await findCard(found.file, model);
  if (card) return card;
  throw new EdgeInferError(
    'E_CARD_MISSING',
    `${found.file}: no model card: expected ${found.cardFile} next to it, or a card in the model's metadata_props under '${CARD_METADATA_KEY}'`,
  );
}

/** Reads and checks one variant. Throws EdgeInferError naming the file for every way it can be unfit. */
export async function readVariant(found: ModelFileFound): Promise<VariantEntry> {
  const { model, bytes } = await readModelFile(found.file);
  const { card, cardFile, source } = await readCard(found, model);
  const signature = signatureOf(model);
  checkCardAgainstModel(card, signature, found.file, source);
  return {
    id: card.id,
    variant: variantOf(card),
    precision: card.precision,
    file: found.file,
    cardFile,
    card,
    sizeBytes: bytes.length,
    mtimeMs: found.mtimeMs,
    signature,
  };
}
