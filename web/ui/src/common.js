// Shared by every page: translations, DOM helpers, API calls (CSRF, 401 → login),
// preferences (language, theme), the time range in the URL, auto-refresh, formatting.
//
// CSP: this code never writes HTML strings with style attributes or handlers; it
// builds nodes and sets styles through the CSSOM (`el.style.x = …`), which
// `style-src 'self'` allows.

const root = document.documentElement;

/** Base URL of the versioned assets, e.g. `/assets/1a2b3c4d5e6f`. */
export const ASSETS = root.dataset.assets || '';
/** The page's language (`en` or `zh-CN`), chosen by the server. */
export const LANG = root.lang || 'en';

// ---------------------------------------------------------------- translations

const DICT = (() => {
  const el = document.getElementById('i18n');
  try {
    return el ? JSON.parse(el.textContent) : {};
  } catch {
    return {};
  }
})();

/** The translation of `key`, with `{name}` placeholders filled from `vars`. */
export function t(key, vars) {
  let s = Object.prototype.hasOwnProperty.call(DICT, key) ? DICT[key] : key;
  if (vars) {
    s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  }
  return s;
}

/** The translated name of a host state. */
export function stateLabel(state) {
  switch (state) {
    case 'ok': return t('state.ok');
    case 'warning': return t('state.warning');
    case 'firing': return t('state.firing');
    case 'silent': return t('state.silent');
    default: return state || '–';
  }
}

// ---------------------------------------------------------------- DOM

/**
 * Make an element. `props`: `class`, `text`, `dataset`, `on<event>` listeners, and
 * plain attributes (never `style`: set styles through `el.style`).
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** `document.getElementById`. */
export const byId = (id) => document.getElementById(id);

/** Show `message` in the page's error banner (`#error`), or hide it with `null`. */
export function showError(message) {
  const el = byId('error');
  if (!el) return;
  el.textContent = message || '';
  el.hidden = !message;
}

// ---------------------------------------------------------------- API

/** A failed API call: `status` is 0 when the server could not be reached. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** Send the browser to the login page, coming back here afterwards. */
export function toLogin() {
  const next = location.pathname + location.search + location.hash;
  location.assign('/login?next=' + encodeURIComponent(next));
}

function describe(status, body) {
  if (status === 400 && body && body.param) {
    return t('error.bad_request', { param: body.param, message: body.message || '' });
  }
  if (status === 403) return t('error.forbidden');
  if (status === 404) return t('error.not_found');
  if (status === 429) return t('error.rate_limited');
  if (status === 503) return t('error.unavailable');
  return t('error.server', { status });
}

let sessionPromise = null;

/** `GET /api/v1/session` → `{user, csrf_token}`, fetched once per page. */
export function getSession(force) {
  if (!sessionPromise || force) {
    sessionPromise = api('/api/v1/session').catch((e) => {
      sessionPromise = null;
      throw e;
    });
  }
  return sessionPromise;
}

/**
 * Call the API. GETs carry only the session cookie; every other method also sends
 * `X-CSRF-Token`. A 401 sends the browser to the login page.
 */
export async function api(path, opts = {}) {
  const method = opts.method || 'GET';
  const headers = { Accept: 'application/json' };
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  if (method !== 'GET' && method !== 'HEAD') {
    const session = await getSession();
    headers['X-CSRF-Token'] = session.csrf_token;
  }
  let resp;
  try {
    resp = await fetch(path, { method, headers, body, credentials: 'same-origin', signal: opts.signal });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, t('error.network'));
  }
  if (resp.status === 401) {
    toLogin();
    throw new ApiError(401, t('error.unauthorized'));
  }
  if (resp.status === 403 && method !== 'GET' && !opts.retried) {
    // The CSRF token may have changed (a new login in another tab): fetch it again once.
    await getSession(true);
    return api(path, { ...opts, retried: true });
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) throw new ApiError(resp.status, describe(resp.status, data), data);
  return data;
}

/** `path?k=v&…`, leaving out empty values. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v != null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

// ---------------------------------------------------------------- preferences

function setCookie(name, value) {
  const secure = location.protocol === 'https:' ? '; secure' : '';
  document.cookie = `${name}=${encodeURIComponent(value)}; path=/; max-age=31536000; samesite=lax${secure}`;
}

/** `light` or `dark`: the chosen theme, or the system's when none was chosen. */
export function effectiveTheme() {
  const chosen = root.dataset.theme;
  if (chosen === 'light' || chosen === 'dark') return chosen;
  return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function themeChanged() {
  window.dispatchEvent(new Event('hs:theme'));
}

/** Wire the language select and the theme button (both remembered in cookies). */
export function initPrefs() {
  const lang = byId('lang');
  if (lang) {
    lang.value = LANG;
    lang.addEventListener('change', () => {
      setCookie('hs_lang', lang.value);
      location.reload();
    });
  }
  const theme = byId('theme');
  if (theme) {
    theme.addEventListener('click', () => {
      const next = effectiveTheme() === 'dark' ? 'light' : 'dark';
      setCookie('hs_theme', next);
      root.dataset.theme = next;
      themeChanged();
    });
  }
  if (window.matchMedia) {
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
      if (root.dataset.theme !== 'light' && root.dataset.theme !== 'dark') themeChanged();
    });
  }
}

// ---------------------------------------------------------------- time range

/** The preset ranges of the picker, each `now-<preset>` to `now`. */
export const PRESETS = ['15m', '1h', '6h', '24h', '7d', '30d'];
const DEFAULT_START = 'now-1h';
const UNIT_MS = { ms: 1, s: 1e3, m: 6e4, h: 36e5, d: 864e5, w: 6048e5 };

/** Milliseconds in `1h30m`-style text, or `null`. */
export function parseDuration(text) {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let end = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * UNIT_MS[m[2]];
    end = re.lastIndex;
  }
  return end === text.length && end > 0 ? total : null;
}

/** Short text for a duration in ms: `30d`, `6h`, `90m`, `45s`. */
export function durationText(ms) {
  for (const [unit, size] of [['d', UNIT_MS.d], ['h', UNIT_MS.h], ['m', UNIT_MS.m]]) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.max(1, Math.round(ms / 1000))}s`;
}

/** Unix ms for what the API accepts: unix ms, RFC 3339, `now`, `now-<duration>`. */
export function resolveTime(text, now = Date.now()) {
  if (text === 'now') return now;
  const rel = /^now-(.+)$/.exec(text);
  if (rel) {
    const d = parseDuration(rel[1]);
    return d == null ? NaN : now - d;
  }
  if (/^\d+$/.test(text)) return Number(text);
  return Date.parse(text);
}

/** The range in the URL (`?start=…&end=…`), as written. */
export function getRange() {
  const q = new URLSearchParams(location.search);
  return { start: q.get('start') || DEFAULT_START, end: q.get('end') || 'now' };
}

/** The range in the URL as unix ms, resolved against one `now`. */
export function resolveRange(range = getRange(), now = Date.now()) {
  let startMs = resolveTime(range.start, now);
  let endMs = resolveTime(range.end, now);
  if (!Number.isFinite(endMs)) endMs = now;
  if (!Number.isFinite(startMs) || startMs >= endMs) startMs = endMs - UNIT_MS.h;
  return { startMs, endMs };
}

/** The preset the range matches, or `custom`. */
export function presetOf(range = getRange()) {
  if (range.end !== 'now') return 'custom';
  const p = PRESETS.find((x) => range.start === `now-${x}`);
  return p || 'custom';
}

/** `start=…&end=…` of the current range, to carry the range across pages. */
export function rangeQuery() {
  const r = getRange();
  return new URLSearchParams({ start: r.start, end: r.end }).toString();
}

/** Put a new range in the URL (a history entry) and tell the page (`hs:range`). */
export function setRange(start, end) {
  const u = new URL(location.href);
  u.searchParams.set('start', String(start));
  u.searchParams.set('end', String(end));
  if (u.href === location.href) return;
  history.pushState(null, '', u);
  rangeChanged();
}

function rangeChanged() {
  syncTimebar();
  syncNavLinks();
  window.dispatchEvent(new Event('hs:range'));
}

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

function fromLocalInput(text) {
  if (!text) return NaN;
  return new Date(text).getTime(); // `YYYY-MM-DDTHH:MM` without a zone is local time
}

function syncTimebar() {
  const select = byId('range');
  if (!select) return;
  const preset = presetOf();
  select.value = preset;
  const custom = byId('custom-range');
  custom.hidden = preset !== 'custom';
  if (preset === 'custom') {
    const { startMs, endMs } = resolveRange();
    byId('custom-start').value = toLocalInput(startMs);
    byId('custom-end').value = toLocalInput(endMs);
  }
}

function syncNavLinks() {
  const q = rangeQuery();
  for (const a of document.querySelectorAll('a[data-keep-range], .nav a[data-nav="overview"], a.back')) {
    const u = new URL(a.getAttribute('href'), location.origin);
    u.search = q;
    a.setAttribute('href', u.pathname + u.search);
  }
}

/** Show and wire the range picker: presets, custom start/end, zoom out, back/forward. */
export function initTimebar() {
  const bar = byId('timebar');
  if (!bar) return;
  bar.hidden = false;
  const select = byId('range');
  select.addEventListener('change', () => {
    if (select.value === 'custom') {
      const { startMs, endMs } = resolveRange();
      byId('custom-range').hidden = false;
      byId('custom-start').value = toLocalInput(startMs);
      byId('custom-end').value = toLocalInput(endMs);
      byId('custom-start').focus();
    } else {
      setRange(`now-${select.value}`, 'now');
    }
  });
  byId('custom-apply').addEventListener('click', () => {
    const s = fromLocalInput(byId('custom-start').value);
    const e = fromLocalInput(byId('custom-end').value);
    if (Number.isFinite(s) && Number.isFinite(e) && s < e) {
      showError(null);
      setRange(s, e);
    } else {
      showError(t('time.invalid'));
    }
  });
  byId('zoom-out').addEventListener('click', zoomOut);
  window.addEventListener('popstate', rangeChanged);
  syncTimebar();
  syncNavLinks();
}

/** Double the range around its middle; a range ending now stays relative. */
export function zoomOut() {
  const now = Date.now();
  const { startMs, endMs } = resolveRange(getRange(), now);
  const span = endMs - startMs;
  if (getRange().end === 'now') {
    setRange(`now-${durationText(Math.round((2 * span) / 60000) * 60000 || 2 * span)}`, 'now');
    return;
  }
  const start = Math.round(startMs - span / 2);
  const end = Math.round(endMs + span / 2);
  if (end >= now) setRange(`now-${durationText(Math.round((now - start) / 60000) * 60000)}`, 'now');
  else setRange(start, end);
}

/** Zoom to an absolute range (ECharts drag-select). */
export function zoomTo(startMs, endMs) {
  if (!(endMs - startMs >= 1000)) return;
  setRange(Math.round(startMs), Math.round(endMs));
}

// ---------------------------------------------------------------- auto-refresh

const REFRESH_MS = { off: 0, '10s': 10000, '30s': 30000, '1m': 60000 };

/**
 * Show the refresh controls; call `load` on "refresh now", every period of the
 * chosen interval (kept in the URL as `refresh=`) while the tab is visible, and
 * when the tab comes back after a missed refresh.
 */
export function initRefresh(load) {
  const bar = byId('refreshbar');
  if (!bar) return;
  bar.hidden = false;
  const select = byId('refresh');
  const initial = new URLSearchParams(location.search).get('refresh');
  select.value = initial in REFRESH_MS ? initial : 'off';
  let timer = null;
  let missed = false;
  const arm = () => {
    clearInterval(timer);
    const ms = REFRESH_MS[select.value] || 0;
    if (ms) {
      timer = setInterval(() => {
        if (document.hidden) missed = true;
        else load();
      }, ms);
    }
  };
  select.addEventListener('change', () => {
    const u = new URL(location.href);
    if (select.value === 'off') u.searchParams.delete('refresh');
    else u.searchParams.set('refresh', select.value);
    history.replaceState(null, '', u);
    arm();
    if (select.value !== 'off') load();
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && missed) {
      missed = false;
      load();
    }
  });
  byId('refresh-now').addEventListener('click', () => load());
  arm();
}

/**
 * Run `fn` at most once at a time: a call while one is running is queued (one
 * pending run at most), so auto-refresh never piles up requests.
 */
export function serialized(fn) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await fn();
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
  return run;
}

// ---------------------------------------------------------------- page chrome

/** Header for logged-in pages: active nav link, the user's name, logout. */
export function initHeader(page) {
  initPrefs();
  for (const a of document.querySelectorAll('.nav a')) {
    if (a.dataset.nav === page) a.setAttribute('aria-current', 'page');
  }
  getSession()
    .then((s) => {
      const user = byId('user');
      if (user && s && s.user) user.textContent = typeof s.user === 'string' ? s.user : s.user.name || '';
    })
    .catch(() => {});
  const logout = byId('logout');
  if (logout) {
    logout.addEventListener('click', async () => {
      try {
        await api('/api/v1/logout', { method: 'POST' });
      } catch {
        // Logged out or not: the login page is where to go.
      }
      location.assign('/login');
    });
  }
}

// ---------------------------------------------------------------- formatting

const numberFormats = new Map();
function numberFormat(digits) {
  let f = numberFormats.get(digits);
  if (!f) {
    f = new Intl.NumberFormat(LANG, { maximumFractionDigits: digits });
    numberFormats.set(digits, f);
  }
  return f;
}

/** A number with at most `digits` decimals, or `–`. */
export function fmtNum(v, digits = 1) {
  return v == null || !Number.isFinite(v) ? '–' : numberFormat(digits).format(v);
}

/** `42.1%`, or `–`. */
export function fmtPct(v) {
  return v == null || !Number.isFinite(v) ? '–' : `${numberFormat(1).format(v)}%`;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `1.5 GiB`, or `–`. */
export function fmtBytes(v) {
  if (v == null || !Number.isFinite(v)) return '–';
  let i = 0;
  let x = Math.abs(v);
  while (x >= 1024 && i < BYTE_UNITS.length - 1) {
    x /= 1024;
    i += 1;
  }
  const digits = x >= 100 || i === 0 ? 0 : 1;
  return `${v < 0 ? '-' : ''}${numberFormat(digits).format(x)} ${BYTE_UNITS[i]}`;
}

/** `1.5 MiB/s`, or `–`. */
export function fmtRate(v) {
  return v == null || !Number.isFinite(v) ? '–' : `${fmtBytes(v)}/s`;
}

/** Unix ms from unix ms, digit text or RFC 3339; `NaN` otherwise. */
export function toMs(v) {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  return NaN;
}

/** Local date and time. */
export function fmtTime(v, withSeconds = false) {
  const ms = toMs(v);
  if (!Number.isFinite(ms)) return '–';
  return new Date(ms).toLocaleString(LANG, {
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
    second: withSeconds ? '2-digit' : undefined, hour12: false,
  });
}

const relative = new Intl.RelativeTimeFormat(LANG, { numeric: 'auto', style: 'short' });

/** `3 min ago` / `3分钟前`. */
export function fmtAgo(v, now = Date.now()) {
  const ms = toMs(v);
  if (!Number.isFinite(ms)) return '–';
  const s = Math.round((ms - now) / 1000);
  const a = Math.abs(s);
  if (a < 60) return relative.format(s, 'second');
  if (a < 3600) return relative.format(Math.round(s / 60), 'minute');
  if (a < 86400) return relative.format(Math.round(s / 3600), 'hour');
  return relative.format(Math.round(s / 86400), 'day');
}
