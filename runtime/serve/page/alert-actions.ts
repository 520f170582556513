// Acknowledging and clearing an alert: a POST that may answer 401, in which case the login form
// opens and the action is tried once more after a login.
import type { AlertView } from '../dashboard-contract.js';
import { ApiFailure, postJson } from './api.js';
import { askLogin } from './session.js';

export type AlertAction = 'ack' | 'clear';

export async function actOn(id: number, action: AlertAction): Promise<AlertView | null> {
  const url = `api/alerts/${id}/${action}`;
  try {
    return await postJson<AlertView>(url);
  } catch (err) {
    if (!(err instanceof ApiFailure) || err.status !== 401) throw err;
    if (!(await askLogin())) return null;
    return postJson<AlertView>(url);
  }
}

/** "acknowledged by anna, Dec 6, 21:04:05" from an alert, or null while nobody has. */
export function ackedText(a: AlertView, when: (ms: number) => string): string | null {
  return a.ackedBy !== null || a.ackedMs !== null ? `acknowledged by ${a.ackedBy ?? 'someone'}${a.ackedMs !== null ? `, ${when(a.ackedMs)}` : ''}` : null;
}
