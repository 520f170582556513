// Health: the broker, each pipeline's queue, the outbox and journal, what the log holds, the
// live feed's browsers, and dead letters with their reasons. The gateway's part is its /health
// (absent inside Node-RED), read by the names it uses and shown as it comes otherwise.
import type { HealthView } from '../dashboard-contract.js';
import { el, notice, table } from './dom.js';
import * as format from './format.js';
import { RefreshingView } from './refreshing.js';

function str(v: unknown): string {
  if (v === null || v === undefined) return '–';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function facts(caption: string, rows: Array<[string, string]>): HTMLElement {
  return el('dl', { class: 'facts', 'aria-label': caption }, ...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

export class HealthPage extends RefreshingView<HealthView> {
  constructor() {
    super('health', 'Health', 'api/health', 'Health');
  }

  protected render(h: HealthView): HTMLElement[] {
    const out: HTMLElement[] = [el('p', { class: `state ${h.ok ? 'state-normal' : 'state-fault'}`, role: 'status' }, h.ok ? 'ok' : 'not ok')];
    const g = h.gateway;
    if (g) {
      const known = new Set(['ok', 'broker', 'brokerSince', 'brokerError', 'pipelines', 'outbox', 'journal', 'commitsFailingSince', 'subscriptions']);
      const rows: Array<[string, string]> = [
        ['Broker', `${str(g.broker)}${g.brokerSince ? ` since ${format.time(Date.parse(String(g.brokerSince)))}` : ''}`],
        ['Outbox', str(g.outbox)],
        ['Journal', str(g.journal)],
      ];
      if (g.brokerError) rows.push(['Broker error', str(g.brokerError)]);
      if (g.commitsFailingSince) rows.push(['Commits failing since', str(g.commitsFailingSince)]);
      for (const [k, v] of Object.entries(g)) if (!known.has(k)) rows.push([k, str(v)]);
      out.push(el('h2', {}, 'Gateway'), facts('Gateway', rows));
      const pipelines = Array.isArray(g.pipelines) ? (g.pipelines as Array<Record<string, unknown>>) : [];
      if (pipelines.length) out.push(table('Pipelines', ['Pipeline', 'Model', 'Variant', 'Queue depth', 'Devices'], pipelines.map((p) => [str(p.name), str(p.model), str(p.variant), str(p.queue), str(p.devices)])));
      const subs = Array.isArray(g.subscriptions) ? (g.subscriptions as Array<Record<string, unknown>>) : [];
      if (subs.length) out.push(table('Subscriptions', ['Filter', 'QoS', 'Remembered'], subs.map((s) => [str(s.filter), str(s.qos), s.remembered ? `yes${s.grantedAt ? `, ${str(s.grantedAt)}` : ''}` : 'no'])));
    }
    const c = h.counts;
    out.push(
      el('h2', {}, 'Log'),
      facts('Log', [
        ['Results', String(c.results)],
        ['Alerts', String(c.alerts)],
        ['Windows', String(c.windows)],
        ['Outbox', String(c.outbox)],
        ['Dead letters', String(c.deadLetters)],
        ['Live browsers', `${h.live.browsers} (${h.live.dropped} let go)`],
      ]),
      el('h2', {}, 'Dead letters'),
    );
    const d = h.deadLetters;
    out.push(
      d.recent.length
        ? table(`Dead letters (latest of ${d.total})`, ['Time', 'Topic', 'Device', 'Code', 'Reason'], d.recent.map((r) => [format.time(r.timeMs), r.topic, r.device ?? '–', r.code, r.reason]))
        : notice('No dead letters.'),
    );
    return out;
  }
}
