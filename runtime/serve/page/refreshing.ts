// A view that reads one route when it opens and every few seconds after, and shows what the
// route answers (or why it could not be read) until another view replaces it.
import { getJson, message } from './api.js';
import { el, notice } from './dom.js';
import type { View } from './types.js';

const REFRESH_MS = 5000;

export abstract class RefreshingView<T> implements View {
  readonly element: HTMLElement;
  private readonly body = el('div', {});
  private readonly timer: number;
  private closed = false;

  /** `name` is the section's class and title id; `what` names the data in an error ("the models"). */
  constructor(name: string, title: string, private readonly route: string, private readonly what: string) {
    this.element = el('section', { class: name, 'aria-labelledby': `${name}-title` });
    this.element.append(el('h1', { id: `${name}-title` }, title), this.body);
    this.body.append(notice('Loading…'));
    this.timer = window.setInterval(() => this.load(), REFRESH_MS);
    this.load();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  /** What the view shows of the route's answer. */
  protected abstract render(value: T): HTMLElement[];

  private load(): void {
    getJson<T>(this.route)
      .then((v) => {
        if (!this.closed) this.body.replaceChildren(...this.render(v));
      })
      .catch((err: unknown) => {
        if (!this.closed) this.body.replaceChildren(notice(`${this.what} could not be read: ${message(err)}`, 'error'));
      });
  }
}
