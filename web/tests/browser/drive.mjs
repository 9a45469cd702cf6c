// Drives Debian's headless chromium through hostscope-web's pages with playwright-core
// (from web/ui/node_modules; it never downloads a browser). Run by web/tests/browser.rs,
// which starts influxd and the app and passes everything through the environment:
//
//   HS_BASE_URL      http://127.0.0.1:PORT
//   HS_ANALYZER_BASE_URL  the same app with an analyzer (a stand-in) configured
//   HS_USER, HS_PASSWORD
//   HS_HOST          a host with full data and details
//   HS_SILENT_HOST   a host that stopped reporting
//   HS_REPORT_ID     the one report the analyzer keeps
//   HS_REPORT_CSP    the policy a report page must be served with
//   HS_UI_DIR        web/ui (where node_modules is)
//   HS_SHOTS         directory for screenshots
//   HS_CHROMIUM      /usr/bin/chromium
//
// Every check that fails throws; the last line printed is a JSON summary.

import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env('HS_BASE_URL');
const HOST = env('HS_HOST');
const SILENT = env('HS_SILENT_HOST');
const SHOTS = env('HS_SHOTS');
const require = createRequire(path.resolve(env('HS_UI_DIR'), 'package.json'));
const { chromium } = require('playwright-core');

const summary = { checks: [] };
const check = (ok, what, detail) => {
  if (!ok) throw new Error(`check failed: ${what}${detail === undefined ? '' : `: ${JSON.stringify(detail)}`}`);
  summary.checks.push(what);
  console.log(`ok - ${what}`);
};

const profile = mkdtempSync(path.join(tmpdir(), 'hostscope-chromium-'));
mkdirSync(SHOTS, { recursive: true });
const context = await chromium.launchPersistentContext(profile, {
  executablePath: env('HS_CHROMIUM'),
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--no-first-run', '--disable-sync', '--disable-quic',
  ],
  viewport: { width: 1440, height: 900 },
  locale: 'en-US',
  timezoneId: 'UTC',
  colorScheme: 'light',
});

const problems = { csp: [], pageErrors: [], consoleErrors: [], foreign: [], failed: [] };
const ownHosts = new Set([new URL(BASE).host, new URL(env('HS_ANALYZER_BASE_URL')).host]);
try {
  // Report CSP violations from inside the page (init scripts run outside the CSP).
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber}) ${e.sample || ''}`);
    });
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (e) => problems.pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.consoleErrors.push(`${m.text()} @ ${page.url()}`);
  });
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'data:' && !ownHosts.has(u.host)) problems.foreign.push(r.url());
  });
  page.on('requestfailed', (r) => {
    // A navigation away aborts requests still running; that is not a failure.
    const f = r.failure();
    if (f && !/ERR_ABORTED/.test(f.errorText)) problems.failed.push(`${r.url()}: ${f.errorText}`);
  });
  const collectCsp = async () => {
    const v = await page.evaluate(() => window.__csp || []).catch(() => []);
    problems.csp.push(...v);
  };

  // -- not logged in: the page sends us to /login, keeping where we wanted to go
  const hostPath = `/hosts/${encodeURIComponent(HOST)}?start=now-6h&end=now`;
  const first = await page.goto(BASE + hostPath);
  check(first && first.ok(), 'login page loads');
  const loginUrl = new URL(page.url());
  check(loginUrl.pathname === '/login', 'a page needing a login redirects to /login', page.url());
  check(loginUrl.searchParams.get('next') === hostPath, 'the redirect keeps the page as next', page.url());
  const csp = first.headers()['content-security-policy'] || '';
  check(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), 'pages carry the strict CSP', csp);
  await page.screenshot({ path: path.join(SHOTS, 'login.png') });

  // -- wrong password, then the right one
  await page.fill('#username', env('HS_USER'));
  await page.fill('#password', 'wrong password');
  await page.click('#login-submit');
  await page.waitForSelector('#login-error:not([hidden])');
  check((await page.textContent('#login-error')).includes('Wrong'), 'a wrong password says so');
  await page.fill('#password', env('HS_PASSWORD'));
  await Promise.all([page.waitForURL((u) => u.pathname.startsWith('/hosts/')), page.click('#login-submit')]);
  check(page.url() === BASE + hostPath, 'after login the browser goes to next', page.url());

  // -- host page: every standard chart holds data
  const chartsReady = () => page.waitForFunction(() => {
    const el = document.getElementById('chart-cpu');
    const inst = el && window.echarts && window.echarts.getInstanceByDom(el);
    const opt = inst && inst.getOption();
    return Boolean(opt && opt.series && opt.series.length && opt.series[0].data.length > 0 && document.body.dataset.loaded);
  }, null, { timeout: 30000 });
  await chartsReady();
  const charts = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('[data-chart]')].map((el) => {
    const opt = window.echarts.getInstanceByDom(el).getOption();
    return [el.dataset.chart, {
      series: opt.series.map((s) => ({ name: s.name, points: s.data.length, marks: s.markArea ? s.markArea.data.length : 0 })),
    }];
  })));
  summary.charts = charts;
  const withData = (id) => (charts[id] ? charts[id].series.filter((s) => s.points > 0).length : 0);
  check(withData('cpu') === 7, 'the CPU chart stacks 7 modes', charts.cpu);
  check(withData('memory') === 2, 'memory and swap', charts.memory);
  check(withData('disk') >= 2, 'disk usage per mount', charts.disk);
  check(withData('diskio') >= 2, 'disk I/O per device', charts.diskio);
  check(withData('net') >= 2, 'network per interface', charts.net);
  check(withData('load') === 3, 'load 1/5/15', charts.load);
  check(withData('processes') === 4, 'process counts', charts.processes);
  const cpuPoints = charts.cpu.series[0].points;
  check(cpuPoints >= 100 && cpuPoints <= 1501, 'the CPU chart holds a sensible number of points', cpuPoints);
  const marks = Object.values(charts).flatMap((c) => c.series).reduce((n, s) => n + s.marks, 0);
  summary.alertMarks = marks;

  const tables = await page.evaluate(() => ({
    topCpu: document.querySelectorAll('#top-cpu tbody tr').length,
    topMemory: document.querySelectorAll('#top-memory tbody tr').length,
    listen: document.querySelectorAll('#listen tbody tr').length,
    logmatch: document.querySelectorAll('#logmatch tbody tr').length,
    business: document.querySelectorAll('#business [data-chart]').length,
  }));
  summary.tables = tables;
  check(tables.topCpu > 0 && tables.topMemory > 0, 'top process tables', tables);
  check(tables.listen > 0, 'listening ports', tables);
  check(tables.logmatch > 0, 'log matches', tables);

  await page.screenshot({ path: path.join(SHOTS, 'host.png'), fullPage: true });

  // -- a tooltip renders under the CSP (ECharts' own tooltip HTML would be refused)
  const cpuBox = await page.locator('#chart-cpu').boundingBox();
  await page.mouse.move(cpuBox.x + cpuBox.width * 0.6, cpuBox.y + cpuBox.height * 0.6);
  await page.waitForSelector('.hs-tooltip .tt-row', { timeout: 5000 });
  check(true, 'the chart tooltip shows');
  await page.screenshot({ path: path.join(SHOTS, 'host-tooltip.png'), clip: { x: 0, y: 0, width: 1440, height: 560 } });

  // -- drag across the CPU chart: the range becomes absolute and narrower, data reloads
  const before = await page.evaluate(() => document.body.dataset.loaded);
  await page.mouse.move(cpuBox.x + cpuBox.width * 0.45, cpuBox.y + cpuBox.height * 0.6);
  await page.mouse.down();
  await page.mouse.move(cpuBox.x + cpuBox.width * 0.6, cpuBox.y + cpuBox.height * 0.6, { steps: 8 });
  await page.mouse.move(cpuBox.x + cpuBox.width * 0.75, cpuBox.y + cpuBox.height * 0.6, { steps: 8 });
  await page.mouse.up();
  await page.waitForFunction((b) => document.body.dataset.loaded !== b && /start=\d+/.test(location.search), before, { timeout: 15000 });
  const zoomed = new URL(page.url()).searchParams;
  const span = Number(zoomed.get('end')) - Number(zoomed.get('start'));
  check(span > 0 && span < 6 * 3600e3 * 0.5, 'dragging zooms the range', { start: zoomed.get('start'), end: zoomed.get('end') });
  check(await page.inputValue('#range') === 'custom', 'the picker shows a custom range after a zoom');
  await chartsReady();
  await page.goBack();
  await page.waitForFunction(() => new URLSearchParams(location.search).get('start') === 'now-6h');
  check(true, 'back returns to the previous range');
  await chartsReady();

  // -- a custom range (the browser runs in UTC, so local input = UTC)
  const local = (ms) => new Date(ms).toISOString().slice(0, 16);
  const minute = 60000;
  const customEnd = Math.floor(Date.now() / minute) * minute - 60 * minute;
  const customStart = customEnd - 120 * minute;
  await page.selectOption('#range', 'custom');
  check(await page.isVisible('#custom-start'), 'choosing custom shows start and end');
  await page.fill('#custom-start', local(customStart));
  await page.fill('#custom-end', local(customEnd));
  let loadMark = await page.evaluate(() => document.body.dataset.loaded);
  await page.click('#custom-apply');
  await page.waitForFunction((m) => document.body.dataset.loaded !== m, loadMark);
  const custom = new URL(page.url()).searchParams;
  check(custom.get('start') === String(customStart) && custom.get('end') === String(customEnd),
    'a custom range lands in the URL as unix ms', page.url());
  // A load started before the click (the previous range) may finish first: wait
  // for the custom range's own load to reach the chart, then check it.
  await page.waitForFunction(([s, e]) => {
    const o = window.echarts.getInstanceByDom(document.getElementById('chart-cpu')).getOption();
    return o.xAxis[0].min === s && o.xAxis[0].max === e;
  }, [customStart, customEnd], { timeout: 15000 }).catch(() => {});
  const axis = await page.evaluate(() => {
    const o = window.echarts.getInstanceByDom(document.getElementById('chart-cpu')).getOption();
    return [o.xAxis[0].min, o.xAxis[0].max];
  });
  check(axis[0] === customStart && axis[1] === customEnd, 'the charts show the custom range', axis);
  await page.selectOption('#range', '6h');
  await page.waitForFunction(() => new URLSearchParams(location.search).get('start') === 'now-6h');
  await chartsReady();

  // -- auto-refresh: kept in the URL, reloads at once and then on its own
  loadMark = await page.evaluate(() => document.body.dataset.loaded);
  await page.selectOption('#refresh', '10s');
  await page.waitForFunction((m) => document.body.dataset.loaded !== m, loadMark);
  check(new URL(page.url()).searchParams.get('refresh') === '10s', 'the refresh interval is in the URL');
  loadMark = await page.evaluate(() => document.body.dataset.loaded);
  await page.waitForFunction((m) => document.body.dataset.loaded !== m, loadMark, { timeout: 15000 });
  check(true, 'auto-refresh reloads the data');
  await page.selectOption('#refresh', 'off');

  // -- dark theme: remembered, and the charts follow
  await page.click('#theme');
  check(await page.getAttribute('html', 'data-theme') === 'dark', 'the theme switch turns dark');
  await page.reload();
  await chartsReady();
  check(await page.getAttribute('html', 'data-theme') === 'dark', 'the dark theme is remembered');
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(SHOTS, 'host-dark.png'), fullPage: true });
  await page.click('#theme');
  check(await page.getAttribute('html', 'data-theme') === 'light', 'and back to light');

  // -- 中文
  await collectCsp();
  await Promise.all([page.waitForEvent('load'), page.selectOption('#lang', 'zh-CN')]);
  await chartsReady();
  check(await page.getAttribute('html', 'lang') === 'zh-CN', 'the page is now in Chinese');
  const cpuTitle = await page.textContent('#chart-cpu >> xpath=.. >> h3');
  check(cpuTitle === 'CPU 使用率', 'a chart title is translated', cpuTitle);
  check((await page.textContent('.nav a[data-nav="overview"]')) === '总览', 'the navigation is translated');
  const legend = await page.evaluate(() => window.echarts.getInstanceByDom(document.getElementById('chart-cpu')).getOption().series[0].name);
  check(legend === '用户态', 'series names are translated', legend);
  await page.screenshot({ path: path.join(SHOTS, 'host-zh.png'), fullPage: true });

  // -- overview (still in Chinese: the choice is remembered)
  await collectCsp();
  await page.goto(`${BASE}/?start=now-6h&end=now`);
  await page.waitForSelector('#hosts-body tr');
  await page.waitForFunction(() => document.body.dataset.loaded);
  const rows = await page.$$eval('#hosts-body tr', (trs) => trs.map((tr) => ({ host: tr.dataset.host, state: tr.className })));
  summary.overview = rows;
  check(rows.length >= 3, 'every host is listed', rows);
  check(rows.some((r) => r.host === SILENT && r.state.includes('silent')), 'the silent host stays, marked silent', rows);
  check(await page.getAttribute('html', 'lang') === 'zh-CN', 'the language choice is remembered');
  const sparks = await page.$$eval('svg.spark path', (ps) => ps.filter((p) => (p.getAttribute('d') || '').length > 20).length);
  check(sparks >= 2, 'hosts have sparklines', sparks);
  await page.screenshot({ path: path.join(SHOTS, 'overview-zh.png'), fullPage: true });
  await page.fill('#host-filter', HOST);
  const filtered = await page.$$eval('#hosts-body tr', (trs) => trs.map((tr) => tr.dataset.host));
  check(filtered.length === 1 && filtered[0] === HOST, 'the filter narrows the list', filtered);
  await page.fill('#host-filter', '');
  await page.click('th[data-sort="host"]');
  const sorted = await page.$$eval('#hosts-body tr', (trs) => trs.map((tr) => tr.dataset.host));
  check(JSON.stringify(sorted) === JSON.stringify([...sorted].sort()), 'sorting by host', sorted);
  await Promise.all([page.waitForEvent('load'), page.selectOption('#lang', 'en')]);
  await page.waitForFunction(() => document.body.dataset.loaded);
  await page.screenshot({ path: path.join(SHOTS, 'overview.png'), fullPage: true });

  // -- alerts
  await collectCsp();
  await page.goto(`${BASE}/alerts`);
  await page.waitForFunction(() => document.body.dataset.loaded);
  const alertsState = await page.evaluate(() => ({
    none: !document.getElementById('no-analyzer').hidden,
    table: !document.getElementById('alerts-card').hidden,
    error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
    reports: !document.getElementById('reports').hidden,
  }));
  summary.alerts = alertsState;
  check(alertsState.none && !alertsState.table && !alertsState.error, 'without an analyzer the alerts page says so', alertsState);
  check(!alertsState.reports, 'without an analyzer there is no reports list', alertsState);
  await page.screenshot({ path: path.join(SHOTS, 'alerts-none.png'), fullPage: true });

  // -- a 401 from the API sends the browser to the login page
  await collectCsp();
  await page.goto(BASE + hostPath);
  await chartsReady();
  await collectCsp();
  await context.clearCookies();
  await Promise.all([page.waitForURL((u) => u.pathname === '/login'), page.click('#refresh-now')]);
  check(new URL(page.url()).searchParams.get('next') === hostPath, 'an expired session goes to /login?next=');

  // -- a second server with an analyzer: alerts listed, acknowledge and silence go
  // through (POSTs carry the CSRF token, or the server would refuse them)
  await collectCsp();
  const withAnalyzer = env('HS_ANALYZER_BASE_URL');
  await page.goto(`${withAnalyzer}/alerts`);
  await page.waitForURL((u) => u.pathname === '/login');
  await page.fill('#username', env('HS_USER'));
  await page.fill('#password', env('HS_PASSWORD'));
  await Promise.all([page.waitForURL((u) => u.pathname === '/alerts'), page.click('#login-submit')]);
  await page.waitForFunction(() => document.body.dataset.loaded);
  const alertRows = await page.$$eval('#alerts-body tr', (trs) => trs.map((tr) => tr.textContent));
  summary.alertRows = alertRows;
  check(alertRows.length >= 2, 'the analyzer\'s alerts are listed', alertRows);
  const reportId = env('HS_REPORT_ID');
  const reportRows = await page.$$eval('#reports-body tr', (trs) => trs.map((tr) => ({
    id: tr.dataset.report,
    text: tr.textContent,
    links: [...tr.querySelectorAll('a')].map((a) => a.getAttribute('href')),
  })));
  summary.reports = reportRows;
  check(await page.isVisible('#reports') && reportRows.length === 1 && reportRows[0].id === reportId,
    'the analyzer\'s kept report is listed', reportRows);
  check(reportRows[0].links.length === 1 && reportRows[0].links[0] === `/reports/${reportId}`,
    'the report links to its page', reportRows);
  check(reportRows[0].text.includes('daily'), 'the report row names its schedule', reportRows);
  await page.screenshot({ path: path.join(SHOTS, 'alerts.png'), fullPage: true });
  const loadedAt = () => page.evaluate(() => document.body.dataset.loaded);
  let mark = await loadedAt();
  await page.click('#alerts-body tr:first-child button:has-text("Acknowledge")');
  await page.waitForFunction((m) => document.body.dataset.loaded !== m, mark);
  mark = await loadedAt();
  await page.selectOption('#alerts-body tr:first-child select', '4h');
  await page.click('#alerts-body tr:first-child button:has-text("Silence")');
  await page.waitForFunction((m) => document.body.dataset.loaded !== m, mark);
  const actionError = await page.evaluate(() => (document.getElementById('error').hidden ? null : document.getElementById('error').textContent));
  check(actionError === null, 'acknowledge and silence succeed', actionError);

  // -- a report opens as its own page: the analyzer's HTML under its own policy,
  // charts (data: images) and inline styles shown, nothing else allowed
  await collectCsp();
  const [reportResp] = await Promise.all([
    page.waitForEvent('response', (r) => new URL(r.url()).pathname === `/reports/${reportId}`),
    page.click('#reports-body a'),
  ]);
  await page.waitForLoadState('load');
  const reportHeaders = reportResp.headers();
  check(reportResp.status() === 200 && reportHeaders['content-security-policy'] === env('HS_REPORT_CSP'),
    'the report page carries the report policy', { status: reportResp.status(), csp: reportHeaders['content-security-policy'] });
  check(reportHeaders['x-frame-options'] === 'DENY' && reportHeaders['x-content-type-options'] === 'nosniff',
    'the report page cannot be framed or sniffed', reportHeaders);
  const images = await page.$$eval('img', (imgs) => imgs.map((i) => ({ src: i.src.slice(0, 22), width: i.naturalWidth })));
  summary.reportImages = images;
  check(images.length >= 1 && images.every((i) => i.src.startsWith('data:image/png') && i.width > 0),
    'the report\'s charts show', images);
  check((await page.textContent('body')).includes(env('HS_HOST')), 'the report names its host');
  await page.screenshot({ path: path.join(SHOTS, 'report.png'), fullPage: true });
  await page.goto(`${withAnalyzer}/?start=now-6h&end=now`);
  await page.waitForSelector('#hosts-body tr');
  await page.waitForFunction(() => document.body.dataset.loaded);
  const states = await page.$$eval('#hosts-body tr', (trs) => trs.map((tr) => `${tr.dataset.host} ${tr.className}`));
  check(states.includes(`${HOST} state-firing`), 'a host with a firing alert is marked firing', states);
  await page.screenshot({ path: path.join(SHOTS, 'overview-alerts.png'), fullPage: true });

  await collectCsp();
  summary.problems = problems;
  check(problems.csp.length === 0, 'no CSP violations', problems.csp);
  check(problems.foreign.length === 0, 'nothing loads from another host', problems.foreign);
  check(problems.pageErrors.length === 0, 'no script errors', problems.pageErrors);
  // The wrong password answers 401 and the expired session too: the console reports
  // those failed loads; nothing else may show up there.
  const unexpected = problems.consoleErrors.filter((m) => !/status of 401/.test(m));
  check(unexpected.length === 0, 'no console errors', unexpected);
  check(problems.failed.length === 0, 'no failed requests', problems.failed);
} catch (e) {
  // Leave evidence: where the page was, what it showed, what went wrong on the way.
  const page = context.pages()[0];
  if (page) {
    console.log(`failed at ${page.url()}`);
    await page.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true }).catch(() => {});
    problems.csp.push(...(await page.evaluate(() => window.__csp || []).catch(() => [])));
  }
  console.log(`problems: ${JSON.stringify(problems, null, 1)}`);
  throw e;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(summary));
