// Who is logged in, the header's login/logout, and the login form that an action answered 401
// opens. The server decides who may acknowledge; the page only asks and shows.
import type { SessionView } from '../dashboard-contract.js';
import { ApiFailure, getJson, message, postJson } from './api.js';
import { el } from './dom.js';

let current: SessionView | null = null;
let area: HTMLElement | null = null;

export function session(): SessionView | null {
  return current;
}

/** Reads the session and draws the header's part of it. */
export async function loadSession(into: HTMLElement): Promise<void> {
  area = into;
  try {
    current = await getJson<SessionView>('api/session');
  } catch {
    current = null;
  }
  draw();
}

function draw(): void {
  if (!area) return;
  area.replaceChildren();
  if (current?.user) {
    const out = el('button', { type: 'button', class: 'link' }, 'Log out');
    out.addEventListener('click', () => {
      postJson<SessionView>('api/logout')
        .then((s) => (current = s))
        .catch(() => undefined)
        .finally(draw);
    });
    area.append(el('span', { class: 'user' }, `Signed in as ${current.user}`), ' ', out);
  } else if (current?.loginRequired) {
    const login = el('button', { type: 'button', class: 'link' }, 'Log in');
    login.addEventListener('click', () => void askLogin());
    area.append(login);
  }
}

let asking: Promise<boolean> | null = null;

/** Opens the login form (once, however many requests asked); resolves true once logged in, false when the user cancels. */
export function askLogin(reason = 'Log in to acknowledge and clear alerts.'): Promise<boolean> {
  asking ??= form(reason).finally(() => (asking = null));
  return asking;
}

function form(reason: string): Promise<boolean> {
  // Inside Node-RED the login is Node-RED's own: this page has no form of its own to offer.
  if (current?.host === 'node-red') return hostLogin();
  return new Promise((resolve) => {
    const user = el('input', { id: 'login-user', name: 'user', autocomplete: 'username', required: true });
    const password = el('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
    const error = el('p', { class: 'notice notice-error', role: 'alert', hidden: true });
    const cancel = el('button', { type: 'button' }, 'Cancel');
    const form = el(
      'form',
      { class: 'login', method: 'dialog' },
      el('h2', {}, 'Log in'),
      el('p', {}, reason),
      el('label', { for: 'login-user' }, 'User'),
      user,
      el('label', { for: 'login-password' }, 'Password'),
      password,
      error,
      el('div', { class: 'actions' }, el('button', { type: 'submit', class: 'primary' }, 'Log in'), cancel),
    );
    const dialog = el('dialog', { 'aria-label': 'Log in' }, form);
    document.body.append(dialog);
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      dialog.close();
      dialog.remove();
      draw();
      resolve(ok);
    };
    cancel.addEventListener('click', () => finish(false));
    dialog.addEventListener('cancel', () => finish(false));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      error.hidden = true;
      postJson<SessionView>('api/login', { user: user.value, password: password.value })
        .then((s) => {
          current = s;
          finish(true);
        })
        .catch((err: unknown) => {
          error.textContent = err instanceof ApiFailure && err.status === 401 ? 'That user and password are not known.' : message(err);
          error.hidden = false;
          password.select();
        });
    });
    dialog.showModal();
    user.focus();
  });
}

function hostLogin(): Promise<boolean> {
  return new Promise((resolve) => {
    const ok = el('button', { type: 'button', class: 'primary' }, 'OK');
    const dialog = el('dialog', { 'aria-label': 'Log in to Node-RED' }, el('form', { class: 'login', method: 'dialog' }, el('h2', {}, 'Log in to Node-RED'), el('p', {}, 'This dashboard uses the login of the Node-RED it runs in: log in to the Node-RED editor, then reload this page.'), el('div', { class: 'actions' }, ok)));
    document.body.append(dialog);
    const done = (): void => {
      dialog.close();
      dialog.remove();
      resolve(false);
    };
    ok.addEventListener('click', done);
    dialog.addEventListener('cancel', done);
    dialog.showModal();
    ok.focus();
  });
}
