/**
 * Every error edge-infer raises on purpose carries a machine-readable `code` beside a message
 * that names what is wrong and where, so callers (CLI, Node-RED, the pipeline's dead-letter
 * table) can both show it and sort it.
 */
export type ErrorCode =
  | 'E_MODEL_FILE' // the model file cannot be read
  | 'E_MODEL_CORRUPT' // not an ONNX model, or truncated
  | 'E_MODEL_UNSUPPORTED' // valid ONNX that the runtime cannot run
  | 'E_CARD_INVALID' // model card fails its schema or disagrees with the model
  | 'E_CARD_MISSING' // no card next to the model
  | 'E_INPUT_MISSING' // a declared model input was not given
  | 'E_INPUT_UNKNOWN' // an input was given that the model does not declare
  | 'E_INPUT_DTYPE' // wrong element type
  | 'E_INPUT_SHAPE' // wrong rank or dimension
  | 'E_INPUT_VALUE' // NaN or infinite value
  | 'E_BACKEND' // backend not available or failed to start
  | 'E_SESSION_CLOSED' // session used after dispose
  | 'E_RUN' // the runtime failed while running the model
  | 'E_ARGUMENT' // bad argument at a public function or the CLI
  | 'E_REGISTRY' // no such model or variant
  | 'E_DEVICE_PROFILE' // a device profile fails its schema
  | 'E_CANCELLED' // the user stopped a long job (calibration)
  | 'E_QUANT_CHECK' // a quantized variant agrees with fp32 less than its bound asks; it was not written
  | 'E_STORE_OPEN' // the database file cannot be opened or is not SQLite
  | 'E_STORE_SCHEMA' // the database schema is newer than this code, or a migration failed
  | 'E_STORE_CLOSED' // the store was used after close()
  | 'E_STORE_UNIT' // one commit unit could not be written; nothing of it was
  | 'E_STORE_WRITE' // a whole batch transaction failed (I/O error, disk full)
  | 'E_DEVICE_LIMIT' // a pipeline already follows as many devices as it may
  | 'E_POISON' // a message was being processed each time the gateway stopped unexpectedly
  | 'E_INTERNAL' // an unexpected error inside a stage, caught so the gateway keeps running
  | 'E_QUERY_TIMEOUT' // a read of the log ran past its bound and was stopped
  | 'E_BUSY' // too many reads already wait; ask again later
  | 'E_NOT_FOUND' // nothing by that name or id (an alert to acknowledge); the dashboard answers 404
  | 'E_CONFLICT' // the request clashes with what runs now (a teach-in already running); the dashboard answers 409
  | 'E_UPDATE' // a model update was refused (bad payload, signature, card, agreement) or rolled back
  | 'E_BROKER'; // the broker connection broke MQTT's framing, or was dropped so the broker redelivers

export class EdgeInferError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EdgeInferError';
    this.code = code;
  }
}

/** True when `err` is an EdgeInferError, optionally of the given code. */
export function isEdgeInferError(err: unknown, code?: ErrorCode): err is EdgeInferError {
  return err instanceof EdgeInferError && (code === undefined || err.code === code);
}
