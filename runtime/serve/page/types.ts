// What the live feed (api/live) sends, as runtime/serve/live.ts writes it. The contract names
// these events but does not define them, and live.ts is Node code the page cannot import.
export interface LivePoint {
  device: string;
  model: string;
  variant: string;
  /** Data time: the window's end, ms since the epoch. */
  timeMs: number;
  score: number;
  label: string | null;
  anomaly: boolean;
  /** RMS of the window's main channel, when logged (absent from servers before it was added). */
  rms?: number | null;
}

export interface LiveAlert {
  device: string;
  model: string;
  variant: string;
  kind: string;
  label: string | null;
  score: number;
  threshold: number | null;
  message: string;
  timeMs: number;
}

/** A view of the page: its element, and what to end (feeds, timers) when another view replaces it. */
export interface View {
  readonly element: HTMLElement;
  close(): void;
}
