// Elements without a framework. Text always goes in through text nodes, so nothing read from the
// log (device names, alert messages, dead-letter reasons) is ever parsed as HTML.
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined>;

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    e.setAttribute(name, value === true ? '' : String(value));
  }
  append(e, children);
  return e;
}

export function append(parent: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** Sets an element's text only when it changed: live updates touch the DOM as little as they can. */
export function setText(e: Element, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}

/** A table in a wrapper that scrolls sideways on a phone instead of widening the page. */
export function table(caption: string, head: string[], rows: Child[][]): HTMLElement {
  return el(
    'div',
    { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': caption },
    el(
      'table',
      {},
      el('caption', {}, caption),
      el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c) => el('td', {}, c))))),
    ),
  );
}

/** A message in place of content (loading, empty, an error). */
export function notice(text: string, kind: 'info' | 'error' = 'info'): HTMLElement {
  return el('p', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : null }, text);
}
