// The plant at a glance: a card per machine with its state (colour and word), and per model its
// latest score against the threshold (the device's own once a teach-in made one), its class, its
// variant, how long ago, and its teach-in. Faulty machines come first. Scores move live from api/live; an alert change reads the overview again, since a
// machine's state is the server's to decide.
import type { MachineModelView, MachineState, MachineView, OverviewView } from '../dashboard-contract.js';
import { ackedText, actOn } from './alert-actions.js';
import { getJson, message } from './api.js';
import { el, notice, setText } from './dom.js';
import * as format from './format.js';
import { nextFrame } from './frame.js';
import { openLive } from './live.js';
import * as stats from './stats.js';
import { TeachIns } from './teach-in.js';
import type { LivePoint, View } from './types.js';

const RANK: Record<MachineState, number> = { fault: 0, warning: 1, normal: 2 };
const UNKNOWN_REFETCH_MS = 3000;

export function byState(a: MachineView, b: MachineView): number {
  return RANK[a.state] - RANK[b.state] || a.device.localeCompare(b.device);
}

/** A state badge: the word, and the colour from its class. */
export function stateBadge(state: MachineState): HTMLElement {
  return el('span', { class: `state state-${state}`, 'aria-live': 'polite' }, state);
}

interface Row {
  element: HTMLElement;
  model: MachineModelView;
  fill: HTMLElement;
  bar: HTMLElement;
  score: HTMLElement;
  threshold: HTMLElement | null;
  cls: HTMLElement | null;
  ago: HTMLElement;
  variant: HTMLElement;
}

/** Where the score sits on the bar: the threshold at the middle, so "how far past" shows both ways. */
function barFraction(score: number, threshold: number | null): number {
  const full = threshold !== null && threshold > 0 ? 2 * threshold : 1;
  return Math.max(0, Math.min(1, score / full));
}

export class OverviewPage implements View {
  readonly element = el('section', { class: 'overview', 'aria-labelledby': 'overview-title' });
  private readonly summary = el('p', { class: 'summary', role: 'status', 'aria-live': 'polite' });
  private readonly grid = el('div', { class: 'machines' });
  private readonly rows = new Map<string, Row>();
  private readonly cards = new Map<string, HTMLElement>();
  /** Server clock minus ours, so "how long ago" uses the server's now. */
  private skewMs = 0;
  private readonly pending: Array<{ p: LivePoint; at: number }> = [];
  private readonly live;
  private readonly tick: number;
  private refetching = false;
  private unknownAskedMs = 0;
  private closed = false;
  private readonly apply = (): void => this.applyPoints();
  /** A baseline's threshold replaces the card's on the device's bar. */
  private readonly teachIns = new TeachIns((s) => {
    const row = this.rows.get(`${s.device}\u0000${s.model}`);
    if (!row || s.threshold === row.model.threshold) return;
    row.model.threshold = s.threshold;
    this.paint(row);
  });

  constructor() {
    this.element.append(el('h1', { id: 'overview-title' }, 'Plant overview'), this.summary, this.grid);
    this.grid.append(notice('Loading the plant…'));
    this.live = openLive({
      results: (points, at) => {
        for (const p of points) this.pending.push({ p, at: stats.madeAt(p, at) });
        // Bounded while no frame runs (a hidden tab): the newest per model is all a card shows.
        if (this.pending.length > 5000) this.pending.splice(0, this.pending.length - 5000);
        nextFrame(this.apply);
      },
      alerts: () => this.refetch(),
      reconnected: () => this.refetch(),
    });
    this.tick = window.setInterval(() => this.updateAgo(), 1000);
    this.refetch();
  }

  close(): void {
    this.closed = true;
    this.live.close();
    this.teachIns.close();
    clearInterval(this.tick);
  }

  private now(): number {
    return Date.now() + this.skewMs;
  }

  private refetch(): void {
    if (this.refetching) return;
    this.refetching = true;
    getJson<OverviewView>('api/overview')
      .then((o) => {
        if (this.closed) return;
        this.skewMs = o.nowMs - Date.now();
        this.render(o);
      })
      .catch((err: unknown) => {
        if (!this.closed && this.cards.size === 0) this.grid.replaceChildren(notice(`The overview could not be read: ${message(err)}`, 'error'));
      })
      .finally(() => (this.refetching = false));
  }

  private render(o: OverviewView): void {
    const machines = [...o.machines].sort(byState);
    this.rows.clear();
    this.cards.clear();
    this.grid.replaceChildren(...machines.map((m) => this.card(m)));
    this.summarise();
    stats.firstRender();
  }

  private summarise(): void {
    const states = [...this.cards.values()].map((c) => c.dataset.state);
    const count = (s: MachineState): number => states.filter((x) => x === s).length;
    setText(this.summary, states.length ? `${states.length} machines: ${count('fault')} fault, ${count('warning')} warning, ${count('normal')} normal` : 'No machine has logged a result yet.');
  }

  private card(m: MachineView): HTMLElement {
    const id = `machine-${m.device.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const card = el(
      'article',
      { class: `machine state-${m.state}`, 'data-device': m.device, 'data-state': m.state, 'aria-labelledby': id },
      el('header', {}, el('h2', { id }, el('a', { href: `#/machine/${encodeURIComponent(m.device)}` }, m.device)), stateBadge(m.state)),
      el('ul', { class: 'models' }, ...m.models.map((mm) => this.row(m.device, mm))),
    );
    this.cards.set(m.device, card);
    return card;
  }

  private row(device: string, m: MachineModelView): HTMLElement {
    const fill = el('span', { class: 'fill' });
    const bar = el('span', { class: 'bar', role: 'img' }, fill);
    if (m.threshold !== null) bar.append(el('span', { class: 'mark', 'aria-hidden': 'true' }));
    const score = el('span', { class: 'score' });
    const cls = m.task === 'classification' ? el('span', { class: 'class' }) : null;
    const ago = el('span', { class: 'ago' });
    const variant = el('span', { class: 'variant' }, m.variant);
    const threshold = m.threshold !== null ? el('span', { class: 'threshold' }) : null;
    const element = el(
      'li',
      { class: 'model', 'data-model': m.model },
      el('div', { class: 'model-head' }, el('span', { class: 'model-title' }, m.title), variant),
      el('div', { class: 'score-line' }, bar, score, threshold),
      el('div', { class: 'model-foot' }, cls ? el('span', {}, el('span', { class: 'muted' }, 'class '), cls) : el('span', {}), ago),
    );
    if (m.activeAlert) element.append(this.alertLine(m));
    const row: Row = { element, model: { ...m }, fill, bar, score, threshold, cls, ago, variant };
    this.rows.set(`${device}\u0000${m.model}`, row);
    // After the row is known: a baseline already active moves its threshold at once.
    element.append(this.teachIns.line(device, m.model, m.threshold));
    this.paint(row);
    return element;
  }

  private alertLine(m: MachineModelView): HTMLElement {
    const a = m.activeAlert!;
    const acked = ackedText(a, format.time);
    const line = el('div', { class: 'alert-line', 'data-alert-id': a.id }, el('span', { class: 'alert-message' }, a.message || `${a.kind}${a.label ? `: ${a.label}` : ''}`));
    if (acked) line.append(el('span', { class: 'acked' }, acked));
    else {
      const ack = el('button', { type: 'button', class: 'ack' }, 'Acknowledge');
      ack.addEventListener('click', () => {
        ack.disabled = true;
        actOn(a.id, 'ack')
          .then(() => this.refetch())
          .catch((err: unknown) => line.append(notice(message(err), 'error')))
          .finally(() => (ack.disabled = false));
      });
      line.append(ack);
    }
    return line;
  }

  private applyPoints(): void {
    const now = performance.now();
    const touched = new Set<string>();
    for (const { p, at } of this.pending) {
      const key = `${p.device}\u0000${p.model}`;
      const row = this.rows.get(key);
      stats.drawn(at, now);
      if (!row) {
        // A machine or model the overview has not seen: the server knows its state. Asked at most
        // every few seconds, should the feed name one the overview does not list.
        if (Date.now() - this.unknownAskedMs > UNKNOWN_REFETCH_MS) {
          this.unknownAskedMs = Date.now();
          this.refetch();
        }
        continue;
      }
      if (p.timeMs < row.model.timeMs) continue;
      Object.assign(row.model, { timeMs: p.timeMs, score: p.score, label: p.label, anomaly: p.anomaly, variant: p.variant });
      touched.add(key);
    }
    this.pending.length = 0;
    for (const key of touched) this.paint(this.rows.get(key)!);
    this.restate();
  }

  private paint(row: Row): void {
    const m = row.model;
    row.fill.style.width = `${(barFraction(m.score, m.threshold) * 100).toFixed(1)}%`;
    row.bar.classList.toggle('over', m.anomaly);
    row.bar.setAttribute('aria-label', `score ${format.score(m.score)}${m.threshold !== null ? ` of threshold ${format.score(m.threshold)}` : ''}`);
    setText(row.score, format.score(m.score));
    if (row.threshold) setText(row.threshold, `/ ${format.score(m.threshold)}`);
    if (row.cls) setText(row.cls, m.label ?? '–');
    setText(row.variant, m.variant);
    setText(row.ago, format.ago(m.timeMs, this.now()));
    row.element.dataset.lastMs = String(m.timeMs);
    row.element.classList.toggle('anomalous', m.anomaly);
  }

  /** Warning follows the latest windows live; fault stays until the server says otherwise. */
  private restate(): void {
    for (const [device, card] of this.cards) {
      if (card.dataset.state === 'fault') continue;
      let anomalous = false;
      for (const [key, row] of this.rows) if (key.startsWith(`${device}\u0000`) && row.model.anomaly) anomalous = true;
      const state: MachineState = anomalous ? 'warning' : 'normal';
      if (card.dataset.state === state) continue;
      card.dataset.state = state;
      card.className = `machine state-${state}`;
      const badge = card.querySelector('.state');
      if (badge) {
        badge.className = `state state-${state}`;
        badge.textContent = state;
      }
    }
    this.summarise();
  }

  private updateAgo(): void {
    const now = this.now();
    for (const row of this.rows.values()) setText(row.ago, format.ago(row.model.timeMs, now));
  }
}
