// `edge-infer infer <model> --input <file>`: run a model on windows from a file, print JSON.
import { type Command, Option } from 'commander';
import { type BackendChoice, ModelSession, type TensorMap } from '../engine';
import { checkCardAgainstModel, findCard, interpretOutputs, variantOf } from '../model';
import { readModelFile } from '../onnx';
import { readInputWindows } from '../stream';
import { backendOption, threadsOption } from './options';
import { printJson } from './output';

function plain(outputs: TensorMap): Record<string, { dims: number[]; data: number[] }> {
  return Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, { dims: [...t.dims], data: Array.from(t.data as ArrayLike<number>, Number) }]));
}

export function registerInfer(program: Command): void {
  program
    .command('infer')
    .description('run a model on windows from a JSON or CSV file and print the outputs as JSON')
    .argument('<model>', 'an .onnx file')
    .addOption(new Option('--input <file>', 'JSON (tensors by input name, or {"channels": {...}} raw samples) or CSV (a column per channel); - for stdin').makeOptionMandatory())
    .addOption(backendOption())
    .addOption(threadsOption())
    .action(async (file: string, opts: { input: string; backend: BackendChoice; threads: number }) => {
      const { model, bytes } = await readModelFile(file);
      const found = await findCard(file, model);
      const card = found?.card ?? null;
      const session = await ModelSession.load(bytes, { name: file, backend: opts.backend, threads: opts.threads });
      try {
        // A card that does not fit its model is refused here, naming both, not met as a crash later.
        if (found) checkCardAgainstModel(found.card, session.signature, file, found.source);
        const windows = await readInputWindows(opts.input, session.signature.inputs, card);
        const outcomes = await session.runWindows(windows.map((w) => w.feeds));
        printJson({
          model: file,
          ...(card ? { id: card.id, variant: variantOf(card) } : {}),
          backend: session.backend,
          windows: outcomes.map((o, i) => {
            if (!o.ok) throw o.error; // one bad window fails the command: its message names the window
            const meaning = card ? interpretOutputs(card, o.outputs) : undefined;
            return { window: i, ...(windows[i].span ? { span: windows[i].span } : {}), ...meaning, latencyMs: Number(o.ms.toFixed(3)), outputs: plain(o.outputs) };
          }),
        });
      } finally {
        await session.dispose();
      }
    });
}
