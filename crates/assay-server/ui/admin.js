// Admin screens: annotators (add one, show its token once), projects (create from a task, see progress).

import { api, ApiError } from './api.js';
import { h, show, message, toast, duration, percent } from './dom.js';

function errorBox(title, err) {
  if (err instanceof ApiError && err.status === 403) {
    return message('error', title, 'Only admins can do this. Log in with an admin token.');
  }
  const text = err instanceof ApiError ? err.message : String(err);
  // Parser messages name the line and key: keep their layout.
  return message('error', title, text.includes('\n') ? h('pre', { class: 'mono' }, text) : text);
}

function annotatorsPanel(annotators, reload) {
  const name = h('input', { type: 'text', id: 'new-name', required: true, maxlength: 64, placeholder: 'alice',
    pattern: '[A-Za-z0-9._@\\-]+', title: 'letters, digits, . _ - @' });
  const role = h('select', { id: 'new-role' }, h('option', { value: 'annotator' }, 'annotator'), h('option', { value: 'admin' }, 'admin'));
  const skills = h('input', { type: 'text', id: 'new-skills', placeholder: 'medical, legal (optional)' });
  const result = h('div', { id: 'new-annotator-result' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Add annotator');
  const form = h('form', { id: 'add-annotator' },
    h('div', { class: 'row' },
      h('label', { class: 'field' }, h('span', {}, 'Name'), name),
      h('label', { class: 'field' }, h('span', {}, 'Role'), role),
      h('label', { class: 'field' }, h('span', {}, 'Skills (comma-separated)'), skills)),
    submit, result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const body = {
        name: name.value.trim(),
        role: role.value,
        skills: skills.value.split(',').map((x) => x.trim()).filter(Boolean),
      };
      const created = await api.createAnnotator(body);
      const copy = h('button', { type: 'button', onclick: async () => {
        try { await navigator.clipboard.writeText(created.token); toast('Token copied'); } catch { toast('Select the token and copy it', 'error'); }
      } }, 'Copy');
      await reload();
      // After the reload, so the token stays on screen.
      document.getElementById('new-annotator-result').replaceChildren(
        message('ok', `${created.annotator.name} was added`,
          'Give them this token now. It is shown only this once; assay keeps only a hash of it.'),
        h('div', { class: 'row' }, h('div', { class: 'token', id: 'new-token' }, created.token), h('div', {}, copy)));
    } catch (err) {
      const title = err instanceof ApiError && err.status === 409 ? 'That name is taken' : 'Could not add the annotator';
      result.replaceChildren(errorBox(title, err));
    } finally {
      submit.disabled = false;
    }
  });
  return h('section', { class: 'panel', id: 'annotators' },
    h('h2', {}, 'Annotators'),
    annotators.length === 0 ? h('p', { class: 'hint' }, 'Nobody yet.') : h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Role'), h('th', {}, 'Skills'), h('th', {}, 'Added'))),
      h('tbody', {}, annotators.map((a) => h('tr', { 'data-annotator': a.name },
        h('td', {}, a.name), h('td', {}, a.role), h('td', {}, a.skills.join(', ') || '–'),
        h('td', {}, (a.created_at || '').slice(0, 10)))))),
    h('h3', {}, 'Add an annotator'),
    form);
}

function projectsPanel(projects, reload) {
  const mode = h('select', { id: 'task-mode' },
    h('option', { value: 'path' }, 'a task file on the server (path)'),
    h('option', { value: 'toml' }, 'task TOML pasted here'));
  const path = h('input', { type: 'text', id: 'task-path', placeholder: '/data/tasks/sms-spam.toml' });
  const toml = h('textarea', { id: 'task-toml', placeholder: 'name = "sms-spam"\ntype = "classify"\n…' });
  const name = h('input', { type: 'text', id: 'project-name', placeholder: 'defaults to the task name' });
  const pathField = h('label', { class: 'field' }, h('span', {}, 'Task file (absolute path on the server; its dataset is imported and routed)'), path);
  const tomlField = h('label', { class: 'field', hidden: true }, h('span', {}, 'Task TOML (then import rows with assay project import)'), toml);
  mode.addEventListener('change', () => {
    pathField.hidden = mode.value !== 'path';
    tomlField.hidden = mode.value !== 'toml';
  });
  const result = h('div', { id: 'new-project-result' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create project');
  const form = h('form', { id: 'create-project' },
    h('div', { class: 'row' },
      h('label', { class: 'field' }, h('span', {}, 'From'), mode),
      h('label', { class: 'field' }, h('span', {}, 'Project name (optional)'), name)),
    pathField, tomlField, submit, result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = mode.value === 'path' ? { task_path: path.value.trim() } : { task_toml: toml.value };
    if (name.value.trim()) body.name = name.value.trim();
    if ((body.task_path ?? body.task_toml ?? '').trim() === '') {
      result.replaceChildren(message('error', 'No task given', mode.value === 'path' ? 'Enter the path of a task file.' : 'Paste a task.'));
      return;
    }
    submit.disabled = true;
    result.replaceChildren(h('p', { class: 'hint' }, 'Creating the project (importing and routing the dataset)…'));
    try {
      const p = await api.createProject(body);
      await reload();
      document.getElementById('new-project-result').replaceChildren(
        message('ok', `Project ${p.name} created`, `${p.items} items routed to people.`));
    } catch (err) {
      const title = err instanceof ApiError && err.status === 409 ? 'That project name is taken'
        : err instanceof ApiError && err.status === 422 ? 'The task has a problem' : 'Could not create the project';
      result.replaceChildren(errorBox(title, err));
    } finally {
      submit.disabled = false;
    }
  });
  return h('section', { class: 'panel', id: 'admin-projects' },
    h('h2', {}, 'Projects'),
    projects.length === 0 ? h('p', { class: 'hint' }, 'No projects yet.') : h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'Project'), h('th', {}, 'Task'), h('th', {}, 'Kind'),
        h('th', { class: 'num' }, 'Items'), h('th', { class: 'num' }, 'Answered slots'), h('th', {}, 'Progress'))),
      h('tbody', {}, projects.map((p) => {
        const bar = h('div', {});
        bar.style.width = p.slots ? percent(p.answered / p.slots) : '0%';
        const open = () => { location.hash = `#/admin/project/${p.id}`; };
        return h('tr', { class: 'clickable', 'data-project': p.id, onclick: open },
          h('td', {}, h('a', { href: `#/admin/project/${p.id}` }, p.name)), h('td', {}, p.task), h('td', {}, p.kind),
          h('td', { class: 'num' }, p.items), h('td', { class: 'num' }, `${p.answered} / ${p.slots}`),
          h('td', {}, h('div', { class: 'progress' }, h('div', { class: 'bar' }, bar))));
      }))),
    h('h3', {}, 'Create a project from a task'),
    form);
}

/// `#/admin`
export async function adminHome() {
  show(h('p', { class: 'empty' }, 'Loading…'));
  let annotators;
  let projects;
  try {
    [{ annotators }, { projects }] = await Promise.all([api.annotators(), api.projects()]);
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      return show(h('h1', {}, 'Admin'), errorBox('Admins only', err), h('p', {}, h('a', { href: '#/' }, 'Back to my queue')));
    }
    throw err;
  }
  const annotatorsSlot = h('div', {});
  const projectsSlot = h('div', {});
  const reload = async () => {
    const [{ annotators: a }, { projects: p }] = await Promise.all([api.annotators(), api.projects()]);
    annotatorsSlot.replaceChildren(annotatorsPanel(a, reload));
    projectsSlot.replaceChildren(projectsPanel(p, reload));
  };
  annotatorsSlot.append(annotatorsPanel(annotators, reload));
  projectsSlot.append(projectsPanel(projects, reload));
  show(h('h1', {}, 'Admin'), projectsSlot, annotatorsSlot);
}

function stat(label, value, id) {
  return h('div', { class: 'panel', id }, h('h3', {}, label), h('div', { class: 'label' }, h('strong', {}, value)));
}

/// `#/admin/project/{id}`: progress of one project.
export async function adminProject(id) {
  show(h('p', { class: 'empty' }, 'Loading…'));
  let p;
  try {
    p = await api.project(id);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 403 || err.status === 404)) {
      return show(h('h1', {}, 'Project'), errorBox(err.status === 404 ? 'No such project' : 'Admins only', err),
        h('p', {}, h('a', { href: '#/admin' }, 'Back to admin')));
    }
    throw err;
  }
  const slots = p.slots || { total: 0, open: 0, claimed: 0, answered: 0 };
  const bar = h('div', {});
  bar.style.width = slots.total ? percent(slots.answered / slots.total) : '0%';
  const reasons = Object.entries(p.by_reason || {}).filter(([, n]) => n > 0).map(([r, n]) => `${n} ${r}`).join(', ') || '–';
  const review = p.review || {};
  show(
    h('p', {}, h('a', { href: '#/admin' }, '← Admin')),
    h('h1', {}, p.name, ' ', h('span', { class: 'badge' }, p.kind)),
    h('div', { class: 'panel' },
      h('div', { class: 'progress', id: 'project-progress' },
        h('span', {}, `${slots.answered} of ${slots.total} answers`),
        h('div', { class: 'bar' }, bar),
        h('span', {}, `${p.items_complete} of ${p.items} items complete`)),
      h('p', { class: 'hint' },
        `task ${p.task} · ${p.dataset_rows ?? '–'} dataset rows · ${p.items} routed (${reasons}) · overlap ${review.overlap ?? 1}`,
        review.skill ? ` · needs skill ${review.skill}` : '',
        review.show_suggestion === false ? ' · suggestions hidden' : '')),
    h('div', { class: 'row' },
      stat('Open', slots.open, 'slots-open'), stat('Claimed', slots.claimed, 'slots-claimed'),
      stat('Answered', slots.answered, 'slots-answered')),
    h('section', { class: 'panel', id: 'project-annotators' },
      h('h2', {}, 'Annotators'),
      (p.annotators || []).length === 0 ? h('p', { class: 'hint' }, 'Nobody has answered yet.') : h('table', {},
        h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', { class: 'num' }, 'Answered'), h('th', { class: 'num' }, 'Skipped'),
          h('th', { class: 'num' }, 'Claimed'), h('th', { class: 'num' }, 'Gold right'), h('th', { class: 'num' }, 'Median time'))),
        h('tbody', {}, p.annotators.map((a) => h('tr', { 'data-annotator': a.name },
          h('td', {}, a.name), h('td', { class: 'num' }, a.answered), h('td', { class: 'num' }, a.skipped),
          h('td', { class: 'num' }, a.claimed),
          h('td', { class: 'num' }, a.gold_answered ? `${a.gold_correct} / ${a.gold_answered}` : '–'),
          h('td', { class: 'num' }, duration(a.median_duration_ms))))))));
}
