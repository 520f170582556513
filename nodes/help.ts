// A model node's help text, written from its card and its variants: what it detects, what it
// reads, what it sends, and what each precision costs in agreement with fp32.
import type { ModelEntry } from '../runtime/model';

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** The node type of a model: `edge-infer-<model id>`. */
export function nodeTypeOf(modelId: string): string {
  return `edge-infer-${modelId}`;
}

export function helpHtml(model: ModelEntry): string {
  const fp32 = model.variants.find((v) => v.precision === 'fp32') ?? model.variants[0];
  const card = fp32.card;
  const i = card.input;
  const f = i.features;
  const features = f.transform === 'fft-magnitude' ? `magnitude spectrum in ${f.bins} bands up to ${f.maxHz ?? i.sampleRate / 2} Hz` : f.transform === 'rms' ? 'RMS of each channel' : 'the raw samples';
  const output = card.task === 'classification'
    ? `<code>label</code>: one of ${card.output.labels!.map((l) => `<code>${esc(l)}</code>`).join(', ')}; <code>probabilities</code>: per label; <code>score</code>: the top probability; <code>anomaly</code>: true for a non-normal label at or above the threshold (${card.output.threshold ?? 0}).`
    : `<code>score</code>: ${esc(card.output.score)}; <code>anomaly</code>: true at or above the threshold (${card.output.threshold}); <code>label</code>: <code>anomaly</code> or <code>normal</code>.`;
  const variants = model.variants.map((v) => {
    const a = v.card.quantization?.agreement;
    const metric = Object.entries(v.card.metrics).find(([k]) => k === 'accuracy' || k === 'rocAuc');
    const figures = [`${(v.sizeBytes / 1000).toFixed(0)} kB`];
    if (metric) figures.push(`${metric[0]} ${metric[1]}`);
    if (a?.top1 !== undefined) figures.push(`agrees with fp32 on ${(a.top1 * 100).toFixed(1)} % of held-out windows`);
    if (a?.metricDelta !== undefined) figures.push(`${a.metricDelta >= 0 ? '+' : ''}${(a.metricDelta * 100).toFixed(2)} points`);
    return `<li><code>${esc(v.variant)}</code> (${esc(v.precision)}): ${figures.join(', ')}</li>`;
  });
  return `<p>${esc(card.description)}</p>
<h3>Inputs</h3>
<dl class="message-properties">
<dt>payload <span class="property-type">number | array | typed array | Buffer | object</span></dt>
<dd>Samples of ${i.channels.map((c) => `<code>${esc(c.name)}</code> [${esc(c.unit)}]`).join(', ')} at ${i.sampleRate} Hz: one value per channel (<code>[${i.channels.map((c) => c.name).join(', ')}]</code>), rows of them, an object of named channels (numbers or arrays), a typed array (a Float32Array, ...) or a float32 Buffer with the channels interleaved, or a Buffer of JSON text in one of these shapes (as an MQTT node that outputs a Buffer delivers JSON). The node keeps a window of ${i.window} samples per device and runs the model every ${i.hop} samples, on ${features}.</dd>
<dt class="optional">topic <span class="property-type">string</span></dt>
<dd>The device the samples come from (or the property set in the node): each device has its own window.</dd>
<dt class="optional">teachIn <span class="property-type">object</span></dt>
<dd>Teach-in for the message's device: <code>{ action: 'start', windows: 2000 }</code> (or <code>minutes: 30</code>) learns its next windows as healthy and then judges it by a threshold of its own (a high quantile of its healthy scores plus a margin, never below the highest of them); <code>{ action: 'cancel' }</code> stops one that learns. While it learns, the threshold in force before still applies. The status shows the progress; a refusal (a device without results yet, too few windows, one already learning) ends the message with an error. Needs <i>Log results</i>: the baselines are kept in the runtime's log.</dd>
</dl>
<h3>Outputs</h3>
<ol class="node-ports">
<li>Results
<dl class="message-properties">
<dt>payload <span class="property-type">object</span></dt>
<dd>One message per window: <code>device</code>, <code>score</code>, <code>label</code>, <code>probabilities</code>, <code>anomaly</code>, <code>threshold</code> (the device's own once its teach-in is active), <code>baseline</code> (<code>none</code>, <code>learning</code> or <code>active</code>), <code>model</code>, <code>variant</code>, <code>latencyMs</code>, <code>time</code> (the window's end, in the data's own time), <code>processed</code> (when the node made the result), <code>window: {start, end}</code>. ${output}</dd>
</dl></li>
<li>Alerts
<dl class="message-properties">
<dt>payload <span class="property-type">object</span></dt>
<dd>A change of a device's alert state, not a window: <code>change</code> is <code>raised</code> (after <i>Alert after</i> anomalous windows in a row), <code>repeated</code> (still anomalous once <i>Re-alert after</i> seconds have passed since the last alert) or <code>cleared</code> (after <i>Clear after</i> normal windows in a row; by default as many as <i>Alert after</i>). Also <code>device</code>, <code>model</code>, <code>variant</code>, <code>kind</code> (the log's word: <code>${card.task === 'classification' ? 'fault' : 'anomaly'}</code>, <code>reminder</code> or <code>clear</code>), <code>label</code>, <code>score</code>, <code>threshold</code>, <code>windows</code> (the run's length), <code>time</code> (the window's end, in the data's own time), <code>processed</code> and <code>message</code>. Defaults: 3 windows, 300 s. A new alert after a clear also waits for the cooldown; windows either side of a gap of more than 10 minutes in the data are not in a row.</dd>
</dl></li>
</ol>
<h3>Details</h3>
<p><b>Logged before done.</b> With <i>Log results</i> on, the results and alert changes of the windows a message completes are committed to the runtime's SQLite file first, then sent, and only then is <code>done()</code> called for that message: a Complete node that fires without an error means they are in the log. A commit that fails still sends them and ends the message with an error naming the model and the device (a Catch node hears it). When inference or the log cannot keep up, at most 1,024 windows wait; older ones are dropped, their messages end with an error, and the status counts them (<i>shed</i>). Samples of a window not yet complete are held in memory and are lost if Node-RED dies.</p>
<p>The status shows the backend (<code>native</code> or <code>wasm</code>) the model runs on; when the runtime is on <i>auto</i> and falls back to wasm, the node warns once with the reason (onnxruntime-node not installed, or its load error).</p>
<p>Task: ${card.task}. ${esc(card.output.score)}.</p>
<p>Precisions available (pick one, or a policy such as <code>smallest-within:1</code>: the smallest variant within one point of fp32):</p>
<ul>${variants.join('')}</ul>
<p>The <b>Quantize</b> button makes an int8 or FP8 variant calibrated on the windows this gateway recorded, and shows what it costs against fp32.</p>
${card.training ? `<p>${esc(card.training)}</p>` : ''}`;
}
