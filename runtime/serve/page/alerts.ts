// Alerts: those active now and the recent history, with who acknowledged or cleared each and
// when (stored in the log). Acknowledge and Clear ask for a login where the server wants one.
import type { AlertView, AlertsView } from '../dashboard-contract.js';
import { type AlertAction, actOn } from './alert-actions.js';
import { getJson, message } from './api.js';
import { el, notice, table } from './dom.js';
import * as format from './format.js';
import { openLive } from './live.js';
import type { View } from './types.js';

const HISTORY = 100;

export class AlertsPage implements View {
  readonly element = el('section', { class: 'alerts', 'aria-labelledby': 'alerts-title' });
  private readonly active = el('div', { class: 'alerts-active' });
  private readonly history = el('div', { class: 'alerts-history' });
  private readonly status = el('p', { class: 'notice', role: 'status', 'aria-live': 'polite' });
  private readonly live;
  private closed = false;

  constructor() {
    this.element.append(el('h1', { id: 'alerts-title' }, 'Alerts'), this.status, el('h2', {}, 'Active'), this.active, el('h2', {}, 'Recent'), this.history);
    this.active.append(notice('Loading…'));
    this.live = openLive({ alerts: () => this.load(), reconnected: () => this.load() });
    this.load();
  }

  close(): void {
    this.closed = true;
    this.live.close();
  }

  private load(): void {
    Promise.all([getJson<AlertsView>('api/alerts?active=1'), getJson<AlertsView>(`api/alerts?limit=${HISTORY}`)])
      .then(([active, recent]) => {
        if (this.closed) return;
        this.active.replaceChildren(active.alerts.length ? this.table('Active alerts', active.alerts) : notice('No alert is active.'));
        this.history.replaceChildren(recent.alerts.length ? this.table('Recent alerts', recent.alerts) : notice('No alert has been logged.'));
      })
      .catch((err: unknown) => {
        if (!this.closed) this.active.replaceChildren(notice(`The alerts could not be read: ${message(err)}`, 'error'));
      });
  }

  private table(caption: string, alerts: AlertView[]): HTMLElement {
    const t = table(
      caption,
      ['Time', 'Machine', 'Model', 'Kind', 'Score', 'Message', 'Acknowledged', 'Cleared', ''],
      alerts.map((a) => [
        format.time(a.timeMs),
        el('a', { href: `#/machine/${encodeURIComponent(a.device)}` }, a.device),
        `${a.model} (${a.variant})`,
        `${a.kind}${a.label ? `: ${a.label}` : ''}`,
        `${format.score(a.score)}${a.threshold !== null ? ` / ${format.score(a.threshold)}` : ''}`,
        a.message,
        a.ackedBy !== null || a.ackedMs !== null ? el('span', { class: 'acked' }, `${a.ackedBy ?? '–'}, ${format.time(a.ackedMs)}`) : '–',
        a.clearedBy !== null || a.clearedMs !== null ? `${a.clearedBy ?? '–'}, ${format.time(a.clearedMs)}` : '–',
        this.actions(a),
      ]),
    );
    t.querySelectorAll('tbody tr').forEach((tr, i) => tr.setAttribute('data-alert-id', String(alerts[i].id)));
    return t;
  }

  private actions(a: AlertView): HTMLElement {
    const box = el('span', { class: 'actions' });
    const button = (action: AlertAction, label: string): HTMLButtonElement => {
      const b = el('button', { type: 'button', class: action, 'aria-label': `${label} alert ${a.id} (${a.device})` }, label);
      b.addEventListener('click', () => {
        b.disabled = true;
        actOn(a.id, action)
          .then(() => this.load())
          .catch((err: unknown) => this.status.replaceChildren(notice(message(err), 'error')))
          .finally(() => (b.disabled = false));
      });
      return b;
    };
    if (a.ackedMs === null) box.append(button('ack', 'Acknowledge'));
    if (a.clearedMs === null && a.kind !== 'clear') box.append(button('clear', 'Clear'));
    return box;
  }
}
