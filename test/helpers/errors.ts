// What a call threw, for tests that look at an error's code, message and fields.
import { expect } from 'vitest';
import { EdgeInferError } from '../../runtime/errors';

/** The EdgeInferError that `fn` throws; fails the test if it throws nothing or something else. */
export function thrown(fn: () => unknown): EdgeInferError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeInferError);
    return err as EdgeInferError;
  }
  throw new Error('expected an error');
}

/** Whatever `fn` throws or rejects with, or undefined when it succeeds. */
export async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return undefined;
}
