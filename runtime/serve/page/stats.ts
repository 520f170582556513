// Numbers a benchmark reads from the page (window.edgeInferStats): when the overview first
// rendered, and for each live point drawn, the time from its arrival on the event stream to the
// frame that drew it. The latencies live in a fixed ring, so a long run does not grow the page.
const KEEP = 10_000;

export interface EdgeInferStats {
  /** performance.now() when the overview first rendered (body[data-ready]). */
  firstRenderMs: number | null;
  /** Live points received from api/live, and drawn. */
  received: number;
  drawn: number;
  /** Per drawn point, performance.now() at draw minus at receipt: the newest KEEP, oldest first (a copy). */
  readonly latenciesMs: number[];
}

declare global {
  interface Window {
    edgeInferStats: EdgeInferStats;
  }
}

const ring = new Float64Array(KEEP);

export const stats: EdgeInferStats = (window.edgeInferStats = {
  firstRenderMs: null,
  received: 0,
  drawn: 0,
  get latenciesMs(): number[] {
    const n = Math.min(this.drawn, KEEP);
    const start = this.drawn - n;
    return Array.from({ length: n }, (_, i) => ring[(start + i) % KEEP]);
  },
});

export function received(n: number): void {
  stats.received += n;
}

export function drawn(receivedAt: number, drawnAt: number): void {
  ring[stats.drawn % KEEP] = drawnAt - receivedAt;
  stats.drawn++;
}

export function firstRender(): void {
  if (stats.firstRenderMs !== null) return;
  stats.firstRenderMs = performance.now();
  document.body.dataset.ready = 'true';
}
