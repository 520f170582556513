// Numbers a benchmark reads from the page (window.edgeInferStats): when the overview first
// rendered, and for each live point drawn, the time from its arrival on the event stream to the
// frame that drew it. Bounded, so a long run does not grow the page.
const KEEP = 10_000;

export interface EdgeInferStats {
  /** performance.now() when the overview first rendered (body[data-ready]). */
  firstRenderMs: number | null;
  /** Live points received from api/live and drawn. */
  received: number;
  drawn: number;
  /** Per drawn point, performance.now() at draw minus at receipt (the newest KEEP). */
  latenciesMs: number[];
}

declare global {
  interface Window {
    edgeInferStats: EdgeInferStats;
  }
}

export const stats: EdgeInferStats = (window.edgeInferStats = { firstRenderMs: null, received: 0, drawn: 0, latenciesMs: [] });

export function received(n: number): void {
  stats.received += n;
}

export function drawn(receivedAt: number, drawnAt: number): void {
  stats.drawn++;
  stats.latenciesMs.push(drawnAt - receivedAt);
  // Trimmed in steps, not per point: one copy per KEEP points.
  if (stats.latenciesMs.length > 2 * KEEP) stats.latenciesMs.splice(0, stats.latenciesMs.length - KEEP);
}

export function firstRender(): void {
  if (stats.firstRenderMs !== null) return;
  stats.firstRenderMs = performance.now();
  document.body.dataset.ready = 'true';
}
