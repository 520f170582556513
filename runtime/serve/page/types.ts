// What the live feed sends is in the contract, beside the routes' JSON.
export type { LiveAlert, LivePoint } from '../dashboard-contract.js';

/** A view of the page: its element, and what to end (feeds, timers) when another view replaces it. */
export interface View {
  readonly element: HTMLElement;
  close(): void;
}
