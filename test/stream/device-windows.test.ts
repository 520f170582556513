// Per-device windows fed by a real decoder: what the windows refuse, and when they let a message go.
import { describe, expect, it } from 'vitest';
import { type ModelCardInput, parseCard } from '../../runtime/model';
import { createDecoder } from '../../runtime/stream/decoders';
import { DeviceWindows } from '../../runtime/stream/device-windows';
import { thrown } from '../helpers/errors';

const CARD: ModelCardInput = {
  schema: 1,
  id: 'motor-current',
  version: '1.0.0',
  title: 'Motor current',
  description: 'RMS of a motor current sampled at 100 Hz, four samples a window.',
  task: 'regression',
  input: { tensor: 'x', channels: [{ name: 'current', unit: 'A' }], sampleRate: 100, window: 4, hop: 4, features: { transform: 'rms' } },
  output: { tensor: 'y', score: 'rms current', unit: 'A' },
  precision: 'fp32',
};

const decoder = createDecoder({ kind: 'json', channels: ['current'], sampleRateField: 'rate' });
const decode = (rate: number, values: number[]) => decoder.decode(new TextEncoder().encode(JSON.stringify({ rate, current: values })), { topic: 'motors/m-1/current', device: 'm-1' })[0];

describe('device windows and the sample rate a payload states', () => {
  it('should window samples stated at the card\'s rate', () => {
    const windows = new DeviceWindows(parseCard(CARD));
    expect(windows.push('m-1', decode(100, [1, 1, 1, 1]), 'k1', 1000).windows).toHaveLength(1);
  });

  it('should refuse samples stated at another rate, naming both rates, and keep nothing of them', () => {
    const windows = new DeviceWindows(parseCard(CARD));
    const err = thrown(() => windows.push('m-1', decode(50, [1, 1, 1]), 'k1', 1000));
    expect(err).toMatchObject({ code: 'E_INPUT_VALUE' });
    expect(err.message).toMatch(/m-1/);
    expect(err.message).toMatch(/50 Hz/);
    expect(err.message).toMatch(/motor-current reads 100 Hz/);
    // Nothing of the refused message is in the window: four good samples make exactly one window.
    const { windows: made, released } = windows.push('m-1', decode(100, [2, 2, 2, 2]), 'k2', 1000);
    expect(made.map((w) => w.messageKeys)).toEqual([['k2']]);
    expect(released).toEqual(['k2']);
  });
});
