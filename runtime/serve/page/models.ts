// The models in use: variant, precision, size, latency, throughput, and how the variant agrees
// with fp32, as its card says and as the live A/B flow measures. Read again every few seconds.
import type { ModelView, ModelsView } from '../dashboard-contract.js';
import { el, notice, table } from './dom.js';
import * as format from './format.js';
import { RefreshingView } from './refreshing.js';

function abText(m: ModelView): string {
  const a = m.agreement;
  if (!a) return '–';
  return a.windows ? `${format.percent(a.agree / a.windows)} of ${a.windows} windows vs ${a.withVariant}` : `no windows yet vs ${a.withVariant}`;
}

export class ModelsPage extends RefreshingView<ModelsView> {
  constructor() {
    super('models-page', 'Models', 'api/models', 'The models');
  }

  protected render(v: ModelsView): HTMLElement[] {
    return [
      v.models.length
        ? table(
            'Models in use',
            ['Pipeline', 'Model', 'Task', 'Variant', 'Precision', 'Size', 'Backend', 'Latency p50', 'Latency p99', 'Windows/s', 'Card agreement', 'Live A/B agreement'],
            v.models.map((m) => [m.pipeline ?? '–', el('span', { title: m.model }, m.title), m.task, m.variant, m.precision, format.bytes(m.bytes), m.backend ?? '–', format.ms(m.latencyP50Ms), format.ms(m.latencyP99Ms), m.windowsPerS.toFixed(1), format.percent(m.cardAgreement), abText(m)]),
          )
        : notice('No model is running.'),
    ];
  }
}
