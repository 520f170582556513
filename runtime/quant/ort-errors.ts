// onnxruntime's own failure messages, put into ours: the quantizer's errors say in our words what
// it was doing and with which model, and give onnxruntime's reason after it, on one line.
import { EdgeInferError, type ErrorCode } from '../errors';

const NODE_STATUS = /Non-zero status code returned while running (\S+) node\. Name:'([^']*)' Status Message: (.*)/;

/**
 * onnxruntime's reason for a failure, on one line: the node it stopped at and its message,
 * without the log prefixes and the wrappers the engine put around it.
 */
export function ortReason(err: unknown): string {
  let text = err instanceof Error ? err.message : String(err);
  const node = NODE_STATUS.exec(text);
  if (node) return `${node[1]} node '${node[2]}': ${node[3].split('\n')[0].trim()}`;
  text = text.replace(/^(?:[^:\s]+: )?(?:the model failed while running|onnxruntime cannot load the model): /, '');
  const line = text.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? 'no reason given';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/**
 * An error that says what the quantizer was doing, then onnxruntime's reason. An EdgeInferError
 * of ours that did not come from onnxruntime (a bad input, a closed session) passes unchanged.
 */
export function ortFailure(what: string, err: unknown, code: ErrorCode = 'E_RUN'): EdgeInferError {
  if (err instanceof EdgeInferError && err.code !== 'E_RUN' && err.code !== 'E_MODEL_UNSUPPORTED') return err;
  return new EdgeInferError(code, `${what} (onnxruntime: ${ortReason(err)})`, { cause: err });
}
