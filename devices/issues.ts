// Turns schema issues into messages a person can act on: the field path as it is written in the
// JSON (`streams[0].channels[1].unit`), what was expected and what came.
import type { z } from 'zod';
import { describeValue, formatPath as pathOf, valueAt } from '../runtime/issues';

export { describeValue } from '../runtime/issues';

/**
 * `streams[0].channels[1].unit`. With a `prefix` (an argument's name) every path starts with it:
 * `faults[1].severity`, `spec.length`; without one, an empty path reads `whole`: `(profile)`.
 */
export function formatPath(path: readonly PropertyKey[], prefix = '', whole = '(profile)'): string {
  return pathOf(path, whole, prefix);
}

function expectation(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_union' && 'discriminator' in issue && issue.discriminator) {
    const options = (issue as { options?: unknown[] }).options ?? [];
    return `expected one of ${options.map((o) => JSON.stringify(o)).join('|')}`;
  }
  // zod says "Invalid input: expected number, received string"; we say what came ourselves.
  return issue.message.replace(/^(Invalid (input|option)|Too (small|big)): /, '').replace(/, received \w+$/, '');
}

/** One "field: expected ..., got ..." per issue, joined with "; "; `whole` names the document itself. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], value: unknown, prefix = '', whole = '(profile)'): string {
  return issues
    .map((issue) => {
      const field = formatPath(issue.path, prefix, whole);
      if (issue.code === 'unrecognized_keys') return `${field}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
      const got = issue.code === 'custom' ? '' : `, got ${describeValue(valueAt(value, issue.path))}`;
      return `${field}: ${expectation(issue)}${got}`;
    })
    .join('; ');
}
