// The quantization report: a few lines for the terminal, and a self-contained HTML page with a
// histogram of the output errors per variant, for people who would rather look than read.
import { readFileSync } from 'node:fs';
import type { VariantComparison } from './compare';

const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
const kb = (n: number): string => `${(n / 1000).toFixed(1)} kB`;

/** The figures of one comparison as aligned lines. */
export function textReport(c: VariantComparison): string[] {
  const lines = [
    `size        ${kb(c.fp32SizeBytes)} → ${kb(c.sizeBytes)} (${pct(c.sizeBytes / c.fp32SizeBytes)} of fp32)`,
    `agreement   top-1 ${pct(c.top1)}, cosine ${c.cosine.toFixed(5)}, max |error| ${c.maxAbsError.toPrecision(3)}, mean |error| ${c.meanAbsError.toPrecision(3)} on ${c.windows} held-out windows`,
  ];
  if (c.metric) lines.push(`${c.metric.name.padEnd(11)} ${c.metric.fp32.toFixed(4)} → ${c.metric.variant.toFixed(4)} (${c.metric.delta >= 0 ? '+' : ''}${(c.metric.delta * 100).toFixed(2)} points)`);
  lines.push(`latency     ${c.latency.fp32Ms.toFixed(3)} ms → ${c.latency.variantMs.toFixed(3)} ms per run of ${c.latency.batch} windows (${c.latency.speedup.toFixed(2)}× fp32 throughput)`);
  return lines;
}

/** Counts of |error| in logarithmic bins from 1e-8 up: [bin lower edges (log10), counts]. */
export function errorHistogram(errors: Float32Array, binsPerDecade = 4): { log10: number[]; counts: number[] } {
  const lo = -8;
  let hi = lo + 1;
  for (const e of errors) if (e > 0) hi = Math.max(hi, Math.ceil(Math.log10(e)));
  const n = (hi - lo) * binsPerDecade;
  const counts = new Array<number>(n + 1).fill(0);
  for (const e of errors) {
    const b = e <= 10 ** lo ? 0 : Math.min(n, Math.floor((Math.log10(e) - lo) * binsPerDecade) + 1);
    counts[b]++;
  }
  return { log10: counts.map((_, i) => lo + (i - 1) / binsPerDecade), counts };
}

const escape = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function asset(file: string): string {
  return readFileSync(require.resolve(`uplot/dist/${file}`), 'utf8');
}

/**
 * One HTML page for one model's variants: a table of their figures and a histogram of output
 * errors each. Self-contained (uPlot inlined): it opens on a gateway with no network.
 */
export function htmlReport(model: string, comparisons: readonly VariantComparison[]): string {
  const rows = comparisons.map((c) => `<tr><td>${escape(c.variant)}</td><td>${kb(c.sizeBytes)} (${pct(c.sizeBytes / c.fp32SizeBytes)})</td><td>${pct(c.top1)}</td><td>${c.cosine.toFixed(5)}</td><td>${c.maxAbsError.toPrecision(3)}</td><td>${c.meanAbsError.toPrecision(3)}</td><td>${c.metric ? `${c.metric.name} ${c.metric.fp32.toFixed(4)} → ${c.metric.variant.toFixed(4)}` : '—'}</td><td>${c.latency.speedup.toFixed(2)}×</td></tr>`).join('\n');
  const charts = comparisons.map((c, i) => ({ id: `h${i}`, title: `${c.variant}: |output − fp32 output| (${c.errors.length} values)`, ...errorHistogram(c.errors) }));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(model)}: quantization report</title>
<style>${asset('uPlot.min.css')}
body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}h2{font-size:16px;margin-top:2em}</style>
</head><body>
<h1>${escape(model)}: low-bit variants against fp32</h1>
<table><tr><th>variant</th><th>size</th><th>top-1 agreement</th><th>cosine</th><th>max |error|</th><th>mean |error|</th><th>task metric</th><th>throughput vs fp32</th></tr>
${rows}
</table>
${charts.map((c) => `<h2>${escape(c.title)}</h2><div id="${c.id}"></div>`).join('\n')}
<script>${asset('uPlot.iife.min.js')}</script>
<script>
const charts = ${JSON.stringify(charts.map(({ id, log10, counts }) => ({ id, log10, counts })))};
for (const c of charts) {
  new uPlot({
    width: 720, height: 260,
    scales: { x: { time: false } },
    axes: [{ label: 'log10 |error|' }, { label: 'values' }],
    series: [{}, { label: 'values', fill: 'rgba(60,120,200,0.5)', stroke: 'rgb(60,120,200)', paths: uPlot.paths.bars({ size: [0.9] }) }],
  }, [c.log10, c.counts], document.getElementById(c.id));
}
</script>
</body></html>
`;
}
