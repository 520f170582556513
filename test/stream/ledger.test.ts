// The ledger of journaled messages: a message retires (its journal row goes with the next
// commit) exactly when no window, device buffer or pin holds it any more.
import { describe, expect, it } from 'vitest';
import type { ReadyWindow } from '../../runtime/stream/device-windows';
import { inboundKey } from '../../runtime/store';
import { MessageLedger } from '../../runtime/stream/ledger';

const win = (...keys: string[]): ReadyWindow => ({ device: 'd', features: new Float32Array(1), dims: [1], startMs: 0, endMs: 1, messageKeys: keys });

describe('MessageLedger', () => {
  it('should retire a message that fed no window as soon as it is closed', () => {
    const l = new MessageLedger('p');
    l.open('a', true);
    expect(l.has('a')).toBe(true);
    l.close('a');
    expect(l.take(5)).toEqual({ consumed: [{ pipeline: 'p', key: 'a' }], inbound: [{ key: inboundKey('p', 'a'), topic: 'p', receivedMs: 5 }] });
    // Retiring until its commit settles: a message with the same key meanwhile is a repeat.
    expect(l.has('a')).toBe(true);
    l.committed([{ pipeline: 'p', key: 'a' }]);
    expect(l.has('a')).toBe(false);
  });

  it('should hold a message while a window made of it is unsettled, and while a device buffer keeps its samples', () => {
    const l = new MessageLedger('p');
    l.open('a', false);
    l.buffered('a');
    const w = win('a');
    l.hold([w]);
    l.close('a');
    expect(l.hasConsumable).toBe(false);
    expect(l.settle([w])).toEqual([w]);
    expect(l.hasConsumable).toBe(false); // still buffered
    l.release('a');
    expect(l.take().consumed).toEqual([{ pipeline: 'p', key: 'a' }]);
  });

  it('should settle a window only once', () => {
    const l = new MessageLedger('p');
    for (const k of ['a', 'b']) l.open(k, false);
    const w = win('a', 'b');
    l.hold([w]);
    l.hold([win('b')]);
    for (const k of ['a', 'b']) l.close(k);
    expect(l.settle([w])).toEqual([w]);
    expect(l.settle([w])).toEqual([]);
    expect(l.isSettled(w)).toBe(true);
    // b is still held by its second window.
    expect(l.take().consumed).toEqual([{ pipeline: 'p', key: 'a' }]);
    expect(l.size).toBe(1);
  });

  it('should keep a pinned message (a Sparkplug birth) until it is unpinned, and not remember keys it was told not to', () => {
    const l = new MessageLedger('p');
    l.open('birth', false);
    l.close('birth', true);
    expect(l.hasConsumable).toBe(false);
    l.unpin('birth');
    expect(l.take()).toEqual({ consumed: [{ pipeline: 'p', key: 'birth' }], inbound: [] });
  });

  it('should ignore keys it does not hold', () => {
    const l = new MessageLedger('p');
    l.release('x');
    l.unpin('x');
    l.close('x');
    l.buffered('x');
    expect(l.settle([win('x')])).toHaveLength(1);
    expect(l.take()).toEqual({ consumed: [], inbound: [] });
  });
});
