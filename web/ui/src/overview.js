// `/`: every host, coloured by state, with a sparkline; sortable and filterable.
// A host that stops answering stays in the table, marked silent.

import {
  t, h, byId, api, withQuery, showError, stateLabel, resolveRange, initHeader, initTimebar, initRefresh,
  serialized, fmtPct, fmtRate, fmtNum, fmtAgo, toMs, rangeQuery,
} from './common.js';

const SVG = 'http://www.w3.org/2000/svg';
const STATE_ORDER = { firing: 0, warning: 1, silent: 2, ok: 3 };

/** Every host seen since the page opened, by name (so a vanished host stays, silent). */
const hosts = new Map();
const view = { sort: 'state', desc: false, filter: '', state: 'all' };

function readView() {
  const q = new URLSearchParams(location.search);
  view.sort = q.get('sort') || 'state';
  view.desc = q.get('order') === 'desc';
  view.filter = q.get('q') || '';
  view.state = q.get('state') || 'all';
}

function writeView() {
  const u = new URL(location.href);
  const set = (k, v, dflt) => (v && v !== dflt ? u.searchParams.set(k, v) : u.searchParams.delete(k));
  set('sort', view.sort, 'state');
  set('order', view.desc ? 'desc' : '', '');
  set('q', view.filter, '');
  set('state', view.state, 'all');
  history.replaceState(null, '', u);
}

function sparkline(points, state) {
  const w = 120;
  const hgt = 28;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('width', String(w));
  svg.setAttribute('height', String(hgt));
  svg.setAttribute('class', `spark state-${state}`);
  svg.setAttribute('aria-hidden', 'true');
  const valid = (points || []).filter((p) => Array.isArray(p) && p[1] != null && Number.isFinite(p[1]));
  if (valid.length < 2) return svg;
  const t0 = points[0][0];
  const t1 = points[points.length - 1][0];
  // CPU percent on a fixed 0–100 scale, so that lines compare across hosts.
  const max = Math.max(100, ...valid.map((p) => p[1]));
  const x = (ms) => (t1 === t0 ? 0 : ((ms - t0) / (t1 - t0)) * (w - 2) + 1);
  const y = (v) => hgt - 2 - (Math.max(0, v) / max) * (hgt - 4);
  let d = '';
  let pen = false;
  for (const [ms, v] of points) {
    if (v == null || !Number.isFinite(v)) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${x(ms).toFixed(1)} ${y(v).toFixed(1)}`;
    pen = true;
  }
  const area = document.createElementNS(SVG, 'path');
  area.setAttribute('d', `${d}`);
  area.setAttribute('class', 'spark-line');
  svg.append(area);
  return svg;
}

function meter(value, warnAt, critAt) {
  const bar = h('span', { class: 'meter' });
  const fill = h('span', { class: 'meter-fill' });
  if (value != null && Number.isFinite(value)) {
    fill.style.width = `${Math.max(0, Math.min(100, value))}%`;
    if (value >= critAt) fill.classList.add('crit');
    else if (value >= warnAt) fill.classList.add('warn');
  }
  bar.append(fill);
  return h('span', { class: 'meter-cell' }, h('span', { class: 'meter-val', text: fmtPct(value) }), bar);
}

function sortValue(x, key) {
  switch (key) {
    case 'state': return STATE_ORDER[x.state] ?? 9;
    case 'host': return x.host;
    case 'net': return x.net_bytes_per_s ?? -1;
    case 'last_seen': return toMs(x.last_seen) || 0;
    default: return x[key] ?? -1;
  }
}

function compare(a, b) {
  const va = sortValue(a, view.sort);
  const vb = sortValue(b, view.sort);
  let c = typeof va === 'string' ? va.localeCompare(vb) : va - vb;
  if (c === 0) c = a.host.localeCompare(b.host);
  return view.desc ? -c : c;
}

function row(x) {
  const link = h('a', { href: `/hosts/${encodeURIComponent(x.host)}?${rangeQuery()}`, class: 'host-link', text: x.host });
  const disk = h('span', null, meter(x.disk, 80, 90));
  if (x.disk_path) disk.append(h('span', { class: 'sub mono', text: x.disk_path }));
  return h('tr', { class: `state-${x.state}`, dataset: { host: x.host } },
    h('td', null, h('span', { class: `badge state-${x.state}`, text: stateLabel(x.state) })),
    h('td', { class: 'host' }, link),
    h('td', { class: 'num' }, meter(x.cpu, 80, 95)),
    h('td', { class: 'num' }, meter(x.mem, 85, 95)),
    h('td', { class: 'num' }, disk),
    h('td', { class: 'num', text: fmtNum(x.load1, 2) }),
    h('td', { class: 'num', text: fmtRate(x.net_bytes_per_s) }),
    h('td', { class: 'spark-col' }, sparkline(x.sparkline, x.state)),
    h('td', { class: 'num muted', title: x.last_seen ? new Date(toMs(x.last_seen)).toLocaleString() : null, text: fmtAgo(x.last_seen) }));
}

function render() {
  const all = [...hosts.values()];
  const counts = { all: all.length, ok: 0, warning: 0, firing: 0, silent: 0 };
  for (const x of all) counts[x.state] = (counts[x.state] || 0) + 1;
  for (const k of Object.keys(counts)) {
    const el = byId(`count-${k}`);
    if (el) el.textContent = String(counts[k]);
  }
  for (const chip of document.querySelectorAll('#state-filter .chip')) {
    chip.setAttribute('aria-pressed', String(chip.dataset.state === view.state));
  }
  for (const th of document.querySelectorAll('#hosts th[data-sort]')) {
    if (th.dataset.sort === view.sort) th.setAttribute('aria-sort', view.desc ? 'descending' : 'ascending');
    else th.removeAttribute('aria-sort');
  }
  const needle = view.filter.trim().toLowerCase();
  const shown = all
    .filter((x) => view.state === 'all' || x.state === view.state)
    .filter((x) => !needle || x.host.toLowerCase().includes(needle))
    .sort(compare);
  byId('hosts-body').replaceChildren(...shown.map(row));
  byId('hosts-empty').hidden = all.length > 0;
  byId('hosts-nomatch').hidden = !(all.length > 0 && shown.length === 0);
}

const load = serialized(async () => {
  const range = resolveRange();
  try {
    const data = await api(withQuery('/api/v1/hosts', { start: range.startMs, end: range.endMs }));
    const seen = new Set();
    for (const x of (data && data.hosts) || []) {
      hosts.set(x.host, x);
      seen.add(x.host);
    }
    for (const [name, x] of hosts) {
      if (!seen.has(name)) hosts.set(name, { ...x, state: 'silent' });
    }
    showError(null);
    render();
  } catch (e) {
    if (e.status !== 401) showError(e.message);
  }
  document.body.dataset.loaded = String(Date.now());
});

function main() {
  initHeader('overview');
  readView();
  const filter = byId('host-filter');
  filter.value = view.filter;
  filter.addEventListener('input', () => {
    view.filter = filter.value;
    writeView();
    render();
  });
  for (const chip of document.querySelectorAll('#state-filter .chip')) {
    chip.addEventListener('click', () => {
      view.state = chip.dataset.state;
      writeView();
      render();
    });
  }
  for (const th of document.querySelectorAll('#hosts th[data-sort]')) {
    th.tabIndex = 0;
    const sortBy = () => {
      if (view.sort === th.dataset.sort) view.desc = !view.desc;
      else {
        view.sort = th.dataset.sort;
        view.desc = ['cpu', 'mem', 'disk', 'load1', 'net', 'last_seen'].includes(view.sort);
      }
      writeView();
      render();
    };
    th.addEventListener('click', sortBy);
    th.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        sortBy();
      }
    });
  }
  initTimebar();
  initRefresh(load);
  window.addEventListener('hs:range', () => {
    hosts.clear(); // a different range: start over, no ghosts from the old one
    load();
  });
  load();
}

main();
