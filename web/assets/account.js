// Signed-in state for tuiz's own pages: the session is kept where the TUIZ client keeps it
// (localStorage `tuiz_session`, Supabase-style), so `sessionAuth()` in net.js sees it too.
import { t } from '/assets/i18n.js';
import { api, readJSON, writeJSON } from '/assets/net.js';

const SESSION_KEY = 'tuiz_session';
const USER_KEY = 'tuiz_user';

export function currentUser() {
  const session = readJSON(localStorage, SESSION_KEY);
  return session && session.access_token ? readJSON(localStorage, USER_KEY) || {} : null;
}

function keep(auth) {
  writeJSON(localStorage, SESSION_KEY, auth.session);
  writeJSON(localStorage, USER_KEY, auth.user);
  return auth.user;
}

export async function signIn(email, password) {
  return keep(await api('POST', '/auth/login', { email, password }));
}

export async function signUp(email, password, displayName) {
  return keep(await api('POST', '/auth/register', { email, password, displayName }));
}

export async function signOut() {
  const session = readJSON(localStorage, SESSION_KEY);
  if (session && session.access_token) {
    try {
      await api('POST', '/auth/logout', undefined, { Authorization: `Bearer ${session.access_token}` });
    } catch { /* an expired token: forgetting it here is what matters */ }
  }
  writeJSON(localStorage, SESSION_KEY, null);
  writeJSON(localStorage, USER_KEY, null);
}

async function refresh() {
  const session = readJSON(localStorage, SESSION_KEY);
  if (!session || !session.refresh_token) return false;
  try {
    keep(await api('POST', '/auth/refresh', { refresh_token: session.refresh_token }));
    return true;
  } catch {
    writeJSON(localStorage, SESSION_KEY, null);
    return false;
  }
}

function bearer() {
  const session = readJSON(localStorage, SESSION_KEY);
  return session && session.access_token ? { Authorization: `Bearer ${session.access_token}` } : {};
}

/** `api()` as the signed-in user; an expired access token is refreshed once. */
export async function authed(method, path, body) {
  try {
    return await api(method, path, body, bearer());
  } catch (err) {
    if (err.status === 401 && await refresh()) return api(method, path, body, bearer());
    throw err;
  }
}

/** A multipart upload of one file as the signed-in user; JSON answer or an Error like api(). */
export async function upload(path, field, file, { signed = true } = {}) {
  const send = () => {
    const form = new FormData();
    form.append(field, file);
    return fetch(path, { method: 'POST', body: form, headers: signed ? bearer() : {} });
  };
  let res = await send();
  if (res.status === 401 && signed && await refresh()) res = await send();
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) {
    const err = new Error((data && data.message) || res.statusText);
    err.status = res.status;
    err.details = data && data.details;
    throw err;
  }
  return data;
}

/**
 * Show a 422's field errors next to their fields: each `details.errors[].loc` (leading
 * "body" dropped) is matched to the element with that `data-path`, or to the nearest path
 * above it. Returns how many were placed; `clearFieldErrors` removes them.
 */
export function showFieldErrors(root, err) {
  const errors = (err.details && err.details.errors) || [];
  let placed = 0;
  for (const e of errors) {
    const loc = (e.loc || []).filter((p, i) => !(i === 0 && p === 'body'));
    for (let n = loc.length; n > 0; n -= 1) {
      const path = loc.slice(0, n).join('.');
      const target = root.querySelector(`[data-path="${CSS.escape(path)}"]`);
      if (!target) continue;
      placeFieldError(target, fieldMessage(e, err));
      placed += 1;
      break;
    }
  }
  return placed;
}

let errorIds = 0;

/** The page's own words for an error the server typed (`type`, `ctx`), else its message. */
function fieldMessage(e, err) {
  const key = e.type ? `err.${e.type}` : null;
  if (key && t(key) !== key) return t(key, e.ctx || {});
  return e.msg || err.message;
}

export function placeFieldError(target, message) {
  const id = `field-error-${(errorIds += 1)}`;
  const note = document.createElement('p');
  note.className = 'field-error';
  note.id = id;
  note.textContent = message;
  const field = target.matches('input, select, textarea') ? target : null;
  if (field) {
    field.setAttribute('aria-invalid', 'true');
    const described = field.getAttribute('aria-describedby');
    field.setAttribute('aria-describedby', described ? `${described} ${id}` : id);
    (field.closest('.field') || field).after(note);
  } else {
    target.prepend(note);
  }
}

export function clearFieldErrors(root) {
  for (const note of root.querySelectorAll('.field-error')) note.remove();
  for (const field of root.querySelectorAll('[aria-invalid="true"]')) {
    field.removeAttribute('aria-invalid');
    const ids = (field.getAttribute('aria-describedby') || '').split(' ')
      .filter((id) => id && !id.startsWith('field-error-'));
    if (ids.length) field.setAttribute('aria-describedby', ids.join(' '));
    else field.removeAttribute('aria-describedby');
  }
}
