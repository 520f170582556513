// Teach-in on the page: per device and model, its baseline (none, learning with its count, active
// with its own threshold and since when), a Teach-in button with a small form, and Cancel while it
// learns. The server decides everything (which models it teaches, who may start, the target's
// bounds): the page asks and shows its answer as it comes. States come from a poll of
// api/teach-in, fast while a device learns (its count moves) and slow otherwise (a teach-in
// started elsewhere, from the command line or Node-RED, shows within seconds). A teach-in seen
// learning that ends without a baseline (a period with too few windows, a cancel from elsewhere)
// says how it ended, from the log (api/teach-in/last).
import type { TeachInEndedView, TeachInLastView, TeachInListView, TeachInView } from '../dashboard-contract.js';
import { ApiFailure, getJson, message, postJson } from './api.js';
import { el, setText } from './dom.js';
import * as format from './format.js';
import { loadSession, session } from './session.js';

/** A device learns: its count moves every few windows (the list is the gateway's memory, no query of the log). */
const LEARNING_POLL_MS = 500;
/** Nothing learns: a teach-in started or ended elsewhere shows this late at most. */
const IDLE_POLL_MS = 5000;
/** What the form offers first; within the API's default bounds (100 to 100,000 windows). */
export const DEFAULT_WINDOWS = 2000;
export const DEFAULT_MINUTES = 30;

const key = (device: string, model: string): string => `${device}\u0000${model}`;

/** "2,000": counts read as the plant's people write them, whatever the browser's language. */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** The line a device's teach-in reads as, in the plant's words. */
export function describe(s: TeachInView, when: (ms: number) => string = format.time): string {
  const own = s.baseline ? `own threshold ${format.score(s.baseline.threshold)}` : null;
  if (s.state === 'learning' && s.learning) {
    const l = s.learning;
    const so = l.targetWindows !== null ? `${count(l.windows)} of ${count(l.targetWindows)} windows` : `${count(l.windows)} windows so far of ${count(l.targetMinutes ?? 0)} min`;
    const meanwhile = own ? `; its ${own} applies meanwhile` : s.cardThreshold !== null ? `; the model's threshold ${format.score(s.cardThreshold)} applies meanwhile` : '';
    return `Teach-in: learning ${s.device}'s normal — ${so}${meanwhile}`;
  }
  if (s.state === 'active' && s.baseline) {
    const b = s.baseline;
    const card = s.cardThreshold !== null ? ` (the model's: ${format.score(s.cardThreshold)})` : '';
    return `Baseline active: ${s.device}'s ${own}${card}, from ${count(b.windows)} healthy windows${b.activeSinceMs !== null ? `, since ${when(b.activeSinceMs)}` : ''}`;
  }
  return s.cardThreshold !== null ? `No baseline: the model's threshold ${format.score(s.cardThreshold)} applies` : 'No baseline: the model\'s own rule applies';
}

/** How a teach-in ended without a baseline, or null for one that made one. */
export function ended(device: string, last: TeachInEndedView): string | null {
  if (last.state === 'failed') return `The last teach-in of ${device} failed: ${last.reason ?? 'the gateway gave no reason'}`;
  if (last.state === 'cancelled') return `The last teach-in of ${device} was cancelled after ${count(last.windows)} windows${last.startedBy ? ` (started by ${last.startedBy})` : ''}`;
  return null;
}

/** Why this session cannot start or cancel, or null when it may try (the server has the last word). */
export function cannotAct(): string | null {
  const s = session();
  if (!s || s.user !== null || !s.loginRequired) return null;
  return 'Log in to start or cancel a teach-in: changing how a machine is judged needs a logged-in user.';
}

/** One device and model: its state line, its buttons and form, and what the server answered. */
class TeachInLine {
  readonly element: HTMLElement;
  private readonly text = el('span', { class: 'teach-in-state' });
  private readonly teach = el('button', { type: 'button', class: 'teach-in-open', 'aria-expanded': 'false' }, 'Teach-in');
  private readonly cancel = el('button', { type: 'button', class: 'teach-in-cancel', hidden: true }, 'Cancel teach-in');
  private readonly unit = el('select', { class: 'teach-in-unit', 'aria-label': 'Learn for' }, el('option', { value: 'windows' }, 'windows'), el('option', { value: 'minutes' }, 'minutes'));
  private readonly amount = el('input', { type: 'number', class: 'teach-in-amount', min: 1, step: 1, value: DEFAULT_WINDOWS, required: true, 'aria-label': 'How many' });
  private readonly form: HTMLFormElement;
  private readonly error = el('p', { class: 'teach-in-error notice notice-error', role: 'alert', hidden: true });
  private readonly note = el('p', { class: 'teach-in-note notice', role: 'status', hidden: true });
  status: TeachInView;

  constructor(
    private readonly owner: TeachIns,
    readonly device: string,
    readonly model: string,
    cardThreshold: number | null,
  ) {
    this.status = { device, model, state: 'none', threshold: cardThreshold, cardThreshold };
    this.form = el(
      'form',
      { class: 'teach-in-form', hidden: true },
      el('span', {}, `Learn ${device}'s normal over the next`),
      this.amount,
      this.unit,
      el('button', { type: 'submit', class: 'primary teach-in-start' }, 'Start'),
    );
    this.element = el('div', { class: 'teach-in', 'data-device': device, 'data-model': model, 'data-state': 'unknown' }, el('div', { class: 'teach-in-line' }, this.text, this.teach, this.cancel), this.form, this.error, this.note);
    this.unit.addEventListener('change', () => {
      const minutes = this.unit.value === 'minutes';
      this.amount.value = String(minutes ? DEFAULT_MINUTES : DEFAULT_WINDOWS);
      // Minutes may be a fraction (the gateway takes any number > 0 and says so otherwise); windows are whole.
      this.amount.step = minutes ? 'any' : '1';
      this.amount.min = minutes ? '' : '1';
    });
    this.teach.addEventListener('click', () => {
      this.form.hidden = !this.form.hidden;
      this.teach.setAttribute('aria-expanded', String(!this.form.hidden));
      if (!this.form.hidden) this.amount.focus();
    });
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      const n = Number(this.amount.value);
      void this.act('start', { [this.unit.value === 'minutes' ? 'minutes' : 'windows']: n });
    });
    this.cancel.addEventListener('click', () => void this.act('cancel', {}));
    this.show(this.status, false);
  }

  /** Draws a status; `known` false: drawn from the overview alone, before api/teach-in answered. */
  show(s: TeachInView, known = true): void {
    this.status = s;
    setText(this.text, describe(s));
    if (known) this.element.dataset.state = s.state;
    const learning = s.state === 'learning';
    this.teach.hidden = learning;
    this.cancel.hidden = !learning;
    if (learning) this.form.hidden = true;
    this.teach.setAttribute('aria-expanded', String(!this.form.hidden));
  }

  /** Says how the teach-in seen learning ended (nothing for one that made a baseline). */
  ended(last: TeachInEndedView | null): void {
    const text = last && this.status.state === 'none' ? ended(this.device, last) : null;
    if (text === null) return;
    this.note.textContent = text;
    this.note.hidden = false;
  }

  private fail(text: string): void {
    this.error.textContent = text;
    this.error.hidden = false;
  }

  private async act(action: 'start' | 'cancel', target: Record<string, number>): Promise<void> {
    this.error.hidden = true;
    this.note.hidden = true;
    const why = cannotAct();
    if (why) return this.fail(why);
    const buttons = this.element.querySelectorAll('button');
    for (const b of buttons) b.disabled = true;
    try {
      const s = await postJson<TeachInView>(`api/teach-in/${action}`, { device: this.device, model: this.model, ...target });
      this.form.hidden = true;
      this.owner.update(s, true);
    } catch (err) {
      // A session that ended meanwhile (another tab logged out, a restart): the header learns it too.
      if (err instanceof ApiFailure && err.status === 401) {
        this.fail(`Not ${action === 'start' ? 'started' : 'cancelled'}: ${message(err)}. Log in and try again.`);
        void loadSession(document.getElementById('session')!);
      } else this.fail(message(err));
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  }
}

/**
 * The teach-in lines of one view: made per device and model as the view draws them, kept up to
 * date by one poll of api/teach-in. `changed` tells the view a status it may show elsewhere (the
 * overview moves the threshold on the score bar).
 */
export class TeachIns {
  private readonly lines = new Map<string, TeachInLine>();
  private readonly known = new Map<string, TeachInView>();
  private timer: number | undefined;
  private closed = false;
  /** null until api/teach-in answered; false where this host has no teach-in (Node-RED). */
  private available: boolean | null = null;

  constructor(private readonly changed: (s: TeachInView) => void = () => undefined) {
    this.poll();
  }

  /**
   * A device and model's line. The same element each time the view draws the row again (an alert
   * redraws the overview): a form being filled in, or an answer being read, stays.
   */
  line(device: string, model: string, cardThreshold: number | null): HTMLElement {
    const kept = this.lines.get(key(device, model));
    if (kept) {
      this.changed(kept.status);
      return kept.element;
    }
    const line = new TeachInLine(this, device, model, cardThreshold);
    this.lines.set(key(device, model), line);
    const s = this.known.get(key(device, model));
    if (s) {
      line.show(s);
      this.changed(s);
    } else if (this.available) line.show(line.status);
    // Shown once api/teach-in answered: inside Node-RED (no teach-in here) never.
    line.element.hidden = this.available !== true;
    return line.element;
  }

  /** A status the server answered: a poll, or (`own`) this page's start or cancel. */
  update(s: TeachInView, own = false): void {
    const k = key(s.device, s.model);
    const line = this.lines.get(k);
    // Seen learning, now without a baseline, and not by this page's own Cancel.
    if (!own && line && line.status.state === 'learning' && s.state === 'none') this.explain(line);
    if (s.state === 'none') this.known.delete(k);
    else this.known.set(k, s);
    line?.show(s);
    this.changed(s);
    if (s.state === 'learning') this.schedule(LEARNING_POLL_MS);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private explain(line: TeachInLine): void {
    const q = new URLSearchParams({ device: line.device, model: line.model });
    getJson<TeachInLastView>(`api/teach-in/last?${q}`, undefined, true)
      .then((v) => {
        if (!this.closed) line.ended(v.last);
      })
      // Only a note: the line already says there is no baseline.
      .catch(() => undefined);
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = window.setTimeout(() => this.poll(), ms);
  }

  private poll(): void {
    // Quiet: a 401 here is the view's to answer (it asks for a login once); a poll must not.
    getJson<TeachInListView>('api/teach-in', undefined, true)
      .then((v) => {
        if (this.closed) return;
        // This host has no teach-in (the dashboard inside Node-RED: its nodes teach through msg.teachIn).
        if (v.available === false) {
          this.available = false;
          return;
        }
        if (!this.available) for (const line of this.lines.values()) line.element.hidden = false;
        this.available = true;
        const now = new Map(v.teachIns.map((s) => [key(s.device, s.model), s]));
        // A device that left the list (cancelled, or its baseline gone) is back to none.
        for (const [k, line] of this.lines) {
          const s = now.get(k) ?? { ...line.status, state: 'none' as const, threshold: line.status.cardThreshold, learning: undefined, baseline: undefined };
          if (now.has(k) || this.known.has(k) || line.element.dataset.state === 'unknown') this.update(s);
        }
        for (const [k, s] of now) if (!this.lines.has(k)) this.known.set(k, s);
        const learning = v.teachIns.some((s) => s.state === 'learning');
        this.schedule(learning ? LEARNING_POLL_MS : IDLE_POLL_MS);
      })
      .catch((err: unknown) => {
        if (this.closed) return;
        this.schedule(IDLE_POLL_MS);
      });
  }
}
