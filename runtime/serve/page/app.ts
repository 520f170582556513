// The dashboard page: the header (navigation, session, theme) and one view at a time by the
// address's hash: #/ overview, #/machine/<device>, #/alerts, #/models, #/health. A view's live
// feed and timers end when another replaces it.
import { AlertsPage } from './alerts.js';
import { HealthPage } from './health.js';
import { MachinePage } from './machine.js';
import { ModelsPage } from './models.js';
import { OverviewPage } from './overview.js';
import { onLoginNeeded } from './api.js';
import { askLogin, loadSession } from './session.js';
import { setupTheme } from './theme.js';
import type { View } from './types.js';

const main = document.getElementById('main')!;
let current: View | null = null;

function route(): void {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = hash.split('?');
  const params = new URLSearchParams(query);
  current?.close();
  const machine = /^\/machine\/(.+)$/.exec(path);
  let section = 'overview';
  if (machine) {
    section = 'machine';
    current = new MachinePage(decodeURIComponent(machine[1]), params.get('range'));
  } else if (path === '/alerts') {
    section = 'alerts';
    current = new AlertsPage();
  } else if (path === '/models') {
    section = 'models';
    current = new ModelsPage();
  } else if (path === '/health') {
    section = 'health';
    current = new HealthPage();
  } else current = new OverviewPage();
  main.replaceChildren(current.element);
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('pagehide', () => current?.close());
// Charts take their colours when drawn first: a theme change draws the view again.
setupTheme(document.getElementById('theme') as HTMLButtonElement, route);
// A dashboard with users answers every read 401 until a login: after one, the view starts again
// (its live feed too, which a 401 had closed).
onLoginNeeded(() => {
  void askLogin('Log in to see the dashboard.').then((ok) => {
    if (ok) route();
  });
});
void loadSession(document.getElementById('session')!);
route();
