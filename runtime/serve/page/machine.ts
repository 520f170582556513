// A machine's drill-down (#/machine/<device>): per model its score over a range (min/max band so
// a spike shows, the mean, the threshold line), its class over time for classifiers, and the main
// channel's RMS. The range picker offers 15 min … 30 days and a custom from/to; dragging across a
// chart zooms in (the server answers with finer buckets) and Back returns. A range that ends now
// follows live points; any other closes the live feed. Each model's teach-in shows under its title.
import type { ChartView, MachineView, OverviewView } from '../dashboard-contract.js';
import { getJson, isAbort, message } from './api.js';
import { SeriesChart } from './chart.js';
import { el, notice, setText } from './dom.js';
import * as format from './format.js';
import { type LiveFeed, openLive } from './live.js';
import { stateBadge } from './overview.js';
import { PRESETS, type Range, pointsFor } from './ranges.js';
import { TeachIns } from './teach-in.js';
import type { View } from './types.js';

/** A live RMS chart fed by a server whose live points carry no RMS reads the log this often. */
const RMS_REFRESH_MS = 10_000;
const MIN_ZOOM_MS = 1000;

interface Charted {
  chart: SeriesChart;
  model: string;
  field: 'score' | 'rms';
}

export class MachinePage implements View {
  readonly element = el('section', { class: 'drill', 'aria-labelledby': 'drill-title' });
  private readonly badge = el('span', { class: 'badge-slot' });
  private readonly presetButtons = new Map<string, HTMLButtonElement>();
  private readonly customForm: HTMLFormElement;
  private readonly fromInput = el('input', { type: 'datetime-local', id: 'range-from', name: 'from', step: 1, required: true });
  private readonly toInput = el('input', { type: 'datetime-local', id: 'range-to', name: 'to', step: 1, required: true });
  private readonly back = el('button', { type: 'button', class: 'zoom-back', hidden: true }, 'Back');
  private readonly reset = el('button', { type: 'button', class: 'zoom-reset', hidden: true }, 'Reset zoom');
  private readonly rangeStatus = el('p', { class: 'range-status', 'aria-live': 'polite' });
  private readonly body = el('div', { class: 'drill-charts' });
  private charts: Charted[] = [];
  private machine: MachineView | null = null;
  private skewMs = 0;
  private newestMs = 0;
  private preset: string;
  private range: Range = { fromMs: 0, toMs: 0, live: true };
  private zooms: Range[] = [];
  private live: LiveFeed | null = null;
  private requests: AbortController | null = null;
  private rmsTimer: number | undefined;
  private zoomedAt = -Infinity;
  /** The live points carry the RMS (the RMS chart needs no polling). */
  private rmsLive = false;
  private closed = false;
  // A teach-in's threshold (or the card's again) moves the score chart's line and caption.
  private readonly teachIns = new TeachIns((s) => {
    if (s.device !== this.device) return;
    for (const c of this.charts) if (c.model === s.model && c.chart.kind === 'score') c.chart.judgedBy(s.threshold, scoreTitle(s.threshold));
  });

  constructor(
    private readonly device: string,
    preset: string | null,
  ) {
    this.preset = preset && PRESETS.some((p) => p.key === preset) ? preset : '1h';
    const picker = el('div', { class: 'range', role: 'group', 'aria-label': 'Range' });
    for (const p of PRESETS) {
      const b = el('button', { type: 'button', 'data-range': p.key, 'aria-pressed': 'false' }, p.label);
      b.addEventListener('click', () => this.choose(p.key));
      this.presetButtons.set(p.key, b);
      picker.append(b);
    }
    const custom = el('button', { type: 'button', 'data-range': 'custom', 'aria-pressed': 'false', 'aria-controls': 'range-custom' }, 'Custom…');
    custom.addEventListener('click', () => {
      this.customForm.hidden = !this.customForm.hidden;
      if (!this.customForm.hidden) {
        this.fromInput.value = format.localInput(this.range.fromMs);
        this.toInput.value = format.localInput(this.range.toMs);
        this.fromInput.focus();
      }
    });
    this.presetButtons.set('custom', custom);
    picker.append(custom);
    this.customForm = el(
      'form',
      { class: 'custom', id: 'range-custom', hidden: true },
      el('label', { for: 'range-from' }, 'From'),
      this.fromInput,
      el('label', { for: 'range-to' }, 'To'),
      this.toInput,
      el('button', { type: 'submit', class: 'primary' }, 'Show'),
    );
    this.customForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const fromMs = new Date(this.fromInput.value).getTime();
      const toMs = new Date(this.toInput.value).getTime();
      if (!(fromMs < toMs)) {
        setText(this.rangeStatus, 'The custom range must start before it ends.');
        return;
      }
      this.preset = 'custom';
      this.zooms = [];
      this.show({ fromMs, toMs, live: false });
    });
    this.back.addEventListener('click', () => {
      const previous = this.zooms.pop();
      if (previous) this.show(previous.live ? this.presetRange() : previous);
    });
    this.reset.addEventListener('click', () => {
      const first = this.zooms[0];
      this.zooms = [];
      if (first) this.show(first.live ? this.presetRange() : first);
    });
    this.element.append(
      el('p', { class: 'crumbs' }, el('a', { href: '#/' }, '← Overview')),
      el('header', { class: 'drill-head' }, el('h1', { id: 'drill-title' }, this.device), this.badge),
      el('div', { class: 'controls' }, picker, el('div', { class: 'zoom' }, this.back, this.reset)),
      this.customForm,
      this.rangeStatus,
      el('p', { class: 'hint' }, 'Drag across a chart to zoom in.'),
      this.body,
    );
    this.body.append(notice('Loading…'));
    void this.load();
  }

  close(): void {
    this.closed = true;
    this.requests?.abort();
    this.stopLive();
    this.teachIns.close();
    for (const c of this.charts) c.chart.destroy();
    this.charts = [];
  }

  private async load(): Promise<void> {
    try {
      await this.readMachine();
    } catch (err) {
      this.body.replaceChildren(notice(`The machine could not be read: ${message(err)}`, 'error'));
      return;
    }
    if (this.closed) return;
    const m = this.machine;
    if (!m) {
      this.body.replaceChildren(notice(`No machine named ${this.device} has logged results.`, 'error'));
      return;
    }
    this.build(m);
    this.choose(this.preset);
  }

  /** The machine's models and state, and the server's clock, from the overview. */
  private async readMachine(): Promise<void> {
    const o = await getJson<OverviewView>('api/overview');
    this.skewMs = o.nowMs - Date.now();
    this.machine = o.machines.find((m) => m.device === this.device) ?? null;
    for (const mm of this.machine?.models ?? []) this.newestMs = Math.max(this.newestMs, mm.timeMs);
    this.badge.replaceChildren(this.machine ? stateBadge(this.machine.state) : '');
  }

  private build(m: MachineView): void {
    const syncKey = `machine-${m.device}`;
    const onZoom = (fromMs: number, toMs: number): void => this.zoom(fromMs, toMs);
    this.body.replaceChildren();
    for (const mm of m.models) {
      const score = new SeriesChart({ kind: 'score', device: m.device, model: mm.model, title: scoreTitle(mm.threshold), syncKey, onZoom, measure: true });
      this.charts.push({ chart: score, model: mm.model, field: 'score' });
      // The teach-in line after the chart exists: a baseline it already knows moves the chart's threshold at once.
      const section = el('section', { class: 'model-charts', 'data-model': mm.model }, el('h2', {}, mm.title, ' ', el('span', { class: 'variant' }, mm.variant)), this.teachIns.line(m.device, mm.model, mm.threshold));
      section.append(score.element);
      if (mm.task === 'classification') {
        const cls = new SeriesChart({ kind: 'class', device: m.device, model: mm.model, title: 'Class over time', syncKey, onZoom, measure: false });
        section.append(cls.element);
        this.charts.push({ chart: cls, model: mm.model, field: 'score' });
      }
      this.body.append(section);
    }
    // One RMS chart: every model of the machine logs the same window's RMS; the first that has one.
    const withRms = m.models.find((mm) => mm.rms !== null) ?? m.models[0];
    if (withRms) {
      const rms = new SeriesChart({ kind: 'rms', device: m.device, model: withRms.model, title: 'Main channel RMS', syncKey, onZoom, measure: false });
      this.body.append(el('section', { class: 'model-charts', 'data-field': 'rms' }, el('h2', {}, 'Vibration'), rms.element));
      this.charts.push({ chart: rms, model: withRms.model, field: 'rms' });
    }
  }

  /** The server's now, or the newest data time when that is later (a simulated plant at speed runs ahead). */
  private now(): number {
    return Math.max(Date.now() + this.skewMs, this.newestMs);
  }

  private presetRange(): Range {
    const span = PRESETS.find((p) => p.key === this.preset)?.ms ?? 3_600_000;
    const toMs = this.now();
    return { fromMs: toMs - span, toMs, live: true };
  }

  private choose(key: string): void {
    this.preset = key;
    this.zooms = [];
    this.customForm.hidden = true;
    // The chosen range stays in the address, so a reload or a shared link shows the same.
    history.replaceState(null, '', `#/machine/${encodeURIComponent(this.device)}?range=${key}`);
    this.show(this.presetRange());
  }

  private zoom(fromMs: number, toMs: number): void {
    // The charts share their cursor, so one drag ends as a selection in each of them: one zoom.
    const at = performance.now();
    if (toMs - fromMs < MIN_ZOOM_MS || at - this.zoomedAt < 300) return;
    this.zoomedAt = at;
    this.zooms.push(this.range);
    this.show({ fromMs, toMs, live: false });
  }

  private show(range: Range): void {
    this.range = range;
    for (const [key, b] of this.presetButtons) b.setAttribute('aria-pressed', String(key === this.preset && (this.zooms.length === 0 || key === 'custom')));
    this.back.hidden = this.zooms.length === 0;
    this.reset.hidden = this.zooms.length === 0;
    setText(this.rangeStatus, `${format.time(range.fromMs)} – ${range.live ? 'now (live)' : format.time(range.toMs)}${this.zooms.length ? ' · zoomed' : ''}`);
    if (range.live) this.startLive();
    else this.stopLive();
    this.fetchAll();
  }

  /** Reads every chart of the range: one request per model's score (its class chart shares it) and one for the RMS. */
  private fetchAll(): void {
    this.requests?.abort();
    const requests = (this.requests = new AbortController());
    const range = this.range;
    const byKey = new Map<string, Charted[]>();
    for (const c of this.charts) {
      const key = `${c.model}\u0000${c.field}`;
      byKey.set(key, [...(byKey.get(key) ?? []), c]);
    }
    for (const group of byKey.values()) {
      const { model, field } = group[0];
      const points = pointsFor(group[0].chart.width());
      const q = new URLSearchParams({ device: this.device, model, from: String(Math.floor(range.fromMs)), to: String(Math.ceil(range.toMs)), points: String(points) });
      if (field === 'rms') q.set('field', 'rms');
      getJson<ChartView>(`api/chart?${q}`, requests.signal)
        .then((view) => {
          for (const c of group) c.chart.show(view, range, points);
          if (field === 'score' && view.points.length) this.noteBucket(view);
        })
        .catch((err: unknown) => {
          if (isAbort(err)) return;
          for (const c of group) c.chart.fail(`Could not read the chart: ${message(err)}`);
        });
    }
  }

  private noteBucket(view: ChartView): void {
    const how = view.bucketMs > 0 ? `buckets of ${format.duration(view.bucketMs)} (${view.source === 'raw' ? 'results' : `${view.source} rollup`})` : 'every result';
    const text = `${format.time(this.range.fromMs)} – ${this.range.live ? 'now (live)' : format.time(this.range.toMs)}${this.zooms.length ? ' · zoomed' : ''} · ${how}`;
    setText(this.rangeStatus, text);
  }

  private startLive(): void {
    if (this.live) return;
    this.live = openLive(
      {
        results: (points, at) => {
          for (const p of points) {
            this.newestMs = Math.max(this.newestMs, p.timeMs);
            if (p.rms !== undefined) this.rmsLive = true;
            for (const c of this.charts) if (c.model === p.model) c.chart.add(p, at);
          }
        },
        alerts: () => void this.readMachine().catch(() => undefined),
        // What came while the stream was down is only in the log.
        reconnected: () => this.show(this.presetRange()),
      },
      this.device,
    );
    this.rmsTimer = window.setInterval(() => this.refreshRms(), RMS_REFRESH_MS);
  }

  private stopLive(): void {
    this.live?.close();
    this.live = null;
    clearInterval(this.rmsTimer);
    this.rmsTimer = undefined;
  }

  private refreshRms(): void {
    const rms = this.charts.find((c) => c.field === 'rms');
    if (!rms || !this.range.live || this.rmsLive) return;
    const range = this.presetRange();
    const points = pointsFor(rms.chart.width());
    const q = new URLSearchParams({ device: this.device, model: rms.model, from: String(Math.floor(range.fromMs)), to: String(Math.ceil(range.toMs)), points: String(points), field: 'rms' });
    getJson<ChartView>(`api/chart?${q}`, this.requests?.signal)
      .then((view) => {
        if (this.range.live && !this.closed) rms.chart.show(view, range, points);
      })
      .catch(() => undefined);
  }
}

/** The score chart's caption: the threshold the device is judged by, when there is one. */
function scoreTitle(threshold: number | null): string {
  return threshold !== null ? `Score (threshold ${format.score(threshold)})` : 'Score';
}
