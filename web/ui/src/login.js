// /login: posts `{username, password}` as JSON, then goes to `next` (a path on this
// site only) or `/`.

import { t, byId, initPrefs } from './common.js';

/** Where to go after logging in: `next` when it is a path on this site, else `/`. */
function nextPage() {
  const next = new URLSearchParams(location.search).get('next');
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  try {
    const u = new URL(next, location.origin);
    if (u.origin !== location.origin || u.pathname === '/login') return '/';
    return u.pathname + u.search + u.hash;
  } catch {
    return '/';
  }
}

function fail(message) {
  const el = byId('login-error');
  el.textContent = message;
  el.hidden = !message;
}

async function submit(ev) {
  ev.preventDefault();
  const username = byId('username').value.trim();
  const password = byId('password').value;
  if (!username || !password) {
    fail(t('login.missing'));
    return;
  }
  const button = byId('login-submit');
  button.disabled = true;
  fail('');
  try {
    const resp = await fetch('/api/v1/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username, password }),
      credentials: 'same-origin',
    });
    if (resp.ok) {
      location.replace(nextPage());
      return;
    }
    if (resp.status === 401) {
      fail(t('login.bad_credentials'));
      byId('password').value = '';
      byId('password').focus();
    } else if (resp.status === 429) {
      let wait = Number(resp.headers.get('Retry-After'));
      if (!Number.isFinite(wait) || wait <= 0) {
        const body = await resp.json().catch(() => ({}));
        wait = Number(body.retry_after) || 60;
      }
      fail(t('login.rate_limited', { seconds: Math.ceil(wait) }));
    } else {
      fail(t('error.server', { status: resp.status }));
    }
  } catch {
    fail(t('error.network'));
  } finally {
    button.disabled = false;
  }
}

initPrefs();
byId('login-form').addEventListener('submit', submit);
