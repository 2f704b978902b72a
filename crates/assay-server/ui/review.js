// The review screen: one item at a time, lowest machine confidence first, answered by keyboard or mouse.
//
// Keys: the option's key (1..9, 0; for pairs 1, 2, t) answers; with several labels allowed (multi-label) the
// number keys toggle and Enter sends. s skips, u takes back the last answer, g shows or hides the guidelines.
// The time an item was on screen (minus time the tab was hidden) is sent with the answer.

import { api, ApiError } from './api.js';
import { h, show, message, toast, kbd, percent } from './dom.js';

/// The state of the screen that is up, or null.
let screen = null;

/// Leaves the review screen (route change): the key handler goes away with it.
export function stopReview() {
  if (screen) {
    document.removeEventListener('keydown', screen.onKey);
    document.removeEventListener('visibilitychange', screen.onVisibility);
  }
  screen = null;
}

function startScreen(projectId) {
  stopReview();
  const s = {
    projectId,
    assignment: null,
    progress: null,
    chosen: new Set(), // multi-label: the options toggled on
    shownAt: 0,
    hiddenMs: 0,
    hiddenSince: null,
    busy: false,
    notice: null, // a message shown above the item (e.g. after an undo)
    last: null, // {assignment_id, label}: the last answer sent from this screen
  };
  s.onKey = (event) => onKey(s, event);
  s.onVisibility = () => {
    if (document.hidden) s.hiddenSince = performance.now();
    else if (s.hiddenSince !== null) {
      s.hiddenMs += performance.now() - s.hiddenSince;
      s.hiddenSince = null;
    }
  };
  document.addEventListener('keydown', s.onKey);
  document.addEventListener('visibilitychange', s.onVisibility);
  screen = s;
  return s;
}

/// `#/review/{project}`: the caller's next item in a project.
export async function reviewProject(projectId) {
  const s = startScreen(projectId);
  show(h('p', { class: 'empty' }, 'Loading the next item…'));
  await loadNext(s);
}

/// `#/assignment/{id}`: one assignment by its id (the caller's own only; the API answers 403 otherwise).
export async function reviewAssignment(assignmentId) {
  const s = startScreen(null);
  show(h('p', { class: 'empty' }, 'Loading the item…'));
  try {
    const a = await api.assignment(assignmentId);
    s.projectId = a.project_id;
    await refreshProgress(s);
    render(s, a);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    stopReview();
    if (err.status === 403) {
      show(h('h1', {}, 'Not your item'),
        message('error', 'This item belongs to another annotator',
          'Each item in a queue is assigned to one person, and this one is someone else\'s, so you cannot open or answer it. Your own items are in your queue.'),
        h('p', {}, h('a', { href: '#/', id: 'back-to-queue' }, 'Back to my queue')));
    } else if (err.status === 404) {
      show(h('h1', {}, 'No such item'),
        message('error', 'This item does not exist', 'The link may be wrong, or the item was removed.'),
        h('p', {}, h('a', { href: '#/' }, 'Back to my queue')));
    } else {
      throw err;
    }
  }
}

async function refreshProgress(s) {
  try {
    const { projects } = await api.projects();
    const p = projects.find((x) => String(x.id) === String(s.projectId));
    if (p) s.progress = { name: p.name, answered: p.mine ? p.mine.answered : 0, open: p.mine ? p.mine.open : 0 };
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    // Progress is a nicety: the item can still be answered without it.
  }
}

async function loadNext(s, notice = null) {
  const [a] = await Promise.all([api.next(s.projectId), refreshProgress(s)]);
  if (screen !== s) return;
  if (!a) return renderDone(s);
  s.notice = notice;
  render(s, a);
}

function renderDone(s) {
  s.assignment = null;
  s.busy = false;
  const p = s.progress;
  show(
    header(s),
    h('div', { class: 'panel empty', id: 'done' },
      h('h2', {}, 'Nothing left for you here'),
      h('p', {}, p ? `You answered ${p.answered} item${p.answered === 1 ? '' : 's'} in ${p.name}. Thank you.` : 'Thank you.'),
      h('p', {}, 'Press ', kbd('u'), ' to take back your last answer, or go ', h('a', { href: '#/' }, 'back to your queue'), '.')));
}

function header(s) {
  const p = s.progress;
  const a = s.assignment;
  const total = p ? p.answered + p.open : 0;
  const bar = h('div', {});
  if (total > 0) bar.style.width = `${(100 * p.answered) / total}%`;
  return h('div', { class: 'review-head' },
    h('h1', { class: 'title' }, p ? p.name : (a ? a.project : 'Review'),
      a ? h('small', {}, ` · item ${a.assignment_id}`) : null),
    p ? h('div', { class: 'progress', id: 'progress', title: 'answered by you / still open for you' },
      h('span', { id: 'answered-count' }, `${p.answered} answered`),
      h('div', { class: 'bar' }, bar),
      h('span', { id: 'remaining-count' }, `${p.open} remaining`)) : null);
}

function optionFor(a, value) {
  return a.options.find((o) => o.value === value);
}

function optionLabel(a, value) {
  if (Array.isArray(value)) return value.length ? value.map((v) => optionLabel(a, v)).join(', ') : '(none)';
  const o = optionFor(a, value);
  return o ? o.label : String(value);
}

function keyName(key) {
  return key === 't' ? 't' : key;
}

function fieldsView(a) {
  const byName = Object.fromEntries(a.fields.map((f) => [f.name, f]));
  if (a.kind === 'compare' && byName.response_1 && byName.response_2) {
    const response = (f, key) => h('div', { class: 'panel', 'data-field': f.name },
      h('h3', {}, f.label, ' ', kbd(key)),
      h('p', { class: 'response' }, f.text));
    return [
      byName.context ? h('div', { class: 'panel', 'data-field': 'context' },
        h('h3', {}, byName.context.label), h('div', { class: 'pair-context' }, byName.context.text)) : null,
      h('div', { class: 'pair' }, response(byName.response_1, '1'), response(byName.response_2, '2')),
    ];
  }
  return a.fields.map((f) => h('div', { class: 'panel', 'data-field': f.name },
    h('h3', {}, f.label), h('div', { class: 'item-text' }, f.text)));
}

function suggestionView(a) {
  const sug = a.suggestion;
  if (!sug) {
    return h('div', { class: 'panel suggestion', id: 'suggestion' },
      h('h3', {}, 'Machine suggestion'),
      h('p', { class: 'hidden-note' }, 'None shown for this item: judge it on its own.'));
  }
  const bar = h('div', {});
  bar.style.width = percent(sug.confidence);
  return h('div', { class: 'panel suggestion', id: 'suggestion' },
    h('h3', {}, 'Machine suggestion'),
    h('div', { class: 'label', id: 'suggested-label' }, optionLabel(a, sug.value)),
    h('div', { class: `confidence${sug.confidence < 0.7 ? ' low' : ''}`, title: 'calibrated confidence' },
      h('span', {}, 'confidence'), h('div', { class: 'bar' }, bar), h('span', { id: 'suggested-confidence' }, percent(sug.confidence))),
    h('p', { class: 'hint' }, 'The machine is unsure about items like this one: check it, do not just copy it.'));
}

function choicesView(s, a) {
  const answered = a.status === 'answered';
  const answer = a.answer;
  const isChosen = (o) => (Array.isArray(answer) ? answer.includes(o.value) : answer === o.value) || s.chosen.has(o.value);
  const buttons = a.options.map((o) => {
    const cls = ['choice'];
    if (a.suggestion && (Array.isArray(a.suggestion.value) ? a.suggestion.value.includes(o.value) : a.suggestion.value === o.value)) cls.push('suggested');
    if (isChosen(o)) cls.push('chosen');
    return h('button', {
      type: 'button', class: cls.join(' '), 'data-value': o.value, disabled: answered || s.busy,
      title: o.description || o.label,
      onclick: () => choose(s, o),
    }, o.key ? kbd(keyName(o.key)) : null, h('span', {}, o.label),
    cls.includes('suggested') ? h('span', { class: 'tag' }, 'machine') : null);
  });
  const keys = h('div', { class: 'keys' },
    a.multiple ? h('span', {}, kbd('Enter'), ' send the ticked labels') : null,
    h('span', {}, kbd('s'), ' ', h('button', { type: 'button', class: 'link', id: 'skip', disabled: answered || s.busy, onclick: () => skip(s) }, 'skip')),
    h('span', {}, kbd('u'), ' ', h('button', { type: 'button', class: 'link', id: 'undo', disabled: s.busy, onclick: () => undo(s) }, 'undo last answer')),
    h('span', {}, kbd('g'), ' ', h('button', { type: 'button', class: 'link', id: 'toggle-guidelines', onclick: toggleGuidelines }, 'guidelines')));
  const descriptions = a.options.some((o) => o.description)
    ? h('ul', { class: 'hint' }, a.options.filter((o) => o.description).map((o) => h('li', {}, h('strong', {}, o.label), ': ', o.description)))
    : null;
  return h('div', { class: 'panel', id: 'answer-panel' },
    h('h3', {}, answered ? 'Your answer' : (a.multiple ? 'Tick every label that applies' : 'Your answer')),
    answered ? message('ok', `You answered: ${optionLabel(a, answer)}`, 'Press u to take back your last answer.') : null,
    h('div', { class: 'choices', id: 'choices' }, buttons),
    a.multiple && !answered ? h('p', {}, h('button', { type: 'button', class: 'primary', id: 'send', disabled: s.busy, onclick: () => sendMulti(s) }, 'Send')) : null,
    keys,
    descriptions);
}

function render(s, a) {
  s.assignment = a;
  s.chosen = new Set();
  s.busy = false;
  s.shownAt = performance.now();
  s.hiddenMs = 0;
  s.hiddenSince = document.hidden ? performance.now() : null;
  draw(s);
}

/// Redraws the screen for the current state (after a toggle or while busy).
function draw(s) {
  const a = s.assignment;
  const guidelinesOpen = localStorage.getItem('assay.guidelines') !== 'closed';
  show(
    header(s),
    s.notice ? message(s.notice.kind, s.notice.title, s.notice.text) : null,
    h('div', { id: 'error-slot' }),
    h('div', { class: 'review', id: 'review', 'data-assignment': a.assignment_id, 'data-status': a.status, 'data-kind': a.kind },
      h('div', {}, fieldsView(a), choicesView(s, a)),
      h('aside', {},
        suggestionView(a),
        h('details', { class: 'panel', id: 'guidelines', open: guidelinesOpen,
          ontoggle: (e) => localStorage.setItem('assay.guidelines', e.target.open ? 'open' : 'closed') },
          h('summary', {}, h('strong', {}, 'Guidelines')),
          h('div', { class: 'guidelines' }, a.guidelines || 'No guidelines for this task.')),
        s.last ? h('div', { class: 'panel hint', id: 'last' }, 'Last saved: ', h('strong', {}, s.last.label), ` (item ${s.last.assignment_id})`) : null)));
}

function showError(title, text) {
  const slot = document.getElementById('error-slot');
  if (slot) slot.replaceChildren(message('error', title, text));
  toast(title, 'error');
}

/// What to tell a person about a failed answer/skip/undo.
function explain(err) {
  if (!(err instanceof ApiError)) return ['Something went wrong', String(err)];
  switch (err.status) {
    case 0: return ['Not saved: no connection', err.message];
    case 403: return ['Not allowed', `This item is not yours to answer (${err.message}).`];
    case 409: return ['Already done', 'This item was already answered, skipped or taken back (perhaps in another tab). Loading your next item.'];
    case 422: return ['Not accepted', err.message];
    default: return ['Not saved', err.message];
  }
}

async function act(s, work) {
  if (s.busy) return;
  s.busy = true;
  try {
    await work();
  } catch (err) {
    if (screen !== s) return;
    s.busy = false;
    if (err instanceof ApiError && err.status === 401) {
      window.dispatchEvent(new Event('assay:session-ended'));
      return;
    }
    const [title, text] = explain(err);
    if (err instanceof ApiError && err.status === 409) {
      toast(title, 'error');
      await loadNext(s, { kind: 'warn', title, text }).catch(() => showError(title, text));
      return;
    }
    draw(s);
    showError(title, text);
  }
}

function elapsedMs(s) {
  const hidden = s.hiddenMs + (s.hiddenSince !== null ? performance.now() - s.hiddenSince : 0);
  return Math.max(0, Math.round(performance.now() - s.shownAt - hidden));
}

function send(s, value) {
  const a = s.assignment;
  if (!a || a.status !== 'claimed') return;
  return act(s, async () => {
    const duration = elapsedMs(s);
    draw(s); // buttons disabled while saving
    await api.answer(a.assignment_id, { value, duration_ms: duration, suggestion_shown: Boolean(a.suggestion) });
    if (screen !== s) return;
    const label = optionLabel(a, value);
    s.last = { assignment_id: a.assignment_id, label };
    toast(`Saved: ${label}`);
    s.projectId = a.project_id;
    await loadNext(s);
  });
}

function choose(s, option) {
  const a = s.assignment;
  if (!a || a.status !== 'claimed' || s.busy) return;
  if (a.multiple) {
    if (s.chosen.has(option.value)) s.chosen.delete(option.value);
    else s.chosen.add(option.value);
    draw(s);
    return;
  }
  return send(s, option.value);
}

function sendMulti(s) {
  const a = s.assignment;
  if (!a || !a.multiple) return;
  return send(s, a.options.map((o) => o.value).filter((v) => s.chosen.has(v)));
}

function skip(s) {
  const a = s.assignment;
  if (!a || a.status !== 'claimed') return;
  return act(s, async () => {
    draw(s);
    await api.skip(a.assignment_id);
    if (screen !== s) return;
    toast('Skipped: someone else will get this item');
    await loadNext(s);
  });
}

function undo(s) {
  return act(s, async () => {
    let undone;
    try {
      undone = await api.undo();
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        s.busy = false;
        toast('Nothing to undo', 'error');
        return;
      }
      throw err;
    }
    const a = await api.assignment(undone.assignment_id);
    if (screen !== s) return;
    s.projectId = a.project_id;
    s.last = null;
    await refreshProgress(s);
    toast('Undone: answer this item again');
    s.notice = { kind: 'warn', title: 'Your last answer was taken back', text: 'Answer this item again (or skip it).' };
    render(s, a);
  });
}

function toggleGuidelines() {
  const d = document.getElementById('guidelines');
  if (d) d.open = !d.open;
}

function onKey(s, event) {
  // A held key repeats: it must not answer the items after this one too.
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  const target = event.target;
  if (target && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName))) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const a = s.assignment;
  if (key === 'u') { event.preventDefault(); undo(s); return; }
  if (key === 'g') { toggleGuidelines(); return; }
  if (!a) return;
  if (key === 's') { event.preventDefault(); skip(s); return; }
  if (key === 'Enter' && a.multiple) { event.preventDefault(); sendMulti(s); return; }
  const option = a.options.find((o) => o.key !== null && o.key !== undefined && String(o.key).toLowerCase() === key);
  if (option) {
    event.preventDefault();
    choose(s, option);
  }
}
