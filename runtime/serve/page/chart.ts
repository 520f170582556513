// One chart of a machine's drill-down: a model's score (min/max band, mean, threshold line), its
// class over time (classifiers), or the main channel's RMS. It keeps one uPlot and reuses its
// columns: a new range replaces them, live points are merged into the last bucket or appended and
// the oldest dropped, so a chart holds about as many points as it asked the server for, however
// long it runs. Redraws happen at most once per animation frame.
import type { ChartView } from '../dashboard-contract.js';
import { el } from './dom.js';
import { cancelFrame, nextFrame } from './frame.js';
import type { Range } from './ranges.js';
import * as stats from './stats.js';
import { colour } from './theme.js';
import type { LivePoint } from './types.js';
import { type uPlot, uPlotClass } from './uplot.js';

export type ChartKind = 'score' | 'class' | 'rms';

export interface ChartOptions {
  kind: ChartKind;
  device: string;
  model: string;
  title: string;
  /** The machine's charts move their cursors together. */
  syncKey: string;
  /** The user dragged across [fromMs, toMs]. */
  onZoom(fromMs: number, toMs: number): void;
  /** Count its live points in window.edgeInferStats (one chart per model does, not both). */
  measure: boolean;
}

/** Points a live chart may hold beyond what it asked for, before the oldest go regardless of time. */
const SLACK = 64;
/** Receipt times waiting for a frame, at most (a hidden tab draws no frames). */
const MAX_WAITING = 10_000;

export class SeriesChart {
  readonly element: HTMLElement;
  private readonly box: HTMLElement;
  private readonly status: HTMLElement;
  private plot: uPlot | null = null;
  private readonly resize: ResizeObserver;
  // uPlot's columns, reused for the chart's life: x (ms), then min, max, mean (score, RMS) or the
  // class index (class). Per bucket also the count (for the mean) and the top score (its class).
  private readonly xs: number[] = [];
  private readonly mins: number[] = [];
  private readonly maxs: number[] = [];
  private readonly means: number[] = [];
  private readonly classes: Array<number | null> = [];
  private readonly counts: number[] = [];
  private readonly tops: number[] = [];
  private threshold: number | null = null;
  /** The threshold the device is judged by (its teach-in's), which replaces the card's the server sends; undefined: the server's. */
  private judgedThreshold: number | null | undefined;
  private readonly caption: HTMLElement;
  private labels: string[] = [];
  private fromMs = 0;
  private toMs = 0;
  private live = false;
  private bucketMs = 0;
  private cap = 0;
  private newestMs: number | null = null;
  private readonly waiting: number[] = [];
  private readonly redraw = (): void => this.draw();

  constructor(private readonly o: ChartOptions) {
    this.box = el('div', { class: 'plot', role: 'img', 'aria-label': `${o.title}, ${o.device}` });
    this.status = el('p', { class: 'chart-status', 'aria-live': 'polite' }, 'Loading…');
    this.caption = el('figcaption', {}, o.title);
    this.element = el('figure', { class: `chart chart-${o.kind}`, 'data-kind': o.kind, 'data-device': o.device, 'data-model': o.model }, this.caption, this.box, this.status);
    this.resize = new ResizeObserver(() => nextFrame(() => this.fit()));
    this.resize.observe(this.box);
  }

  /** The chart's width in CSS pixels (what the points asked of the server follow). */
  width(): number {
    return Math.max(100, Math.floor(this.box.clientWidth || this.element.clientWidth || 300));
  }

  /** What the chart shows: score, class or RMS. */
  get kind(): ChartKind {
    return this.o.kind;
  }

  /**
   * The threshold the device's windows are judged by now (a teach-in's baseline, or the card's
   * again), for the line and the caption: the server's chart answers carry the card's.
   */
  judgedBy(threshold: number | null, caption: string): void {
    this.judgedThreshold = threshold;
    this.threshold = threshold;
    this.caption.textContent = caption;
    nextFrame(this.redraw);
  }

  /** Draws what the server answered for a range, replacing what the chart held. */
  show(view: ChartView, range: Range, requested: number): void {
    this.threshold = this.judgedThreshold !== undefined ? this.judgedThreshold : view.threshold;
    this.labels = view.labels ?? [];
    this.fromMs = range.fromMs;
    this.toMs = range.toMs;
    this.live = range.live;
    // Live points merge into buckets at least as wide as a point of the request: a raw answer
    // over a long range stays within its points as the range fills.
    this.bucketMs = Math.max(view.bucketMs, (range.toMs - range.fromMs) / requested);
    this.cap = requested + SLACK;
    for (const c of this.columns()) c.length = 0;
    for (const p of view.points) {
      this.xs.push(p.timeMs);
      this.mins.push(p.min);
      this.maxs.push(p.max);
      this.means.push(p.mean);
      this.classes.push(this.classOf(p.label));
      this.counts.push(p.count);
      this.tops.push(p.max);
    }
    this.newestMs = view.points.length ? view.points[view.points.length - 1].timeMs : null;
    this.waiting.length = 0;
    this.status.textContent = view.points.length ? '' : 'No results logged in this range.';
    this.status.hidden = view.points.length > 0;
    nextFrame(this.redraw);
  }

  /** A message instead of the data (the request failed). */
  fail(text: string): void {
    this.status.textContent = text;
    this.status.hidden = false;
  }

  /** A live result of this chart's model: merged or appended, the oldest trimmed, drawn next frame. */
  add(p: LivePoint, receivedAt: number): void {
    const value = this.o.kind === 'rms' ? p.rms : p.score;
    if (!this.live || value === null || value === undefined) return;
    const last = this.xs.length - 1;
    // Older than what is drawn: the log's answer has it already.
    if (last >= 0 && p.timeMs < this.xs[last]) return;
    const cls = this.classOf(p.label);
    if (last >= 0 && p.timeMs < this.xs[last] + this.bucketMs) {
      this.mins[last] = Math.min(this.mins[last], value);
      this.maxs[last] = Math.max(this.maxs[last], value);
      this.means[last] = (this.means[last] * this.counts[last] + value) / (this.counts[last] + 1);
      this.counts[last]++;
      if (value >= this.tops[last]) {
        this.tops[last] = value;
        this.classes[last] = cls;
      }
    } else {
      // On the server's bucket grid, so the band does not jitter where fetched and live meet.
      const x = last >= 0 && this.bucketMs > 0 ? this.xs[last] + this.bucketMs * Math.floor((p.timeMs - this.xs[last]) / this.bucketMs) : p.timeMs;
      this.xs.push(x);
      this.mins.push(value);
      this.maxs.push(value);
      this.means.push(value);
      this.classes.push(cls);
      this.counts.push(1);
      this.tops.push(value);
    }
    this.newestMs = Math.max(this.newestMs ?? p.timeMs, p.timeMs);
    // The range ends at the newest data: it slides, and what falls off its start goes.
    if (p.timeMs > this.toMs) {
      this.fromMs += p.timeMs - this.toMs;
      this.toMs = p.timeMs;
    }
    let drop = 0;
    while (drop < this.xs.length && this.xs[drop] < this.fromMs) drop++;
    drop = Math.max(drop, this.xs.length - this.cap);
    if (drop > 0) for (const c of this.columns()) c.splice(0, drop);
    if (this.o.measure) {
      this.waiting.push(stats.madeAt(p, receivedAt));
      if (this.waiting.length > MAX_WAITING) this.waiting.splice(0, this.waiting.length - MAX_WAITING);
    }
    this.status.hidden = true;
    nextFrame(this.redraw);
  }

  destroy(): void {
    cancelFrame(this.redraw);
    this.resize.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }

  private columns(): Array<Array<number | null>> {
    return [this.xs, this.mins, this.maxs, this.means, this.classes, this.counts, this.tops];
  }

  private classOf(label: string | null): number | null {
    const i = label === null ? -1 : this.labels.indexOf(label);
    return i < 0 ? null : i;
  }

  private data(): uPlot.AlignedData {
    return this.o.kind === 'class' ? [this.xs, this.classes] : [this.xs, this.mins, this.maxs, this.means];
  }

  private draw(): void {
    if (!this.element.isConnected) return;
    if (!this.plot) this.plot = this.create();
    else this.plot.setData(this.data());
  }

  private fit(): void {
    if (!this.plot) return;
    const width = this.width();
    if (width !== this.plot.width) this.plot.setSize({ width, height: this.height() });
  }

  private height(): number {
    return this.o.kind === 'class' ? 150 : this.width() < 500 ? 160 : 200;
  }

  /** Called from uPlot's draw hook: the points just painted, for the benchmark and the tests. */
  private painted(): void {
    if (this.newestMs !== null) this.element.dataset.lastMs = String(this.newestMs);
    this.element.dataset.points = String(this.xs.length);
    if (this.xs.length) this.element.dataset.firstMs = String(this.xs[0]);
    else delete this.element.dataset.firstMs;
    if (this.waiting.length) {
      const now = performance.now();
      for (const r of this.waiting) stats.drawn(r, now);
      this.waiting.length = 0;
    }
  }

  private create(): uPlot {
    const U = uPlotClass();
    const fg = colour('--fg');
    const grid = colour('--grid');
    const accent = colour('--accent');
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const series: uPlot.Series[] = [{}];
    const bands: uPlot.Band[] = [];
    const yAxis: uPlot.Axis = { ...axis };
    let yRange: uPlot.Scale['range'];
    if (this.o.kind === 'class') {
      series.push({
        label: 'class',
        stroke: accent,
        width: 2,
        paths: U.paths.stepped?.({ align: 1 }),
        points: { show: true, size: 4 },
        value: (_u, v) => (v === null || v === undefined ? '–' : (this.labels[v] ?? String(v))),
      });
      yRange = () => [-0.5, Math.max(1, this.labels.length) - 0.5];
      yAxis.splits = () => this.labels.map((_, i) => i);
      yAxis.values = (_u, splits) => splits.map((i) => this.labels[i] ?? '');
      yAxis.size = Math.min(100, 16 + 7 * Math.max(4, ...this.labels.map((l) => l.length)));
    } else {
      const edge = colour('--band-edge');
      series.push({ label: 'min', stroke: edge, width: 1 }, { label: 'max', stroke: edge, width: 1 }, { label: 'mean', stroke: accent, width: 1.5 });
      bands.push({ series: [2, 1], fill: colour('--band') });
      yRange = (_u, min, max) => {
        let lo = Math.min(0, min ?? 0);
        let hi = Math.max(max ?? 1, this.threshold ?? -Infinity);
        if (hi <= lo) hi = lo + 1;
        const pad = (hi - lo) * 0.06;
        return [lo === 0 ? 0 : lo - pad, hi + pad];
      };
    }
    // One width for every chart's value axis (wide enough for a class name), so the machine's
    // charts line up in time above one another; a phone keeps the narrow default for scores.
    if (this.width() >= 500) yAxis.size = 100;
    const fault = colour('--fault');
    const opts: uPlot.Options = {
      width: this.width(),
      height: this.height(),
      ms: 1,
      series,
      bands,
      legend: { show: true, live: true },
      cursor: { sync: { key: this.o.syncKey }, drag: { x: true, y: false, setScale: false } },
      scales: { x: { time: true, range: () => [this.fromMs, this.toMs] }, y: { range: yRange } },
      axes: [{ ...axis }, yAxis],
      hooks: {
        draw: [
          (u) => {
            if (this.o.kind === 'score' && this.threshold !== null) {
              const y = Math.round(u.valToPos(this.threshold, 'y', true));
              const ctx = u.ctx;
              ctx.save();
              ctx.strokeStyle = fault;
              ctx.lineWidth = Math.max(1, devicePixelRatio);
              ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
              ctx.beginPath();
              ctx.moveTo(u.bbox.left, y);
              ctx.lineTo(u.bbox.left + u.bbox.width, y);
              ctx.stroke();
              ctx.restore();
            }
            this.painted();
          },
        ],
        setSelect: [
          (u) => {
            const s = u.select;
            if (s.width < 4) return;
            const from = u.posToVal(s.left, 'x');
            const to = u.posToVal(s.left + s.width, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            this.o.onZoom(Math.round(from), Math.round(to));
          },
        ],
      },
    };
    return new U(opts, this.data(), this.box);
  }
}
