// /hosts/{host}: the host's charts, its process and port tables, log matches,
// business metrics and alert periods, all for the range in the URL.

import {
  t, h, byId, api, withQuery, showError, stateLabel, resolveRange, initHeader, initTimebar, initRefresh,
  serialized, fmtPct, fmtBytes, fmtNum, fmtAgo, rangeQuery,
} from './common.js';
import { TimeChart, connectCharts, echartsLoaded } from './charts.js';

const HOST = decodeURIComponent(location.pathname.replace(/^\/hosts\//, '').replace(/\/$/, ''));

// CPU modes in stack order, each with the colour it has on most dashboards.
const CPU = [
  ['usage_user', () => t('cpu.user'), '#3b82f6'],
  ['usage_system', () => t('cpu.system'), '#ef4444'],
  ['usage_iowait', () => t('cpu.iowait'), '#f59e0b'],
  ['usage_steal', () => t('cpu.steal'), '#a855f7'],
  ['usage_irq', () => t('cpu.irq'), '#64748b'],
  ['usage_softirq', () => t('cpu.softirq'), '#14b8a6'],
  ['usage_nice', () => t('cpu.nice'), '#22c55e'],
];

/** The standard charts: what to ask `/api/v1/series` for, and how to label it. */
const CHARTS = [
  {
    id: 'cpu', title: () => t('chart.cpu'), unit: 'pct', stack: true, area: true, min: 0, wide: true,
    queries: CPU.map(([field, label, color]) => ({ measurement: 'cpu', field, tags: 'cpu:cpu-total', label, color })),
  },
  {
    id: 'memory', title: () => t('chart.memory'), unit: 'pct', min: 0, max: 100, area: true,
    queries: [
      { measurement: 'mem', field: 'used_percent', label: () => t('mem.used') },
      { measurement: 'swap', field: 'used_percent', label: () => t('mem.swap_used'), dashed: true },
    ],
  },
  {
    id: 'disk', title: () => t('chart.disk'), unit: 'pct', min: 0, max: 100,
    queries: [{ measurement: 'disk', field: 'used_percent', group_by: 'path', label: (tags) => tags.path || '?' }],
  },
  {
    id: 'diskio', title: () => t('chart.diskio'), unit: 'Bps', min: 0,
    queries: [
      { measurement: 'diskio', field: 'read_bytes', group_by: 'name', label: (tags) => t('io.read', { name: tags.name || '?' }) },
      { measurement: 'diskio', field: 'write_bytes', group_by: 'name', label: (tags) => t('io.write', { name: tags.name || '?' }), dashed: true },
    ],
  },
  {
    id: 'net', title: () => t('chart.net'), unit: 'Bps', min: 0,
    queries: [
      { measurement: 'net', field: 'bytes_recv', group_by: 'interface', label: (tags) => t('net.recv', { name: tags.interface || '?' }) },
      { measurement: 'net', field: 'bytes_sent', group_by: 'interface', label: (tags) => t('net.sent', { name: tags.interface || '?' }), dashed: true },
    ],
  },
  {
    id: 'load', title: () => t('chart.load'), unit: 'num', min: 0,
    queries: [
      { measurement: 'system', field: 'load1', label: () => t('load.1') },
      { measurement: 'system', field: 'load5', label: () => t('load.5') },
      { measurement: 'system', field: 'load15', label: () => t('load.15') },
    ],
  },
  {
    id: 'processes', title: () => t('chart.processes'), unit: 'count', min: 0,
    queries: [
      { measurement: 'processes', field: 'running', label: () => t('procs.running') },
      { measurement: 'processes', field: 'sleeping', label: () => t('procs.sleeping') },
      { measurement: 'processes', field: 'blocked', label: () => t('procs.blocked') },
      { measurement: 'processes', field: 'zombies', label: () => t('procs.zombies') },
    ],
  },
];

const charts = new Map(); // id → {chart, def, card}

function chartCard(container, id, title, wide) {
  const plot = h('div', { class: 'chart', id: `chart-${id}`, dataset: { chart: id }, role: 'img', 'aria-label': title });
  const status = h('p', { class: 'chart-status', hidden: true });
  const card = h('div', { class: wide ? 'card chart-card wide' : 'card chart-card' }, h('h3', { text: title }), plot, status);
  container.append(card);
  return { plot, status, card };
}

function pointsFor(el) {
  // At most one point per CSS pixel. The server rounds its step up to a nice length
  // (1m, 5m, …), which may leave several times fewer points than asked for.
  return Math.max(100, Math.min(1500, Math.round(el.clientWidth || 600)));
}

async function fetchSeries(query, range, points) {
  return api(withQuery('/api/v1/series', {
    host: HOST,
    measurement: query.measurement,
    field: query.field,
    tags: query.tags,
    group_by: query.group_by,
    start: range.startMs,
    end: range.endMs,
    points,
  }));
}

async function loadChart(entry, range, periods) {
  const { chart, def, status } = entry;
  const points = pointsFor(entry.plot);
  const results = await Promise.allSettled(def.queries.map((q) => fetchSeries(q, range, points)));
  const series = [];
  let failure = null;
  results.forEach((r, i) => {
    const q = def.queries[i];
    if (r.status === 'rejected') {
      failure = failure || r.reason;
      return;
    }
    for (const s of (r.value && r.value.series) || []) {
      series.push({ name: q.label(s.tags || {}), points: s.points || [], dashed: q.dashed, color: q.color });
    }
  });
  if (failure && failure.status === 401) throw failure;
  chart.set(series, range, periods);
  const empty = !series.some((s) => s.points.some((p) => p[1] != null));
  status.hidden = !(failure || empty);
  status.textContent = failure ? failure.message : t('chart.no_data');
  status.classList.toggle('error', Boolean(failure));
}

async function loadPeriods(range) {
  try {
    const data = await api(withQuery('/api/v1/alerts/history', { host: HOST, start: range.startMs, end: range.endMs }));
    return (data && data.periods) || [];
  } catch (e) {
    if (e.status === 401) throw e;
    return []; // No analyzer, or no history: the charts still show.
  }
}

// ---------------------------------------------------------------- tables

function cell(column, row) {
  const v = column.value(row);
  const classes = [column.num ? 'num' : '', column.cls || ''].join(' ').trim();
  const td = h('td', { class: classes || null });
  if (v instanceof Node) td.append(v);
  else td.textContent = v == null || v === '' ? '–' : String(v);
  if (column.full) td.title = column.full(row) || '';
  return td;
}

function table(columns, rows, emptyText) {
  if (!rows || !rows.length) return h('p', { class: 'empty', text: emptyText });
  const head = h('tr', null, columns.map((c) => h('th', { class: c.num ? 'num' : null, text: c.title })));
  const body = rows.map((row) => h('tr', null, columns.map((c) => cell(c, row))));
  return h('div', { class: 'table-scroll' }, h('table', { class: 'data' }, h('thead', null, head), h('tbody', null, body)));
}

function processColumns() {
  return [
    { title: '#', value: (r) => r.rank, num: true },
    { title: t('proc.pid'), value: (r) => r.pid, num: true },
    { title: t('proc.name'), value: (r) => r.name, cls: 'strong' },
    { title: t('proc.user'), value: (r) => r.user },
    { title: t('proc.cpu'), value: (r) => fmtPct(r.cpu_usage), num: true },
    { title: t('proc.rss'), value: (r) => fmtBytes(r.memory_rss), num: true },
    { title: t('proc.cmdline'), value: (r) => r.cmdline, cls: 'mono clip', full: (r) => r.cmdline },
  ];
}

function inventoryItem(v) {
  if (v == null) return '';
  if (typeof v !== 'object') return String(v);
  return v.name || v.path || v.interface || v.cpu || v.device || JSON.stringify(v);
}

function renderDetails(d) {
  byId('top-cpu').replaceChildren(table(processColumns(), d.top_cpu, t('host.no_processes')));
  byId('top-memory').replaceChildren(table(processColumns(), d.top_memory, t('host.no_processes')));
  byId('listen').replaceChildren(table([
    { title: t('listen.proto'), value: (r) => r.proto },
    { title: t('listen.address'), value: (r) => r.address, cls: 'mono' },
    { title: t('listen.port'), value: (r) => r.port, num: true },
    { title: t('proc.pid'), value: (r) => r.pid, num: true },
    { title: t('listen.process'), value: (r) => r.process, cls: 'strong' },
  ], d.listen, t('host.no_listen')));
  byId('logmatch').replaceChildren(table([
    { title: t('logmatch.file'), value: (r) => r.file, cls: 'mono' },
    { title: t('logmatch.rule'), value: (r) => r.rule, cls: 'strong' },
    { title: t('logmatch.count'), value: (r) => fmtNum(r.count, 0), num: true },
    { title: t('logmatch.last_line'), value: (r) => r.last_line, cls: 'mono clip', full: (r) => r.last_line },
  ], d.logmatch, t('host.no_logmatch')));

  const inventory = [
    [t('host.disks'), d.disks],
    [t('host.devices'), d.devices],
    [t('host.interfaces'), d.interfaces],
    [t('host.cpus'), d.cpus],
  ].filter(([, items]) => Array.isArray(items) && items.length);
  byId('inventory-section').hidden = !inventory.length;
  byId('inventory').replaceChildren(...inventory.map(([label, items]) => h('div', { class: 'inv-row' },
    h('span', { class: 'inv-label', text: label }),
    h('span', { class: 'inv-items' }, items.map((i) => h('span', { class: 'tag', text: inventoryItem(i) }))))));
}

// Business measurements: one chart per field, made when first seen.
function businessDefs(d) {
  const defs = [];
  for (const b of d.business || []) {
    for (const f of b.fields || []) {
      const field = typeof f === 'string' ? f : f.field || f.name;
      if (!field) continue;
      defs.push({
        id: `biz-${b.measurement}-${field}`,
        title: () => `${b.measurement} · ${field}`,
        unit: 'num',
        queries: [{ measurement: b.measurement, field, label: () => field }],
      });
    }
  }
  return defs;
}

function ensureChart(container, def) {
  let entry = charts.get(def.id);
  if (!entry) {
    const { plot, status, card } = chartCard(container, def.id, def.title(), def.wide);
    entry = { def, plot, status, card, chart: new TimeChart(plot, def) };
    charts.set(def.id, entry);
  }
  return entry;
}

// ---------------------------------------------------------------- state

async function loadState(range) {
  try {
    const data = await api(withQuery('/api/v1/hosts', { start: range.startMs, end: range.endMs }));
    const me = ((data && data.hosts) || []).find((x) => x.host === HOST);
    const badge = byId('host-state');
    if (!me) {
      badge.hidden = true;
      return;
    }
    badge.hidden = false;
    badge.className = `badge state-${me.state}`;
    badge.textContent = me.state === 'silent'
      ? `${stateLabel(me.state)} · ${t('host.last_seen', { ago: fmtAgo(me.last_seen) })}`
      : stateLabel(me.state);
  } catch (e) {
    if (e.status === 401) throw e;
  }
}

const load = serialized(async () => {
  const range = resolveRange();
  showError(null);
  try {
    // Settled at once, so that a failure elsewhere never leaves it unhandled.
    const detailsPromise = api(withQuery(`/api/v1/hosts/${encodeURIComponent(HOST)}/details`, {
      start: range.startMs, end: range.endMs,
    })).catch((e) => e);
    const periods = await loadPeriods(range);
    const jobs = [...charts.values()]
      .filter((e) => !e.def.id.startsWith('biz-'))
      .map((e) => loadChart(e, range, periods));
    jobs.push(loadState(range));
    let details = await detailsPromise;
    if (details instanceof Error) {
      if (details.status === 401) throw details;
      showError(details.message);
      details = null;
    }
    if (details) {
      renderDetails(details);
      const defs = businessDefs(details);
      byId('business-section').hidden = !defs.length;
      for (const def of defs) jobs.push(loadChart(ensureChart(byId('business'), def), range, periods));
      connectCharts();
    }
    const results = await Promise.allSettled(jobs);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (e) {
    if (e && e.status !== 401) showError(e.message || String(e));
  }
  document.body.dataset.loaded = String(Date.now());
});

function main() {
  initHeader('overview');
  document.title = `${HOST} · hostscope`;
  byId('host-name').textContent = HOST;
  byId('back').setAttribute('href', `/?${rangeQuery()}`);
  if (!echartsLoaded()) {
    showError(t('error.echarts'));
    return;
  }
  const container = byId('charts');
  for (const def of CHARTS) ensureChart(container, def);
  connectCharts();
  initTimebar();
  initRefresh(load);
  window.addEventListener('hs:range', () => load());
  load();
}

main();
