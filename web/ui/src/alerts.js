// /alerts: firing and recent alerts from the analyzer, with acknowledge and
// silence buttons, and the anomaly reports it kept; an empty state when no analyzer
// is configured.

import { t, h, byId, api, showError, initHeader, initRefresh, serialized, fmtAgo, fmtNum, fmtTime, toMs } from './common.js';

const SILENCE_FOR = ['1h', '4h', '24h'];

function pick(a, ...keys) {
  for (const k of keys) {
    if (a[k] != null && a[k] !== '') return a[k];
  }
  return null;
}

function hostOf(a) {
  return pick(a, 'host') || (a.tags && a.tags.host) || (a.labels && a.labels.host) || null;
}

function stateOf(a) {
  const s = pick(a, 'state', 'status');
  if (s) return String(s).toLowerCase();
  return pick(a, 'end', 'ended_at', 'resolved_at') == null ? 'firing' : 'resolved';
}

function severityLabel(s) {
  switch (s) {
    case 'critical': return t('severity.critical');
    case 'warning': return t('severity.warning');
    default: return s || '–';
  }
}

function alertStateLabel(s) {
  switch (s) {
    case 'firing': return t('alert_state.firing');
    case 'resolved': return t('alert_state.resolved');
    case 'pending': return t('alert_state.pending');
    case 'acknowledged': return t('alert_state.acknowledged');
    case 'silenced': return t('alert_state.silenced');
    default: return s;
  }
}

async function act(button, request) {
  button.disabled = true;
  try {
    await request();
    showError(null);
    await load();
  } catch (e) {
    if (e.status !== 401) showError(e.message);
    button.disabled = false;
  }
}

function actions(a, state) {
  const box = h('div', { class: 'actions' });
  const id = pick(a, 'id', 'key', 'fingerprint');
  const acked = Boolean(pick(a, 'acknowledged', 'acked', 'ack'));
  if (id != null && state !== 'resolved') {
    const ack = h('button', { type: 'button', class: 'small', text: acked ? t('alerts.acked') : t('alerts.ack'), disabled: acked });
    ack.addEventListener('click', () => act(ack, () => api(`/api/v1/alerts/${encodeURIComponent(id)}/ack`, { method: 'POST', body: {} })));
    box.append(ack);
  }
  const duration = h('select', { class: 'small', title: t('alerts.silence_for') },
    SILENCE_FOR.map((d) => h('option', { value: d, text: d })));
  const silence = h('button', { type: 'button', class: 'small', text: t('alerts.silence') });
  silence.addEventListener('click', () => act(silence, () => api('/api/v1/silences', {
    method: 'POST',
    body: { host: hostOf(a), rule: pick(a, 'rule', 'name'), duration: duration.value },
  })));
  box.append(h('span', { class: 'silence' }, duration, silence));
  if (a.silenced || pick(a, 'silenced_until')) {
    box.append(h('span', { class: 'muted small', text: t('alerts.silenced_until', { time: fmtTime(pick(a, 'silenced_until')) }) }));
  }
  return box;
}

function sinceMs(a) {
  return toMs(pick(a, 'since', 'start', 'started_at', 'starts_at', 'fired_at_ms', 'breach_since_ms', 'time'));
}

function row(a) {
  const state = stateOf(a);
  const severity = pick(a, 'severity', 'level');
  const since = sinceMs(a);
  const hostName = hostOf(a);
  const host = hostName ? h('a', { href: `/hosts/${encodeURIComponent(hostName)}`, text: hostName }) : '–';
  const summary = pick(a, 'summary', 'message', 'description');
  const value = pick(a, 'value');
  return h('tr', { class: `alert-${state}` },
    h('td', null, h('span', { class: `badge sev-${severity}`, text: severityLabel(severity) })),
    h('td', null, h('span', { class: `badge alert-state-${state}`, text: alertStateLabel(state) })),
    h('td', { class: 'strong', text: pick(a, 'rule', 'name') || '–' }),
    h('td', null, host),
    h('td', { class: 'summary' }, summary || '', value != null ? h('span', { class: 'muted mono', text: ` (${value})` }) : null),
    h('td', { class: 'muted', title: fmtTime(since), text: fmtAgo(toMs(since)) }),
    h('td', null, actions(a, state)));
}

function showAlerts(data) {
  const none = !data || data.source === 'none';
  byId('no-analyzer').hidden = !none;
  byId('alerts-card').hidden = none;
  byId('show-resolved-label').hidden = none;
  if (none) return;
  const showResolved = byId('show-resolved').checked;
  const list = (data.alerts || [])
    .map((a) => [a, stateOf(a)])
    .filter(([, s]) => showResolved || s !== 'resolved')
    .sort(([a, sa], [b, sb]) => (sb === 'firing') - (sa === 'firing') || (sinceMs(b) || 0) - (sinceMs(a) || 0));
  byId('alerts-body').replaceChildren(...list.map(([a]) => row(a)));
  byId('alerts-empty').hidden = list.length > 0;
}

// One kept anomaly report: when it was made, which schedule made it (or on demand),
// its subject linking to its page, and how many hosts and anomalies it covers.
function reportRow(r) {
  const id = String(r.id);
  const name = r.name == null || r.name === ''
    ? h('span', { class: 'muted', text: t('reports.on_demand') })
    : String(r.name);
  const anomalies = Number(r.anomalies);
  return h('tr', { dataset: { report: id } },
    h('td', { class: 'nowrap', title: fmtAgo(r.created), text: fmtTime(r.created) }),
    h('td', { class: 'strong' }, name),
    h('td', { class: 'subject', title: t('reports.period', { start: fmtTime(r.start), end: fmtTime(r.end) }) },
      h('a', { href: `/reports/${encodeURIComponent(id)}`, text: r.subject || id })),
    h('td', { class: 'num', text: fmtNum(Number(r.hosts), 0) }),
    h('td', { class: anomalies > 0 ? 'num has-anomalies' : 'num muted', text: fmtNum(anomalies, 0) }));
}

// The reports section is shown only with an analyzer (without one, the empty state
// above already says where alerts and reports come from).
function showReports(data) {
  const none = !data || data.source === 'none';
  byId('reports').hidden = none;
  if (none) return;
  const list = data.reports || [];
  byId('reports-body').replaceChildren(...list.map(reportRow));
  byId('reports-empty').hidden = list.length > 0;
}

const load = serialized(async () => {
  const [alerts, reports] = await Promise.allSettled([api('/api/v1/alerts'), api('/api/v1/reports')]);
  const errors = [];
  for (const [result, show] of [[alerts, showAlerts], [reports, showReports]]) {
    try {
      if (result.status === 'rejected') throw result.reason;
      show(result.value);
    } catch (e) {
      if (e.status !== 401) errors.push(e.message);
    }
  }
  showError(errors.length ? [...new Set(errors)].join(' ') : null);
  document.body.dataset.loaded = String(Date.now());
});

function main() {
  initHeader('alerts');
  byId('show-resolved').addEventListener('change', () => load());
  initRefresh(load);
  load();
}

main();
