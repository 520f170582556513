// Runs the edge-infer command line in this process and captures what it prints.
import { expect, vi } from 'vitest';
import { main } from '../../runtime/cli';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function cli(...args: string[]): Promise<CliResult> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  });
  try {
    const code = await main(['node', 'edge-infer', ...args]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

/** A problem is reported on exactly one line, matching `pattern`. */
export function expectOneLine(text: string, pattern: RegExp): void {
  expect(text.trimEnd().split('\n')).toHaveLength(1);
  expect(text.trimEnd()).toMatch(pattern);
}
