// The live feed on a real HTTP server, read by real HTTP clients: each browser gets only the new
// points (of its device, when it asks for one), a burst of commits leaves as one event, a browser
// that stops reading is let go past the bound while the others go on, and the number of browsers
// is bounded.
import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ResultRecord } from '../../runtime/store';
import { LiveFeed } from '../../runtime/serve/live';
import { type EventStream, listenEvents } from '../helpers/event-stream';
import { alert, result } from '../store/helpers';

let server: Server | undefined;
let feed: LiveFeed | undefined;
const open: IncomingMessage[] = [];

afterEach(async () => {
  for (const r of open.splice(0)) r.destroy();
  feed?.close();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = feed = undefined;
});

async function serve(options: ConstructorParameters<typeof LiveFeed>[0] = {}): Promise<string> {
  const live = new LiveFeed(options);
  feed = live;
  server = createServer((req, res) => live.attach(req, res));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}/live`;
}

/** An event-stream client, closed after the test. */
async function listen(url: string): Promise<EventStream> {
  const stream = await listenEvents(url);
  open.push(stream.res);
  return stream;
}

const until = async (check: () => boolean, what: string, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('LiveFeed', () => {
  it('should send each browser only the new results and alerts, of its device when it asks for one', async () => {
    const url = await serve();
    const all = await listen(url);
    const pump = await listen(`${url}?device=press-2`);
    expect(all.res.headers['content-type']).toBe('text/event-stream');
    await until(() => feed!.size === 2, 'two browsers');
    feed!.publish({ results: [result(1000), result(2000, { device: 'press-2', score: 0.7, label: 'bearing', anomaly: true })], alerts: [alert(2000, { device: 'press-2' })] });
    await until(() => all.events.length === 2 && pump.events.length === 2, 'the events');
    expect(all.events[0]).toEqual({ event: 'results', data: [expect.objectContaining({ device: 'press-1', timeMs: 1000 }), { device: 'press-2', model: 'vibration-anomaly', variant: 'int8', timeMs: 2000, score: 0.7, label: 'bearing', anomaly: true, rms: null, processedMs: expect.any(Number) }] });
    expect(pump.events.map((e) => e.event)).toEqual(['results', 'alerts']);
    expect((pump.events[0].data as ResultRecord[]).map((p) => p.device)).toEqual(['press-2']);
    expect(pump.events[1].data).toEqual([expect.objectContaining({ device: 'press-2', kind: 'threshold', message: 'score over threshold', timeMs: 2000 })]);
    // The feed carries no history: a browser attached later gets only what comes after.
    const late = await listen(url);
    await until(() => feed!.size === 3, 'the third browser');
    feed!.publish({ results: [result(3000)] });
    await until(() => late.events.length === 1, 'the late event');
    expect((late.events[0].data as ResultRecord[]).map((p) => p.timeMs)).toEqual([3000]);
  });

  it('should send the commits of one flush interval as one event per browser', async () => {
    const url = await serve();
    const s = await listen(url);
    await until(() => feed!.size === 1, 'the browser');
    for (let i = 0; i < 100; i++) feed!.publish({ results: [result(i)] });
    await until(() => s.events.length === 1, 'the event');
    await new Promise((r) => setTimeout(r, 50));
    expect(s.events).toHaveLength(1);
    expect(s.events[0].data).toHaveLength(100);
  });

  it('should let go of a browser that stops reading once its backlog passes the bound, and keep serving the others', async () => {
    const url = await serve({ maxBufferedBytes: 64 * 1024, flushMs: 1 });
    const stuck = await listen(url);
    stuck.res.pause();
    const reading = await listen(url);
    await until(() => feed!.size === 2, 'two browsers');
    const burst = Array.from({ length: 1000 }, (_, i) => result(i, { device: `press-${i % 50}` }));
    for (let round = 0; round < 200 && feed!.dropped === 0; round++) {
      feed!.publish({ results: burst });
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(feed!.dropped).toBe(1);
    expect(feed!.size).toBe(1);
    const before = reading.events.length;
    feed!.publish({ results: [result(42)] });
    await until(() => reading.events.length > before, 'the reading browser to get on');
  }, 30_000);

  it('should answer 503 past the most browsers, and end every stream on close', async () => {
    const url = await serve({ maxClients: 2 });
    const a = await listen(url);
    await listen(url);
    const third = await listen(url);
    expect(third.res.statusCode).toBe(503);
    await until(() => third.res.complete, 'the refusal');
    expect(third.text()).toBe('live feed: 2 browsers are connected already\n');
    expect(third.events).toEqual([]);
    const ended = new Promise((r) => a.res.once('end', r));
    feed!.close();
    await ended;
    expect(feed!.size).toBe(0);
  });

  it('should keep an idle stream open with comment lines', async () => {
    const url = await serve({ heartbeatMs: 20 });
    const s = await listen(url);
    await until(() => s.text().split(':\n\n').length > 3, 'heartbeats');
    expect(s.events).toEqual([]);
  });

  it('should refuse bounds that are not whole numbers ≥ 1, naming them', () => {
    expect(() => new LiveFeed({ maxClients: 0 })).toThrow(/live feed: maxClients must be a whole number ≥ 1, got 0/);
    expect(() => new LiveFeed({ maxBufferedBytes: 1.5 })).toThrow(/maxBufferedBytes.*got 1\.5/);
  });
});
