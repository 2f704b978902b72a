// The review UI's entry point: the session, the hash router, the login and home screens.
//
// Routes:  #/login   #/ (projects and my progress)   #/review/{project}   #/assignment/{id}
//          #/admin   #/admin/project/{id}

import { api, ApiError } from './api.js';
import { h, show, message } from './dom.js';
import { reviewProject, reviewAssignment, stopReview } from './review.js';
import { adminHome, adminProject } from './admin.js';

export const session = { me: null };

function setSession(me) {
  session.me = me;
  const who = document.getElementById('who');
  const logout = document.getElementById('logout');
  const nav = document.getElementById('nav');
  nav.replaceChildren();
  if (!me) {
    who.textContent = '';
    logout.hidden = true;
    return;
  }
  who.textContent = `${me.annotator.name} (${me.role})`;
  logout.hidden = false;
  nav.append(h('a', { href: '#/' }, 'My queue'));
  if (me.role === 'admin') nav.append(h('a', { href: '#/admin' }, 'Admin'));
  markActive();
}

function markActive() {
  const route = location.hash.startsWith('#/admin') ? '#/admin' : '#/';
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.getAttribute('href') === route);
  }
}

function loginScreen(note) {
  const input = h('input', {
    type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true,
    placeholder: 'the token you were given', 'aria-label': 'Token',
  });
  const status = h('div', { id: 'login-status' }, note ? message('warn', note.title, note.text) : null);
  const button = h('button', { class: 'primary', type: 'submit' }, 'Log in');
  const form = h('form', { class: 'panel login', id: 'login' },
    h('h1', {}, 'Log in'),
    h('p', { class: 'hint' }, 'Paste the token you got when your account was created (assay annotator add, or from an admin).'),
    status,
    h('label', { class: 'field' }, h('span', {}, 'Token'), input),
    button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    button.disabled = true;
    try {
      const me = await api.login(token);
      setSession(me);
      location.hash = '#/';
      route();
    } catch (err) {
      const text = err.status === 401
        ? 'That token is not valid. Check that you pasted all of it; ask an admin for a new one if it was lost.'
        : err.message;
      status.replaceChildren(message('error', 'Could not log in', text));
      button.disabled = false;
      input.select();
    }
  });
  show(form);
  input.focus();
}

async function home() {
  show(h('p', { class: 'empty' }, 'Loading your projects…'));
  const { projects } = await api.projects();
  const rows = projects.map((p) => {
    const remaining = p.mine ? p.mine.open : 0;
    const answered = p.mine ? p.mine.answered : 0;
    const open = () => { location.hash = `#/review/${p.id}`; };
    return h('tr', { class: 'clickable', 'data-project': p.id, onclick: open },
      h('td', {}, h('a', { href: `#/review/${p.id}` }, p.name)),
      h('td', {}, p.kind),
      h('td', { class: 'num' }, answered),
      h('td', { class: 'num' }, remaining),
      h('td', {}, remaining > 0
        ? h('button', { class: 'primary', type: 'button', onclick: (e) => { e.stopPropagation(); open(); } }, 'Start reviewing')
        : h('span', { class: 'badge done' }, 'nothing left for you')));
  });
  show(
    h('h1', {}, 'My queue'),
    h('p', { class: 'hint' }, 'Items come lowest machine confidence first. In the review screen, answer with the keyboard: number keys for labels, ',
      h('kbd', {}, 's'), ' to skip, ', h('kbd', {}, 'u'), ' to undo your last answer.'),
    projects.length === 0
      ? h('div', { class: 'panel empty' }, 'No projects yet. An admin creates them (assay project create, or the Admin page).')
      : h('div', { class: 'panel' }, h('table', { id: 'projects' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Project'), h('th', {}, 'Kind'), h('th', { class: 'num' }, 'Answered by me'),
          h('th', { class: 'num' }, 'Remaining for me'), h('th', {}, ''))),
        h('tbody', {}, rows))));
}

async function route() {
  stopReview();
  markActive();
  const hash = location.hash || '#/';
  if (!session.me && hash !== '#/login') {
    try {
      setSession(await api.me());
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return loginScreen();
      return show(message('error', 'Cannot start', err.message));
    }
  }
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  try {
    if (parts[0] === 'login') return loginScreen();
    if (parts.length === 0) return await home();
    if (parts[0] === 'review' && parts[1]) return await reviewProject(parts[1]);
    if (parts[0] === 'assignment' && parts[1]) return await reviewAssignment(parts[1]);
    if (parts[0] === 'admin' && parts[1] === 'project' && parts[2]) return await adminProject(parts[2]);
    if (parts[0] === 'admin') return await adminHome();
    show(message('error', 'No such page', 'This address does not lead anywhere.'), h('p', {}, h('a', { href: '#/' }, 'Back to my queue')));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      setSession(null);
      return loginScreen({ title: 'Logged out', text: 'Your session ended. Log in again with your token.' });
    }
    show(message('error', 'Something went wrong', err.message), h('p', {}, h('a', { href: '#/' }, 'Back to my queue')));
  }
}

// A screen found the session gone (401 in the middle of work).
window.addEventListener('assay:session-ended', () => {
  stopReview();
  setSession(null);
  loginScreen({ title: 'Logged out', text: 'Your session ended. Log in again with your token.' });
});

document.getElementById('logout').addEventListener('click', async () => {
  stopReview();
  try { await api.logout(); } catch { /* the session is gone either way */ }
  setSession(null);
  location.hash = '#/login';
});

window.addEventListener('hashchange', route);
route();
