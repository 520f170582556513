// `edge-infer inspect <model>`: what a model takes and gives, what it is made of, and its card.
import type { Command } from 'commander';
import { formatShape, signatureOf } from '../engine';
import { type ModelCard, featureShape, findCard, variantOf } from '../model';
import { graphStats, opsetList, readModelFile, toNumber } from '../onnx';
import { bytes, print, printJson, rows, thousands } from './output';

function describeInput(card: ModelCard): string {
  const i = card.input;
  const channels = i.channels.map((c) => `${c.name} [${c.unit}]`).join(', ');
  const f = i.features;
  const features = f.transform === 'fft-magnitude' ? `fft-magnitude, ${f.bins} bands to ${f.maxHz ?? i.sampleRate / 2} Hz (${f.scale})` : f.transform;
  return `${channels} at ${i.sampleRate} Hz; window ${i.window}, hop ${i.hop}; ${features} → [${featureShape(i).join(', ')}]; normalization ${i.normalization.kind}`;
}

function describeOutput(card: ModelCard): string {
  const o = card.output;
  const parts = [`'${o.tensor}'`, o.score];
  if (o.labels) parts.push(`labels ${o.labels.join(', ')}`);
  if (o.threshold !== undefined) parts.push(`threshold ${o.threshold}`);
  return parts.join('; ');
}

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('show a model: inputs, outputs, opsets, operators, parameters, size and card')
    .argument('<model>', 'an .onnx file')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      const { model, bytes: raw } = await readModelFile(file);
      const signature = signatureOf(model);
      const stats = graphStats(model);
      const found = await findCard(file, model);
      const summary = {
        file,
        sizeBytes: raw.length,
        irVersion: toNumber(model.ir_version),
        producer: [model.producer_name, model.producer_version].filter(Boolean).join(' '),
        opsets: opsetList(model),
        inputs: signature.inputs,
        outputs: signature.outputs,
        parameters: stats.parameters,
        weightBytes: stats.weightBytes,
        nodes: stats.nodes,
        operators: stats.operators,
        card: found?.card ?? null,
        cardSource: found?.source ?? null,
      };
      if (opts.json) return printJson(summary);
      const ops = Object.entries(stats.operators).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
      const pairs: Array<[string, string]> = [
        ['model', `${file} (${bytes(raw.length)})`],
        ['format', `ONNX IR ${summary.irVersion}, ${summary.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')}${summary.producer ? `, written by ${summary.producer}` : ''}`],
        ...signature.inputs.map((s, k): [string, string] => [k ? '' : 'inputs', `${s.name}  ${s.type} ${formatShape(s.shape)}`]),
        ...signature.outputs.map((s, k): [string, string] => [k ? '' : 'outputs', `${s.name}  ${s.type} ${formatShape(s.shape)}`]),
        ['parameters', `${thousands(stats.parameters)} (${bytes(stats.weightBytes)} of weights)`],
        ['operators', `${stats.nodes} nodes: ${ops.map(([op, n]) => `${op}×${n}`).join('  ')}`],
      ];
      const card = found?.card;
      if (card) {
        pairs.push(
          ['card', `${card.title} — ${card.id} ${card.version}, ${variantOf(card)} (${found.source})`],
          ['task', card.task],
          ['input', describeInput(card)],
          ['output', describeOutput(card)],
        );
        const metrics = Object.entries(card.metrics).map(([k, v]) => `${k} ${Number.isInteger(v) ? thousands(v) : v}`);
        if (metrics.length) pairs.push(['metrics', metrics.join(', ')]);
        if (card.quantization) pairs.push(['quantized', `${card.quantization.method}${card.quantization.calibration ? `, calibrated on ${card.quantization.calibration.windows} windows from ${card.quantization.calibration.source}` : ''}`]);
      } else {
        pairs.push(['card', 'none (no <model>.model.json next to it, none in its metadata)']);
      }
      for (const line of rows(pairs)) print(line);
    });
}
