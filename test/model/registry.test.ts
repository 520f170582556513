import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ModelSession } from '../../runtime/engine';
import { EdgeInferError } from '../../runtime/errors';
import { writeFileAtomic } from '../../runtime/onnx';
import { type BrokenModel, ModelRegistry, type RegistryEvents, type RegistryOptions } from '../../runtime/model';
import { thrown } from '../helpers/errors';
import { BINS, CHANNELS, LABELS, classifierModel, makeCard, removeDir, tempDir, writeVariant } from './fixtures';

let dir: string;
const open: ModelRegistry[] = [];

beforeEach(async () => {
  dir = await tempDir();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
  await removeDir(dir);
});

/** Opens a registry that the test cleans up; no watching or polling unless asked for. */
async function openRegistry(options: RegistryOptions = { watch: false, pollMs: 0 }): Promise<ModelRegistry> {
  const registry = await ModelRegistry.open(dir, options);
  open.push(registry);
  return registry;
}

type Payload<K extends keyof RegistryEvents> = RegistryEvents[K][0];

/** The next `event` whose payload matches, or a rejection after `timeoutMs`. */
function nextEvent<K extends keyof RegistryEvents>(registry: ModelRegistry, event: K, match: (p: Payload<K>) => boolean = () => true, timeoutMs = 5000): Promise<Payload<K>> {
  const emitter = registry as unknown as { on(e: string, l: (p: Payload<K>) => void): void; off(e: string, l: (p: Payload<K>) => void): void };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`no matching '${event}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (payload: Payload<K>) => {
      if (!match(payload)) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(payload);
    };
    emitter.on(event, listener);
  });
}

function errorFor(registry: ModelRegistry, file: string): EdgeInferError {
  const found = registry.errors().find((e) => e.file === file);
  if (!found) throw new Error(`${file} is not reported broken; broken: ${registry.errors().map((e) => e.file).join(', ') || 'none'}`);
  return found.error;
}

/** fp32 (largest), int8 (0.4 points below) and fp8-e4m3 (smallest, 2.1 points below) of one model. */
async function writeThreeVariants(): Promise<void> {
  await writeVariant(dir, 'fault-classifier.fp32', makeCard(), { padBytes: 4000 });
  await writeVariant(dir, 'fault-classifier.int8', makeCard({ precision: 'int8', metricDelta: -0.004 }), { padBytes: 200 });
  await writeVariant(dir, 'fault-classifier.fp8', makeCard({ precision: 'fp8-e4m3', metricDelta: -0.021 }), { weights: 'int8' });
}

describe('model registry: scanning', () => {
  it('should group the variants of a model by card id and describe each variant', async () => {
    await writeThreeVariants();
    await writeVariant(path.join(dir, 'motors', 'm1'), 'motor-health', makeCard({ id: 'motor-health' }));
    const registry = await openRegistry();

    const models = registry.models();
    expect(models.map((m) => m.id)).toEqual(['fault-classifier', 'motor-health']);
    expect(models[0].title).toBe('Bearing fault classifier');
    expect(models[0].task).toBe('classification');
    expect(models[0].variants.map((v) => v.variant)).toEqual(['fp32', 'int8', 'fp8-e4m3']);

    const int8 = registry.get('fault-classifier').variants[1];
    const file = path.join(dir, 'fault-classifier.int8.onnx');
    const stats = await fs.stat(file);
    expect(int8).toMatchObject({ id: 'fault-classifier', variant: 'int8', precision: 'int8', file, cardFile: path.join(dir, 'fault-classifier.int8.model.json') });
    expect(int8.sizeBytes).toBe(stats.size);
    expect(int8.mtimeMs).toBe(stats.mtimeMs);
    expect(int8.signature.inputs).toEqual([{ name: 'features', type: 'float32', shape: ['batch', CHANNELS.length, BINS] }]);
    expect(int8.card.quantization?.agreement?.metricDelta).toBe(-0.004);
    expect(registry.get('motor-health').variants[0].file).toBe(path.join(dir, 'motors', 'm1', 'motor-health.onnx'));
    expect(registry.errors()).toEqual([]);
  });

  it('should leave out models in hidden folders, node_modules and build', async () => {
    await writeVariant(dir, 'fault-classifier', makeCard());
    for (const skipped of ['.staging', 'node_modules', 'build', path.join('old', 'build')]) {
      await writeVariant(path.join(dir, skipped), 'other', makeCard({ id: 'other' }));
    }
    const registry = await openRegistry();
    expect(registry.models().map((m) => m.id)).toEqual(['fault-classifier']);
  });

  it('should use the card mirrored in the model when there is no card file', async () => {
    await writeVariant(dir, 'fault-classifier', null, { embeddedCard: makeCard() });
    const registry = await openRegistry();
    const [variant] = registry.get('fault-classifier').variants;
    expect(variant.cardFile).toBeNull();
    expect(variant.card.title).toBe('Bearing fault classifier');
  });

  it('should prefer the card file to the card mirrored in the model', async () => {
    const fileCard = { ...makeCard(), title: 'From the card file' };
    await writeVariant(dir, 'fault-classifier', fileCard, { embeddedCard: makeCard() });
    const registry = await openRegistry();
    expect(registry.get('fault-classifier').title).toBe('From the card file');
  });

  it('should refuse a models directory that does not exist, and bad options', async () => {
    await expect(ModelRegistry.open(path.join(dir, 'nope'))).rejects.toMatchObject({ code: 'E_ARGUMENT', message: expect.stringContaining('does not exist') });
    await expect(ModelRegistry.open(dir, { pollMs: -1 })).rejects.toMatchObject({ code: 'E_ARGUMENT', message: expect.stringContaining('pollMs') });
  });

  it('should name the known models when asked for an unknown one', async () => {
    await writeThreeVariants();
    await writeVariant(dir, 'pump', null); // broken: no card
    const registry = await openRegistry();
    const err = thrown(() => registry.get('pump-anomaly'));
    expect(err.code).toBe('E_REGISTRY');
    expect(err.message).toContain("no model 'pump-anomaly'");
    expect(err.message).toContain('known: fault-classifier');
    expect(err.message).toContain('1 file(s) there are broken, see errors()');
  });
});

describe('model registry: policies', () => {
  it('should pick a variant by each policy', async () => {
    await writeThreeVariants();
    const registry = await openRegistry();
    const pick = (policy?: string) => registry.pick('fault-classifier', policy).variant;
    expect(pick()).toBe('int8'); // smallest within 1 point of fp32
    expect(pick('fp32')).toBe('fp32');
    expect(pick('fp8-e4m3')).toBe('fp8-e4m3');
    expect(pick('smallest')).toBe('fp8-e4m3');
    expect(pick('smallest-within:3')).toBe('fp8-e4m3');
    expect(pick('smallest-within:0.1')).toBe('fp32');
    expect(pick('most-accurate')).toBe('fp32');
    expect(registry.pick('fault-classifier', { kind: 'smallest' }).variant).toBe('fp8-e4m3');
  });

  it('should name the available variants when the policy asks for one that is not there', async () => {
    await writeThreeVariants();
    const registry = await openRegistry();
    const err = thrown(() => registry.pick('fault-classifier', 'int8-dynamic'));
    expect(err.code).toBe('E_REGISTRY');
    expect(err.message).toContain('(it has fp32, fp8-e4m3, int8)');
    expect(thrown(() => registry.pick('fault-classifier', 'fastest!')).code).toBe('E_ARGUMENT');
  });

  it('should run the variant the registry picks', async () => {
    await writeThreeVariants();
    const registry = await openRegistry();
    const picked = registry.pick('fault-classifier');
    expect(picked.variant).toBe('int8');
    const window = { type: 'float32' as const, data: Float32Array.from({ length: CHANNELS.length * BINS }, (_, i) => Math.cos(i)), dims: [CHANNELS.length, BINS] };
    const probabilities = async (file: string) => {
      const session = await ModelSession.load(file, { backend: 'wasm', threads: 1 });
      try {
        const [outcome] = await session.runWindows([{ [picked.card.input.tensor]: window }]);
        if (!outcome.ok) throw outcome.error;
        return Array.from(outcome.outputs[picked.card.output.tensor].data as Float32Array);
      } finally {
        await session.dispose();
      }
    };
    const int8 = await probabilities(picked.file);
    const fp32 = await probabilities(registry.pick('fault-classifier', 'fp32').file);
    expect(int8).toHaveLength(LABELS.length);
    expect(int8.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    for (let k = 0; k < LABELS.length; k++) expect(Math.abs(int8[k] - fp32[k])).toBeLessThan(0.05);
  });
});

describe('model registry: broken models', () => {
  it('should report every kind of broken model while the others keep working', async () => {
    await writeVariant(dir, 'fault-classifier', makeCard());
    const good = classifierModel();
    const broken = {
      corrupt: path.join(dir, 'corrupt.onnx'),
      truncated: path.join(dir, 'truncated.onnx'),
      empty: path.join(dir, 'empty.onnx'),
      noCard: path.join(dir, 'no-card.onnx'),
      badJson: path.join(dir, 'bad-json.onnx'),
      badField: path.join(dir, 'bad-field.onnx'),
      badEmbedded: path.join(dir, 'bad-embedded.onnx'),
    };
    await fs.writeFile(broken.corrupt, Buffer.from('this is a spreadsheet, not a model\n'.repeat(20)));
    await fs.writeFile(path.join(dir, 'corrupt.model.json'), JSON.stringify(makeCard({ id: 'corrupt' })));
    await fs.writeFile(broken.truncated, good.subarray(0, Math.floor(good.length / 2)));
    await fs.writeFile(path.join(dir, 'truncated.model.json'), JSON.stringify(makeCard({ id: 'truncated' })));
    await fs.writeFile(broken.empty, new Uint8Array(0));
    await writeVariant(dir, 'no-card', null);
    await writeVariant(dir, 'bad-json', '{ "schema": 1, "id": ');
    await writeVariant(dir, 'bad-field', { ...makeCard({ id: 'bad-field' }), precision: 'int4' } as never);
    await writeVariant(dir, 'bad-embedded', null, { embeddedCard: { ...makeCard({ id: 'bad-embedded' }), task: 'detection' } as never });

    const registry = await openRegistry();
    expect(registry.models().map((m) => m.id)).toEqual(['fault-classifier']);
    expect(registry.errors().map((e) => e.file).sort()).toEqual(Object.values(broken).sort());

    const expectError = (file: string, code: string, ...fragments: string[]) => {
      const err = errorFor(registry, file);
      expect(err.code).toBe(code);
      for (const f of fragments) expect(err.message).toContain(f);
    };
    expectError(broken.corrupt, 'E_MODEL_CORRUPT', `${broken.corrupt}: not an ONNX model`);
    expectError(broken.truncated, 'E_MODEL_CORRUPT', broken.truncated, 'truncated');
    expectError(broken.empty, 'E_MODEL_CORRUPT', `${broken.empty}: empty file`);
    expectError(broken.noCard, 'E_CARD_MISSING', `${broken.noCard}: no model card: expected ${path.join(dir, 'no-card.model.json')}`);
    expectError(broken.badJson, 'E_CARD_INVALID', `${path.join(dir, 'bad-json.model.json')}: expected a model card as JSON`);
    expectError(broken.badField, 'E_CARD_INVALID', `${path.join(dir, 'bad-field.model.json')}: invalid model card: precision: expected one of`);
    expectError(broken.badEmbedded, 'E_CARD_INVALID', `${broken.badEmbedded} (card in metadata_props 'edge-infer.card'): invalid model card: task`);
    expect(registry.pick('fault-classifier').variant).toBe('fp32');
  });

  it('should show a model still being written as broken and serve it once it is complete', async () => {
    const bytes = classifierModel();
    const file = path.join(dir, 'fault-classifier.onnx');
    await fs.writeFile(path.join(dir, 'fault-classifier.model.json'), JSON.stringify(makeCard()));
    await fs.writeFile(file, bytes.subarray(0, 100));
    const registry = await openRegistry();
    expect(errorFor(registry, file).message).toContain('truncated');

    await fs.appendFile(file, bytes.subarray(100));
    const changes = await registry.rescan();
    expect(changes.added.map((v) => v.file)).toEqual([file]);
    expect(changes.repaired.map((v) => v.file)).toEqual([file]);
    expect(registry.errors()).toEqual([]);
  });
});

describe('model registry: card against model', () => {
  async function brokenWith(card: object, model: Parameters<typeof writeVariant>[3] = {}): Promise<EdgeInferError> {
    const files = await writeVariant(dir, 'fault-classifier', card as never, model);
    const registry = await openRegistry();
    expect(registry.models()).toEqual([]);
    const err = errorFor(registry, files.model);
    expect(err.code).toBe('E_CARD_INVALID');
    expect(err.message.startsWith(`${files.model}: the card (${files.card}) does not match the model: `)).toBe(true);
    return err;
  }

  it('should refuse a card whose input tensor the model does not have, listing the model inputs', async () => {
    const err = await brokenWith(makeCard(), { inputName: 'spectrum' });
    expect(err.message).toContain("input.tensor 'features' is not an input of the model (its inputs: 'spectrum' [batch, 2, 16])");
  });

  it('should refuse a card whose features do not fit the model input shape', async () => {
    const err = await brokenWith(makeCard(), { inputShape: ['batch', 2, 8] });
    expect(err.message).toContain("the model input 'features' has shape [batch, 2, 8], the card's features are [2, 16] (2 channels × 16 fft-magnitude bins)");
  });

  it('should accept a model input without a batch axis or with dynamic dimensions', async () => {
    await writeVariant(dir, 'fixed', makeCard({ id: 'fixed' }), { inputShape: [2, 16] });
    await writeVariant(dir, 'dynamic', makeCard({ id: 'dynamic' }), { inputShape: ['batch', 'channels', 16] });
    const registry = await openRegistry();
    expect(registry.errors()).toEqual([]);
    expect(registry.models().map((m) => m.id)).toEqual(['dynamic', 'fixed']);
  });

  it('should refuse a card whose output tensor the model does not have', async () => {
    const err = await brokenWith(makeCard(), { outputName: 'scores' });
    expect(err.message).toContain("output.tensor 'probabilities' is not an output of the model (its outputs: 'scores' [batch, 3])");
  });

  it('should refuse a classification card with more labels than the model has classes', async () => {
    const card = makeCard();
    const err = await brokenWith({ ...card, output: { ...card.output, labels: [...LABELS, 'misalignment'] } });
    expect(err.message).toContain("the model output 'probabilities' [batch, 3] gives 3 classes, the card has 4 labels");
  });

  it('should refuse a variant whose card disagrees with the fp32 one, and keep the fp32', async () => {
    await writeVariant(dir, 'fault-classifier.fp32', makeCard());
    const int8 = makeCard({ precision: 'int8', metricDelta: -0.004 });
    const files = await writeVariant(dir, 'fault-classifier.int8', { ...int8, input: { ...int8.input, window: 128, channels: [CHANNELS[0], { name: 'vib_z', unit: 'g' }] } });
    const registry = await openRegistry();
    expect(registry.get('fault-classifier').variants.map((v) => v.variant)).toEqual(['fp32']);
    const err = errorFor(registry, files.model);
    expect(err.code).toBe('E_CARD_INVALID');
    expect(err.message).toContain(`the card disagrees with the fp32 variant of 'fault-classifier' (${path.join(dir, 'fault-classifier.fp32.onnx')})`);
    expect(err.message).toContain('input.channels is vib_x (g), vib_z (g), there vib_x (g), vib_y (g)');
    expect(err.message).toContain('input.window is 128, there 64');
  });

  it('should refuse a second file with the same variant name, naming both files', async () => {
    const first = await writeVariant(dir, 'a', makeCard());
    const second = await writeVariant(dir, 'b', makeCard());
    const registry = await openRegistry();
    expect(registry.get('fault-classifier').variants.map((v) => v.file)).toEqual([first.model]);
    const err = errorFor(registry, second.model);
    expect(err.code).toBe('E_CARD_INVALID');
    expect(err.message).toContain(`${second.model}: variant 'fp32' of model 'fault-classifier' is already served from ${first.model}`);

    // Once the first goes, the second takes its place.
    await fs.rm(first.model);
    const changes = await registry.rescan();
    expect(changes.removed).toEqual([{ id: 'fault-classifier', variant: 'fp32', file: first.model }]);
    expect(changes.repaired.map((v) => v.file)).toEqual([second.model]);
  });
});

describe('model registry: live changes', () => {
  it('should tell of added, changed, removed, broken and repaired models as files change, without a rescan call', async () => {
    await writeVariant(dir, 'fault-classifier.fp32', makeCard());
    const registry = await openRegistry({ pollMs: 0, debounceMs: 30 }); // fs.watch alone
    expect(registry.watching).toBe(true);

    const added = nextEvent(registry, 'added');
    const int8 = await writeVariant(path.join(dir, 'quantized'), 'fault-classifier.int8', makeCard({ precision: 'int8', metricDelta: -0.004 }));
    expect(await added).toMatchObject({ variant: 'int8', file: int8.model });

    // Written the way the project writes files (temp file and rename), so no scan sees half a card.
    const changed = nextEvent(registry, 'changed');
    await writeFileAtomic(path.join(dir, 'fault-classifier.fp32.model.json'), JSON.stringify({ ...makeCard(), title: 'Fault classifier, retrained' }));
    expect((await changed).card.title).toBe('Fault classifier, retrained');
    expect(registry.get('fault-classifier').title).toBe('Fault classifier, retrained');

    const removed = nextEvent(registry, 'removed');
    await fs.rm(int8.model);
    expect(await removed).toEqual({ id: 'fault-classifier', variant: 'int8', file: int8.model });

    const fp32File = path.join(dir, 'fault-classifier.fp32.onnx');
    const broken = nextEvent(registry, 'broken');
    const gone = nextEvent(registry, 'removed');
    await fs.writeFile(fp32File, Buffer.from('overwritten by a bad copy'));
    const report: BrokenModel = await broken;
    expect(report.file).toBe(fp32File);
    expect(report.error.code).toBe('E_MODEL_CORRUPT');
    expect((await gone).file).toBe(fp32File);
    expect(registry.models()).toEqual([]);

    const repaired = nextEvent(registry, 'repaired');
    await fs.writeFile(fp32File, classifierModel());
    expect((await repaired).file).toBe(fp32File);
    expect(registry.errors()).toEqual([]);
    expect(registry.pick('fault-classifier').variant).toBe('fp32');
  });

  it('should report a models directory that disappears and serve its models again when it comes back', async () => {
    await writeVariant(dir, 'fault-classifier', makeCard());
    const registry = await openRegistry();
    await removeDir(dir);
    const gone = await registry.rescan();
    expect(gone.removed.map((v) => v.variant)).toEqual(['fp32']);
    expect(gone.broken.map((b) => [b.file, b.error.code])).toEqual([[dir, 'E_REGISTRY']]);
    expect(gone.broken[0].error.message).toContain('the models directory does not exist');

    await writeVariant(dir, 'fault-classifier', makeCard());
    const back = await registry.rescan();
    expect(back.added.map((v) => v.variant)).toEqual(['fp32']);
    expect(registry.errors()).toEqual([]);
  });

  it('should find new models by polling when watching is off', async () => {
    const registry = await openRegistry({ watch: false, pollMs: 50 });
    expect(registry.watching).toBe(false);
    const added = nextEvent(registry, 'added');
    await writeVariant(dir, 'fault-classifier', makeCard());
    expect((await added).id).toBe('fault-classifier');
  });

  it('should not read unchanged files again on a rescan', async () => {
    await writeThreeVariants();
    const registry = await openRegistry();
    const reads = vi.spyOn(fs, 'readFile');
    try {
      const changes = await registry.rescan();
      expect(changes).toEqual({ added: [], changed: [], removed: [], broken: [], repaired: [] });
      expect(reads).not.toHaveBeenCalled();
      await writeVariant(dir, 'fault-classifier.int8', { ...makeCard({ precision: 'int8', metricDelta: -0.004 }), title: 'Renamed' });
      const next = await registry.rescan();
      expect(next.changed.map((v) => v.variant)).toEqual(['int8']);
      expect(reads.mock.calls.map(([file]) => path.basename(String(file))).sort()).toEqual(['fault-classifier.int8.model.json', 'fault-classifier.int8.onnx']);
    } finally {
      reads.mockRestore();
    }
  });

  it('should let rescans asked for during a scan share one scan after it', async () => {
    await writeThreeVariants();
    const registry = await openRegistry();
    const first = registry.rescan();
    const second = registry.rescan();
    const third = registry.rescan();
    expect(second).toBe(third);
    expect(second).not.toBe(first);
    await Promise.all([first, second]);
  });

  it('should stop telling of changes once closed', async () => {
    const registry = await openRegistry({ pollMs: 20, debounceMs: 10 });
    const heard = vi.fn();
    registry.on('added', heard);
    await registry.close();
    await writeVariant(dir, 'fault-classifier', makeCard());
    await new Promise((r) => setTimeout(r, 150));
    expect(heard).not.toHaveBeenCalled();
    expect(registry.watching).toBe(false);
    await expect(registry.rescan()).rejects.toMatchObject({ code: 'E_REGISTRY' });
  });
});
