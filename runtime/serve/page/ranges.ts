// The time ranges a chart can show: the last 15 minutes … 30 days (they end now and follow live
// data), a custom from/to, and narrower ones zoomed into by dragging on a chart.

export interface Range {
  fromMs: number;
  toMs: number;
  /** Ends now and moves on with live data (a preset, not zoomed). */
  live: boolean;
}

export const PRESETS: ReadonlyArray<{ key: string; label: string; ms: number }> = [
  { key: '15m', label: '15 min', ms: 15 * 60_000 },
  { key: '1h', label: '1 h', ms: 3_600_000 },
  { key: '6h', label: '6 h', ms: 6 * 3_600_000 },
  { key: '24h', label: '24 h', ms: 24 * 3_600_000 },
  { key: '7d', label: '7 d', ms: 7 * 86_400_000 },
  { key: '30d', label: '30 d', ms: 30 * 86_400_000 },
];

/** The server caps a chart at this many points. */
export const MAX_POINTS = 5000;

/** Two points per pixel of the chart's width: min/max buckets are drawn as a band, so finer is wasted. */
export function pointsFor(widthPx: number): number {
  return Math.max(10, Math.min(MAX_POINTS, Math.round(2 * widthPx)));
}
