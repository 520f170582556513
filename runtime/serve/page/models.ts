// The models in use: variant, precision, size, latency, throughput, and how the variant agrees
// with fp32, as its card says and as the live A/B flow measures. Read again every few seconds.
import type { ModelView, ModelsView } from '../dashboard-contract.js';
import { getJson, message } from './api.js';
import { el, notice, table } from './dom.js';
import * as format from './format.js';
import type { View } from './types.js';

const REFRESH_MS = 5000;

function abText(m: ModelView): string {
  const a = m.agreement;
  if (!a) return '–';
  return a.windows ? `${format.percent(a.agree / a.windows)} of ${a.windows} windows vs ${a.withVariant}` : `no windows yet vs ${a.withVariant}`;
}

export class ModelsPage implements View {
  readonly element = el('section', { class: 'models-page', 'aria-labelledby': 'models-title' });
  private readonly body = el('div', {});
  private readonly timer: number;
  private closed = false;

  constructor() {
    this.element.append(el('h1', { id: 'models-title' }, 'Models'), this.body);
    this.body.append(notice('Loading…'));
    this.timer = window.setInterval(() => this.load(), REFRESH_MS);
    this.load();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  private load(): void {
    getJson<ModelsView>('api/models')
      .then((v) => {
        if (this.closed) return;
        this.body.replaceChildren(
          v.models.length
            ? table(
                'Models in use',
                ['Pipeline', 'Model', 'Task', 'Variant', 'Precision', 'Size', 'Backend', 'Latency p50', 'Latency p99', 'Windows/s', 'Card agreement', 'Live A/B agreement'],
                v.models.map((m) => [m.pipeline ?? '–', el('span', { title: m.model }, m.title), m.task, m.variant, m.precision, format.bytes(m.bytes), m.backend ?? '–', format.ms(m.latencyP50Ms), format.ms(m.latencyP99Ms), m.windowsPerS.toFixed(1), format.percent(m.cardAgreement), abText(m)]),
              )
            : notice('No model is running.'),
        );
      })
      .catch((err: unknown) => {
        if (!this.closed) this.body.replaceChildren(notice(`The models could not be read: ${message(err)}`, 'error'));
      });
  }
}
