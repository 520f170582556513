// The deliver stage on a real session (a tiny gather model: score 10 × round(speed), NaN-free
// for speeds 0–3, refused by onnxruntime from 4 on): one run's results become one unit; a window
// whose result cannot be built is a dead letter of its own; alerts are changes of state; the
// cursors cover every window settled, dead-lettered ones too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelSession } from '../../runtime/engine';
import { parseCard } from '../../runtime/model';
import { GatewayMetrics } from '../../runtime/serve/metrics';
import { Delivery, fillTopic } from '../../runtime/stream/deliver';
import type { ReadyWindow } from '../../runtime/stream/device-windows';
import type { WindowResult } from '../../runtime/stream/scheduler';
import { gatherModel } from '../helpers/models';
import { speedCard } from '../helpers/speed-models';

const card = parseCard(speedCard('speed-one', { task: 'anomaly', threshold: 15 }));
const win = (device: string, second: number, speed: number): ReadyWindow => ({ device, features: Float32Array.of(speed), dims: [1], startMs: second * 1000, endMs: second * 1000 + 1000, messageKeys: [`${device}#${second}`] });

describe('Delivery', () => {
  let session: ModelSession;
  beforeAll(async () => {
    session = await ModelSession.load(gatherModel(), { backend: 'wasm', threads: 1, name: 'speed-one (fp32)' });
  });
  afterAll(() => session.dispose());

  const run = async (windows: ReadyWindow[]): Promise<WindowResult[]> => {
    const outcomes = await session.runWindows(windows.map((w) => ({ x: { type: 'float32', data: w.features, dims: w.dims } })));
    return windows.map((window, i) => ({ window, outcome: outcomes[i] }));
  };
  const spec = { pipeline: 'p', topic: 'machine/{device}/speed', sessionName: 'speed-one (fp32)', variant: 'fp32', results: 'out/{device}/{model}', resultsQos: 1 as const, recordEvery: 2 };

  it('should make results (dated by their windows, processed time beside), their outbox messages, recorded windows and the cursors of one run', async () => {
    const d = new Delivery(card, spec, new GatewayMetrics({ processMetrics: false }));
    const unit = d.unitFor(await run([win('a', 1, 1), win('a', 2, 1), win('b', 1, 1)]), 42);
    expect(unit.results!.map((r) => [r.device, r.score, r.anomaly, r.timeMs, r.processedMs])).toEqual([['a', 10, false, 2000, 42], ['a', 10, false, 3000, 42], ['b', 10, false, 2000, 42]]);
    expect(unit.outbox!.map((m) => m.topic)).toEqual(['out/a/speed-one', 'out/a/speed-one', 'out/b/speed-one']);
    expect(JSON.parse(unit.outbox![0].payload as string)).toMatchObject({ device: 'a', model: 'speed-one', score: 10, time: '1970-01-01T00:00:02.000Z', processed: '1970-01-01T00:00:00.042Z', window: { start: '1970-01-01T00:00:01.000Z' } });
    expect(unit.windows!.map((w) => w.timeMs)).toEqual([2000, 2000]); // every second window, at its end
    expect(unit.cursors).toEqual([{ pipeline: 'p', device: 'a', lastWindowStartMs: 2000, lastWindowKeys: ['a#2'] }, { pipeline: 'p', device: 'b', lastWindowStartMs: 1000, lastWindowKeys: ['b#1'] }]);
    expect(unit.alerts).toEqual([]);
  });

  it('should log the RMS its window carries, and null for a window without one', async () => {
    const d = new Delivery(card, spec, new GatewayMetrics({ processMetrics: false }));
    const unit = d.unitFor(await run([{ ...win('a', 1, 1), rms: 0.25 }, win('b', 1, 1), { ...win('c', 1, 1), rms: Number.NaN }]), 42);
    expect(unit.results!.map((r) => [r.device, r.rms])).toEqual([['a', 0.25], ['b', null], ['c', null]]);
  });

  it('should make a window the model refused a dead letter naming the model, the device and the window, and keep the others of the run', async () => {
    const d = new Delivery(card, spec, new GatewayMetrics({ processMetrics: false }));
    const unit = d.unitFor(await run([win('a', 1, 1), win('a', 2, 7)]));
    expect(unit.results).toHaveLength(1);
    expect(unit.deadLetters).toHaveLength(1);
    expect(unit.deadLetters![0]).toMatchObject({ device: 'a', topic: 'machine/{device}/speed' });
    expect(unit.deadLetters![0].reason).toMatch(/^speed-one \(fp32\)/);
    // The cursor covers the dead-lettered window: a replay does not make it again.
    expect(unit.cursors).toEqual([{ pipeline: 'p', device: 'a', lastWindowStartMs: 2000, lastWindowKeys: ['a#2'] }]);
  });

  it('should alert on changes of state only: raised, reminded after the cooldown, cleared', async () => {
    const d = new Delivery(card, { ...spec, alerts: { topic: 'alerts/{device}', consecutive: 2, cooldownS: 3, clearAfter: 1 } }, new GatewayMetrics({ processMetrics: false }));
    const speeds = [2, 2, 2, 2, 2, 1, 2];
    const unit = d.unitFor(await run(speeds.map((s, i) => win('a', i, s))));
    // Window ends at 1..7 s: raised at 2 s (2 in a row), reminded at 5 s, cleared at 6 s; one anomalous window after is no alert.
    expect(unit.alerts!.map((a) => a.kind)).toEqual(['anomaly', 'reminder', 'clear']);
    const messages = unit.outbox!.filter((m) => m.topic === 'alerts/a').map((m) => JSON.parse(m.payload as string) as { change: string });
    expect(messages.map((m) => m.change)).toEqual(['raised', 'repeated', 'cleared']);
    // Alerts are dated by the window that changed the state; the state commits with them.
    expect(unit.alerts!.map((a) => a.timeMs)).toEqual([2000, 5000, 6000]);
    expect(unit.alertStates).toEqual([{ pipeline: 'p', device: 'a', state: { raised: false, anomalous: 1, normal: 0, lastAlertMs: 5000, lastMs: 7000 } }]);
    // A unit whose windows changed no state carries none.
    expect(d.unitFor(await run([win('b', 1, 1)])).alertStates).toEqual([]);
  });

  it('should record windows as dead letters with their cursors (shed, failed runs, a unit the log refused)', () => {
    const d = new Delivery(card, spec, new GatewayMetrics({ processMetrics: false }));
    const unit = d.lettersFor([win('a', 3, 1), win('a', 1, 1)], 'E_SHED', (w) => `shed ${w.device}`);
    expect(unit.deadLetters!.map((l) => [l.code, l.reason])).toEqual([['E_SHED', 'shed a'], ['E_SHED', 'shed a']]);
    expect(JSON.parse(Buffer.from(unit.deadLetters![0].payload).toString())).toEqual({ device: 'a', model: 'speed-one', window: { startMs: 3000, endMs: 4000 }, messages: ['a#3'] });
    expect(unit.cursors).toEqual([{ pipeline: 'p', device: 'a', lastWindowStartMs: 3000, lastWindowKeys: ['a#3'] }]);
  });

  it('should fill {device} and {model} into topic templates', () => {
    expect(fillTopic('x/{device}/{model}/{device}', 'd', 'm')).toBe('x/d/m/d');
  });
});
