// Argument parsers shared by the commands: each refuses a bad value with a message commander
// prints as one line ("option '--batch <n>' argument 'x' is invalid. expected ...").
import { InvalidArgumentError, Option } from 'commander';
import { BACKEND_CHOICES, type BackendChoice, defaultThreads } from '../engine';

export function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number${max < Number.MAX_SAFE_INTEGER ? ` from ${min} to ${max}` : ` ≥ ${min}`}`);
    }
    return n;
  };
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number > 0');
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number ≥ 0');
  return n;
}

export const backendOption = (): Option =>
  new Option('--backend <backend>', 'where to run: native where onnxruntime-node is installed, else wasm').choices([...BACKEND_CHOICES]).default('auto' as BackendChoice);

export const threadsOption = (): Option =>
  new Option('--threads <n>', 'threads per run (WASM: fixed by the first model loaded)').argParser(wholeNumber(1, 256)).default(defaultThreads());
