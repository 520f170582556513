// Numbers a benchmark reads from the page (window.edgeInferStats): when the overview first
// rendered, and for each live point drawn, the time from the gateway making its result to the
// frame that drew it (the gateway's clock and the browser's are one on the same machine; a point
// without that time counts from its arrival on the event stream). The latencies live in a fixed
// ring, so a long run does not grow the page.
const KEEP = 10_000;

export interface EdgeInferStats {
  /** performance.now() when the overview first rendered (body[data-ready]). */
  firstRenderMs: number | null;
  /** Live points received from api/live, and drawn. */
  received: number;
  drawn: number;
  /** Per drawn point, ms from its result being made to the frame that drew it: the newest KEEP, oldest first (a copy). */
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

/** When a live point's result was made, on performance.now()'s scale; its arrival when the point does not say. */
export function madeAt(p: { processedMs?: number }, receivedAt: number): number {
  return typeof p.processedMs === 'number' ? p.processedMs - performance.timeOrigin : receivedAt;
}

export function drawn(madeAtMs: number, drawnAt: number): void {
  ring[stats.drawn % KEEP] = drawnAt - madeAtMs;
  stats.drawn++;
}

export function firstRender(): void {
  if (stats.firstRenderMs !== null) return;
  stats.firstRenderMs = performance.now();
  document.body.dataset.ready = 'true';
}
