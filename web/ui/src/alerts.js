// /alerts: firing and recent alerts from the analyzer, with acknowledge and
// silence buttons; an empty state when no analyzer is configured.

import { t, h, byId, api, showError, initHeader, initRefresh, serialized, fmtAgo, fmtTime, toMs } from './common.js';

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

const load = serialized(async () => {
  try {
    const data = await api('/api/v1/alerts');
    const none = !data || data.source === 'none';
    byId('no-analyzer').hidden = !none;
    byId('alerts-card').hidden = none;
    byId('show-resolved-label').hidden = none;
    if (!none) {
      const showResolved = byId('show-resolved').checked;
      const list = (data.alerts || [])
        .map((a) => [a, stateOf(a)])
        .filter(([, s]) => showResolved || s !== 'resolved')
        .sort(([a, sa], [b, sb]) => (sb === 'firing') - (sa === 'firing') || (sinceMs(b) || 0) - (sinceMs(a) || 0));
      byId('alerts-body').replaceChildren(...list.map(([a]) => row(a)));
      byId('alerts-empty').hidden = list.length > 0;
    }
    showError(null);
  } catch (e) {
    if (e.status !== 401) showError(e.message);
  }
  document.body.dataset.loaded = String(Date.now());
});

function main() {
  initHeader('alerts');
  byId('show-resolved').addEventListener('change', () => load());
  initRefresh(load);
  load();
}

main();
