// How numbers and times read on the page.

export function score(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  return a !== 0 && (a < 0.001 || a >= 10_000) ? v.toExponential(2) : v.toFixed(a < 1 ? 3 : a < 100 ? 2 : 0);
}

/** "12 s ago" from a data time and the server's now. Data ahead of the clock (a simulated plant at speed) reads "now". */
export function ago(timeMs: number, nowMs: number): string {
  const s = Math.round((nowMs - timeMs) / 1000);
  if (s < 2) return 'now';
  if (s < 90) return `${s} s ago`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 36) return `${h} h ago`;
  return `${Math.round(h / 24)} d ago`;
}

export function time(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '–';
  return new Date(ms).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 90_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 90 * 60_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 48 * 3_600_000) return `${Math.round(ms / 3_600_000)} h`;
  return `${Math.round(ms / 86_400_000)} d`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function ms(v: number | null): string {
  return v === null ? '–' : `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`;
}

export function percent(v: number | null): string {
  return v === null ? '–' : `${(v * 100).toFixed(1)} %`;
}

/** A value for <input type="datetime-local"> in the browser's zone. */
export function localInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 19);
}
