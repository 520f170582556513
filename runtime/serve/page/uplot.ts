// uPlot arrives as a classic script (assets/uPlot.iife.min.js, served from the package's
// node_modules/uplot), which sets window.uPlot; its types come from the package.
import type uPlot from 'uplot';

declare global {
  interface Window {
    uPlot?: typeof uPlot;
  }
}

export type { uPlot };

export function uPlotClass(): typeof uPlot {
  const u = window.uPlot;
  if (!u) throw new Error('the chart library did not load (assets/uPlot.iife.min.js)');
  return u;
}
