// Calls to the Stele HTTP API. Errors carry the API's own message
// ({"message", "details"}). With a token configured on the server, mutating
// calls answer 401: the UI then asks for the token (kept in sessionStorage for
// the browser session) and retries once.

const TOKEN_KEY = 'stele.token';
let askToken = null; // set by the shell: () => Promise<string|null>

export function setTokenPrompt(fn) { askToken = fn; }
export function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, message, details) {
    super(message);
    this.status = status;
    this.details = details || [];
  }
  // One line for the UI: the message, then each detail's path and errors.
  describe() {
    const d = this.details.map((x) => `${x.path || ''}: ${(x.errors || []).join(', ')}`).join('; ');
    return d ? `${this.message} (${d})` : this.message;
  }
}

async function errorOf(res) {
  const text = await res.text();
  try {
    const j = JSON.parse(text);
    if (j && j.message) return new ApiError(res.status, j.message, j.details);
  } catch (_) { /* not JSON */ }
  return new ApiError(res.status, text.trim() || `${res.status} ${res.statusText}`);
}

async function send(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const t = token();
  if (t && method !== 'GET') headers.Authorization = `Bearer ${t}`;
  return fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

export async function request(method, path, body) {
  let res = await send(method, path, body);
  if (res.status === 401 && method !== 'GET' && askToken) {
    const t = await askToken();
    if (t) {
      setToken(t);
      res = await send(method, path, body);
    }
  }
  if (!res.ok) throw await errorOf(res);
  const type = res.headers.get('Content-Type') || '';
  return type.includes('json') ? res.json() : res.text();
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body === undefined ? {} : body);
export const patch = (path, body) => request('PATCH', path, body);

// "/shop/web" -> "shop/web" for URLs.
export const appPath = (id) => id.replace(/^\/+/, '');
// design.md "Names": the app id without its leading '/', '/' and '.' -> '_'.
export const appName = (id) => appPath(id).replace(/[/.]/g, '_');

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    for (const x of Array.isArray(v) ? v : [v]) q.append(k, x);
  }
  return q.toString();
}
