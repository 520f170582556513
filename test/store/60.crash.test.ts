// Kills a child process that commits units in a loop with SIGKILL at random moments, then checks
// that every unit whose commit promise had resolved is in the database, that no unit is there in
// part, and that the file passes integrity_check. Each sync mode must survive a process crash.
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ResultStore, type SyncMode } from '../../runtime/store';
import { dbPath } from './helpers';

const KILLS = 12;
const CHILD = path.join(__dirname, 'crash-child.ts');
const TSX = require.resolve('tsx/cli');

interface Run {
  acknowledged: number[];
  stderr: string;
}

/** Starts the child; kills it `delayMs` after its first acknowledged unit. */
function runAndKill(file: string, sync: SyncMode, firstId: number, delayMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    // tsx's CLI runs the script in a process of its own, which a SIGKILL to the CLI would not
    // reach: the child leads a process group and the whole group is killed at once.
    const child: ChildProcess = spawn(process.execPath, [TSX, CHILD, file, sync, String(firstId)], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const kill = (): void => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const acknowledged: number[] = [];
    let stdout = '';
    let stderr = '';
    let killing = false;
    const guard = setTimeout(kill, 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const lines = stdout.split('\n');
      stdout = lines.pop()!; // a line cut by the kill is not an acknowledgement
      for (const line of lines) if (/^\d+$/.test(line)) acknowledged.push(Number(line));
      if (!killing && acknowledged.length > 0) {
        killing = true;
        setTimeout(kill, delayMs);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL' || !killing) reject(new Error(`child ended by itself (code ${code}, signal ${signal}): ${stderr}`));
      else resolve({ acknowledged, stderr });
    });
  });
}

/** What the file holds, unit by unit, after the crash (opened the way a restart would). */
function inspect(file: string): { integrity: string; units: Map<number, { results: number; outbox: number; windows: number; inbound: number }> } {
  const db = new Database(file);
  try {
    const integrity = db.pragma('integrity_check', { simple: true }) as string;
    const units = new Map<number, { results: number; outbox: number; windows: number; inbound: number }>();
    const at = (id: number) => {
      let u = units.get(id);
      if (!u) units.set(id, (u = { results: 0, outbox: 0, windows: 0, inbound: 0 }));
      return u;
    };
    for (const key of db.prepare('SELECT key FROM inbound').pluck().all() as string[]) at(Number(key.slice(2))).inbound++;
    for (const t of db.prepare('SELECT time_ms FROM results').pluck().all() as number[]) at(t).results++;
    for (const p of db.prepare('SELECT payload FROM outbox').pluck().all() as string[]) at((JSON.parse(p) as { id: number }).id).outbox++;
    for (const t of db.prepare('SELECT time_ms FROM windows').pluck().all() as number[]) at(t).windows++;
    return { integrity, units };
  } finally {
    db.close();
  }
}

describe('crash safety', () => {
  it(`should keep every acknowledged unit, whole, through ${KILLS} SIGKILLs in every sync mode`, async () => {
    const file = dbPath('crash.db');
    await ResultStore.open({ path: file }).close();
    const modes: SyncMode[] = ['normal', 'full', 'off'];
    let acknowledgedTotal = 0;
    const killedAfter: number[] = [];
    for (let round = 0; round < KILLS; round++) {
      const firstId = (round + 1) * 1_000_000;
      const delayMs = Math.floor(Math.random() * 400);
      const { acknowledged } = await runAndKill(file, modes[round % modes.length], firstId, delayMs);
      killedAfter.push(acknowledged.length);
      acknowledgedTotal += acknowledged.length;

      const { integrity, units } = inspect(file);
      expect(integrity).toBe('ok');
      const missing = acknowledged.filter((id) => !units.has(id));
      expect(missing, `round ${round}: acknowledged units missing after the kill`).toEqual([]);
      const partial = [...units].filter(([, u]) => u.inbound !== 1 || u.results !== 2 || u.outbox !== 1 || u.windows !== 1);
      expect(partial, `round ${round}: units written in part`).toEqual([]);
    }
    expect(acknowledgedTotal).toBeGreaterThan(KILLS);

    // The store opens the crashed file and carries on.
    const store = ResultStore.open({ path: file });
    expect(store.counts().inbound).toBeGreaterThanOrEqual(acknowledgedTotal);
    await store.close();
  }, 120_000);
});
