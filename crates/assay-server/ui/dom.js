// Small DOM helpers shared by the screens. Text always goes in as text nodes, never as HTML, so item text from a
// dataset cannot inject markup.

/// h('div', {class: 'x', onclick: f}, 'text', child, [more children]) -> element
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/// Replaces the main area's content.
export function show(...children) {
  const app = document.getElementById('app');
  app.replaceChildren();
  append(app, children);
  return app;
}

/// A message box: kind is 'error', 'warn' or 'ok'.
export function message(kind, title, text) {
  return h('div', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-kind': kind },
    h('strong', {}, title), text);
}

let toastTimer = null;

/// A short note at the bottom of the screen ("Saved").
export function toast(text, kind = 'ok') {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.className = `toast ${kind}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, kind === 'error' ? 5000 : 1600);
}

/// A key cap.
export const kbd = (key) => h('kbd', {}, key);

/// 0.6234 -> "62%"
export const percent = (x) => `${Math.round(x * 100)}%`;

/// Milliseconds as "4.1 s" / "2 min".
export function duration(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}
