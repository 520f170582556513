// Dark and light: the browser's preference unless the user chose one with the toggle, which is
// remembered. The stylesheet follows prefers-color-scheme by itself, so there is no flash before
// this module runs; data-theme on <html> overrides it.
const KEY = 'edge-infer-theme';
type Theme = 'dark' | 'light';

const media = window.matchMedia('(prefers-color-scheme: dark)');

function stored(): Theme | null {
  try {
    const v = localStorage.getItem(KEY);
    return v === 'dark' || v === 'light' ? v : null;
  } catch {
    return null;
  }
}

export function theme(): Theme {
  return stored() ?? (media.matches ? 'dark' : 'light');
}

/** Wires the toggle button; `changed` runs after each change (charts take their colours at creation). */
export function setupTheme(button: HTMLButtonElement, changed: () => void): void {
  const show = (): void => {
    const t = theme();
    document.documentElement.dataset.theme = t;
    button.setAttribute('aria-pressed', String(t === 'dark'));
    button.textContent = t === 'dark' ? 'Light theme' : 'Dark theme';
  };
  show();
  button.addEventListener('click', () => {
    try {
      localStorage.setItem(KEY, theme() === 'dark' ? 'light' : 'dark');
    } catch {
      // Storage refused (private mode): the switch holds for this page only.
      document.documentElement.dataset.theme = theme() === 'dark' ? 'light' : 'dark';
    }
    show();
    changed();
  });
  media.addEventListener('change', () => {
    if (stored() !== null) return;
    show();
    changed();
  });
}

/** A colour of the current theme, from the stylesheet's custom properties. */
export function colour(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}
