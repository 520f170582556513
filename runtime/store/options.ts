// StoreOptions checked at the boundary, with defaults filled in. Errors name the field.
import { EdgeInferError } from '../errors';
import type { JournalMode, StoreOptions, SyncMode } from './types';

export interface ResolvedOptions {
  path: string;
  sync: SyncMode;
  batchRows: number;
  batchMs: number;
  journal: JournalMode;
  retention: { maxAgeDays: number | null; maxBytes: number | null; inboundMaxAgeS: number | null; everyMs: number; minuteRollupDays: number; hourRollupDays: number };
  outboxLimit: number;
  onError: (err: Error) => void;
}

export const DEFAULTS = {
  sync: 'normal' as SyncMode,
  batchRows: 1000,
  batchMs: 20,
  journal: 'always' as JournalMode,
  retentionEveryMs: 60_000,
  minuteRollupDays: 90,
  hourRollupDays: 365,
  outboxLimit: 1_000_000,
};

/** Smallest maxBytes accepted: the empty schema alone takes about 100 KiB. */
export const MIN_MAX_BYTES = 256 * 1024;

const SYNC_MODES: readonly SyncMode[] = ['full', 'normal', 'off'];
const JOURNAL_MODES: readonly JournalMode[] = ['always', 'when-needed'];
const KNOWN = new Set(['path', 'sync', 'batchRows', 'batchMs', 'journal', 'retention', 'outboxLimit', 'onError']);
const KNOWN_RETENTION = new Set(['maxAgeDays', 'maxBytes', 'inboundMaxAgeS', 'everyMs', 'minuteRollupDays', 'hourRollupDays']);

function bad(field: string, expected: string, got: unknown): EdgeInferError {
  const shown = typeof got === 'string' ? `'${got}'` : typeof got === 'object' && got !== null ? JSON.stringify(got) : String(got);
  return new EdgeInferError('E_ARGUMENT', `store option ${field}: expected ${expected}, got ${shown}`);
}

function wholeNumber(field: string, value: unknown, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw bad(field, `a whole number ≥ ${min.toLocaleString('en-US')}`, value);
  return value;
}

function positive(field: string, value: unknown): number | null {
  if (value === undefined) return null;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw bad(field, 'a number > 0', value);
  return value;
}

export function resolveOptions(options: unknown): ResolvedOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new EdgeInferError('E_ARGUMENT', `store options: expected an object such as { path: 'data/log.db' }, got ${options === null ? 'null' : typeof options}`);
  }
  const o = options as StoreOptions & Record<string, unknown>;
  for (const key of Object.keys(o)) if (!KNOWN.has(key)) throw new EdgeInferError('E_ARGUMENT', `store option ${key}: unknown option; known are ${[...KNOWN].join(', ')}`);

  if (typeof o.path !== 'string' || o.path.trim() === '') throw bad('path', 'a database file path', o.path);
  if (o.path === ':memory:' || o.path.startsWith('file:')) throw bad('path', 'a file path (in-memory and URI databases are not supported: the log must survive a restart)', o.path);
  if (o.sync !== undefined && !SYNC_MODES.includes(o.sync)) throw bad('sync', `one of ${SYNC_MODES.join(', ')}`, o.sync);
  if (o.journal !== undefined && !JOURNAL_MODES.includes(o.journal)) throw bad('journal', `one of ${JOURNAL_MODES.join(', ')}`, o.journal);
  if (o.onError !== undefined && typeof o.onError !== 'function') throw bad('onError', 'a function', typeof o.onError);

  const r = o.retention;
  if (r !== undefined && (typeof r !== 'object' || r === null || Array.isArray(r))) throw bad('retention', '{ maxAgeDays?, maxBytes?, inboundMaxAgeS?, everyMs?, minuteRollupDays?, hourRollupDays? }', r);
  for (const key of Object.keys(r ?? {})) if (!KNOWN_RETENTION.has(key)) throw new EdgeInferError('E_ARGUMENT', `store option retention.${key}: unknown option; known are ${[...KNOWN_RETENTION].join(', ')}`);
  const maxBytes = r?.maxBytes === undefined ? null : wholeNumber('retention.maxBytes', r.maxBytes, MIN_MAX_BYTES, 0);

  return {
    path: o.path,
    sync: o.sync ?? DEFAULTS.sync,
    batchRows: wholeNumber('batchRows', o.batchRows, 1, DEFAULTS.batchRows),
    batchMs: wholeNumber('batchMs', o.batchMs, 0, DEFAULTS.batchMs),
    journal: o.journal ?? DEFAULTS.journal,
    retention: {
      maxAgeDays: positive('retention.maxAgeDays', r?.maxAgeDays),
      maxBytes,
      inboundMaxAgeS: positive('retention.inboundMaxAgeS', r?.inboundMaxAgeS),
      everyMs: wholeNumber('retention.everyMs', r?.everyMs, 0, DEFAULTS.retentionEveryMs),
      minuteRollupDays: positive('retention.minuteRollupDays', r?.minuteRollupDays) ?? DEFAULTS.minuteRollupDays,
      hourRollupDays: positive('retention.hourRollupDays', r?.hourRollupDays) ?? DEFAULTS.hourRollupDays,
    },
    outboxLimit: wholeNumber('outboxLimit', o.outboxLimit, 1, DEFAULTS.outboxLimit),
    onError: o.onError ?? ((err) => process.emitWarning(err)),
  };
}
