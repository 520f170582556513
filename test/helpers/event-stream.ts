// A browser's side of a server-sent event stream, for the tests: what arrives, parsed into events.
import { type IncomingMessage, get } from 'node:http';

export interface EventStream<T = unknown> {
  res: IncomingMessage;
  status: number;
  /** Events with a name and JSON data, in order of arrival. */
  events: Array<{ event: string; data: T }>;
  /** Everything received, comment lines included. */
  text(): string;
  /** Whether the server ended the stream. */
  ended(): boolean;
  close(): void;
}

/** Opens the stream at `url` and resolves once the answer's head is in. */
export function listenEvents<T = unknown>(url: string): Promise<EventStream<T>> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let buffer = '';
      let all = '';
      let ended = false;
      const stream: EventStream<T> = { res, status: res.statusCode ?? 0, events: [], text: () => all, ended: () => ended, close: () => res.destroy() };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        all += chunk;
        buffer += chunk;
        let at: number;
        while ((at = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) stream.events.push({ event, data: JSON.parse(data) as T });
        }
      });
      res.on('close', () => (ended = true));
      resolve(stream);
    }).on('error', reject);
  });
}
