// The store's own failures: an EdgeInferError with one of the E_STORE_* codes, so callers sort
// them like every other error. Bad arguments raise E_ARGUMENT like the rest of edge-infer.
import { EdgeInferError } from '../errors';

export type StoreErrorCode =
  | 'E_STORE_OPEN' // the file cannot be opened or is not a SQLite database
  | 'E_STORE_SCHEMA' // the file's schema is newer than this code, or a migration failed
  | 'E_STORE_CLOSED' // the store was used after close()
  | 'E_STORE_UNIT' // one unit could not be written (bad record, constraint); nothing of it was
  | 'E_STORE_WRITE'; // the batch transaction failed as a whole (I/O error, disk full)

export class StoreError extends EdgeInferError {
  declare readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'StoreError';
  }
}

/** True when `err` is a StoreError, optionally of the given code. */
export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
