// The review API (crates/assay-server/API.md) seen from the browser: the session cookie is sent by the browser,
// every state-changing request carries the CSRF token from the login response (or from GET /api/me after a
// reload), and every failure becomes an ApiError with a message a person can act on.

let csrfToken = null;

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/// What a status means for the person in front of the screen, when the server said nothing more useful.
function plainWords(status) {
  switch (status) {
    case 401: return 'You are not logged in (or your session expired). Log in again with your token.';
    case 403: return 'You are not allowed to do this.';
    case 404: return 'Not found: it may have been removed, or the link is wrong.';
    case 409: return 'This was changed in the meantime (already answered, skipped or taken back).';
    case 413: return 'What you sent is too large.';
    case 422: return 'The server could not accept this input.';
    default:
      return status >= 500
        ? 'The server had a problem. Try again; if it keeps happening, tell whoever runs assay serve.'
        : `The request failed (HTTP ${status}).`;
  }
}

async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch {
    throw new ApiError(0, 'Cannot reach the assay server. Is it still running? Check the connection and try again.');
  }
  if (response.status === 204) return null;
  let data = null;
  const text = await response.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!response.ok) {
    const said = data && typeof data.error === 'string' ? data.error : null;
    throw new ApiError(response.status, said || plainWords(response.status));
  }
  return data;
}

export const api = {
  async login(token) {
    const data = await request('POST', '/api/login', { token });
    csrfToken = data.csrf_token;
    return data;
  },
  async me() {
    const data = await request('GET', '/api/me');
    csrfToken = data.csrf_token;
    return data;
  },
  async logout() {
    try { await request('POST', '/api/logout'); } finally { csrfToken = null; }
  },
  projects: () => request('GET', '/api/projects'),
  project: (id) => request('GET', `/api/projects/${encodeURIComponent(id)}`),
  createProject: (body) => request('POST', '/api/projects', body),
  annotators: () => request('GET', '/api/annotators'),
  createAnnotator: (body) => request('POST', '/api/annotators', body),
  /// The caller's next assignment in a project, or null when nothing is left.
  next: (projectId) => request('GET', `/api/projects/${encodeURIComponent(projectId)}/next`),
  assignment: (id) => request('GET', `/api/assignments/${encodeURIComponent(id)}`),
  answer: (id, body) => request('POST', `/api/assignments/${encodeURIComponent(id)}/answer`, body),
  skip: (id) => request('POST', `/api/assignments/${encodeURIComponent(id)}/skip`, {}),
  undo: () => request('POST', '/api/undo', {}),
};
