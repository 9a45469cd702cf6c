// Time-series charts on ECharts (the global `echarts` from the embedded
// echarts.min.js): theme that follows the page, drag-to-zoom that changes the
// page's time range, alert periods as shaded areas, and tooltips built as DOM nodes
// (ECharts' own tooltip HTML uses style attributes, which the CSP refuses).

import { t, h, LANG, effectiveTheme, fmtPct, fmtNum, fmtBytes, fmtRate, fmtTime, toMs, zoomTo } from './common.js';

const GROUP = 'hostscope';
const charts = new Set();

/** Formatters per unit: `[tooltip value, axis label]`. */
const UNITS = {
  pct: [fmtPct, (v) => `${fmtNum(v, 0)}%`],
  Bps: [fmtRate, (v) => fmtRate(v)],
  bytes: [fmtBytes, (v) => fmtBytes(v)],
  count: [(v) => fmtNum(v, 0), (v) => fmtNum(v, 0)],
  num: [(v) => fmtNum(v, 2), (v) => fmtNum(v, 2)],
};

/** Colours of alert periods by severity. */
const PERIOD_COLORS = {
  critical: 'rgba(220, 38, 38, 0.16)',
  warning: 'rgba(217, 119, 6, 0.14)',
};

const TOOLTIP_ROWS = 12;

function tooltipFormatter(format, keepOrder) {
  return (params) => {
    const list = (Array.isArray(params) ? params : [params]).filter((p) => p.seriesType === 'line');
    const box = h('div', { class: 'tt' });
    if (!list.length) return box;
    box.append(h('div', { class: 'tt-time', text: fmtTime(list[0].value[0], true) }));
    const rows = list.filter((p) => Array.isArray(p.value));
    // Stacked series read best in stack order; others biggest first.
    if (!keepOrder) rows.sort((a, b) => (b.value[1] ?? -Infinity) - (a.value[1] ?? -Infinity));
    for (const p of rows.slice(0, TOOLTIP_ROWS)) {
      const dot = h('span', { class: 'tt-dot' });
      if (typeof p.color === 'string') dot.style.backgroundColor = p.color;
      box.append(
        h('div', { class: 'tt-row' }, dot, h('span', { class: 'tt-name', text: p.seriesName }),
          h('span', { class: 'tt-val', text: p.value[1] == null ? '–' : format(p.value[1]) })),
      );
    }
    if (rows.length > TOOLTIP_ROWS) {
      box.append(h('div', { class: 'tt-more', text: t('chart.more_series', { n: rows.length - TOOLTIP_ROWS }) }));
    }
    return box;
  };
}

/**
 * One chart in `el`. `def`: `{unit, stack, area, min, max}`. Call `set()` with the
 * series and the range; the chart re-creates itself when the theme changes.
 */
export class TimeChart {
  constructor(el, def) {
    this.el = el;
    this.def = def;
    this.option = null;
    this.last = null;
    this.create();
    this.resizer = new ResizeObserver(() => this.inst && this.inst.resize());
    this.resizer.observe(el);
    charts.add(this);
  }

  create() {
    const theme = effectiveTheme() === 'dark' ? 'dark' : null;
    this.inst = window.echarts.init(this.el, theme, { renderer: 'canvas', locale: LANG === 'zh-CN' ? 'ZH' : 'EN' });
    this.inst.group = GROUP;
    // The toolbox's select-zoom reports the selected span in `batch`.
    this.inst.on('datazoom', (ev) => {
      const zoom = ((ev && ev.batch) || [ev]).find((z) => z && z.startValue != null && z.endValue != null);
      if (zoom) scheduleZoom(zoom.startValue, zoom.endValue);
    });
  }

  /** Re-create with the page's current theme (colours are picked per theme). */
  retheme() {
    this.inst.dispose();
    this.create();
    if (this.last) this.set(...this.last);
  }

  /**
   * Draw `series` (`[{name, points: [[ms, v|null], …], dashed, color}]`) over
   * `range` (`{startMs, endMs}`), shading `periods` (`[{rule, severity, start, end}]`).
   */
  set(series, range, periods = []) {
    this.last = [series, range, periods];
    const [fmtValue, fmtAxis] = UNITS[this.def.unit] || UNITS.num;
    const dark = effectiveTheme() === 'dark';
    const lines = series.map((s) => ({
      name: s.name,
      type: 'line',
      data: s.points,
      showSymbol: false,
      symbolSize: 4,
      connectNulls: false,
      stack: this.def.stack ? 'total' : undefined,
      areaStyle: this.def.area ? { opacity: this.def.stack ? 0.55 : 0.2 } : undefined,
      lineStyle: { width: this.def.stack ? 1 : 1.5, type: s.dashed ? 'dashed' : 'solid' },
      color: s.color,
      emphasis: { focus: this.def.stack ? 'none' : 'series' },
      sampling: 'lttb',
    }));
    const marks = periods
      .map((p) => {
        const start = Math.max(toMs(p.start), range.startMs);
        const end = p.end == null ? range.endMs : Math.min(toMs(p.end), range.endMs);
        if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) return null;
        const color = PERIOD_COLORS[p.severity] || PERIOD_COLORS.warning;
        return [{ xAxis: start, name: p.rule || '', itemStyle: { color } }, { xAxis: end }];
      })
      .filter(Boolean);
    if (marks.length) {
      lines.push({
        name: t('chart.alert_periods'),
        type: 'line',
        data: [],
        markArea: {
          silent: true,
          // Rule names only where there is room for them: overlapping periods would
          // print over each other in the narrow charts.
          label: { show: Boolean(this.def.wide), position: 'insideTopLeft', fontSize: 10, color: dark ? '#c3cad5' : '#5b6473' },
          data: marks,
        },
      });
    }
    this.option = {
      backgroundColor: 'transparent',
      animation: false,
      grid: { left: 8, right: 16, top: 34, bottom: 4, containLabel: true },
      legend: { type: 'scroll', top: 0, left: 0, right: 0, itemWidth: 14, itemHeight: 8, textStyle: { fontSize: 11 } },
      tooltip: {
        trigger: 'axis',
        confine: true,
        className: 'hs-tooltip',
        formatter: tooltipFormatter(fmtValue, Boolean(this.def.stack)),
        axisPointer: { type: 'line', snap: true },
      },
      // The dataZoom tool is switched on for good, so dragging over the plot selects
      // a range to zoom to. It must be shown to work, so it is shown at size zero.
      toolbox: {
        show: true,
        itemSize: 0,
        itemGap: 0,
        padding: 0,
        showTitle: false,
        iconStyle: { opacity: 0, borderWidth: 0 },
        emphasis: { iconStyle: { opacity: 0 } },
        feature: {
          dataZoom: {
            yAxisIndex: 'none',
            brushStyle: { color: 'rgba(76, 141, 255, 0.15)', borderColor: 'rgba(76, 141, 255, 0.7)', borderWidth: 1 },
          },
        },
      },
      xAxis: {
        type: 'time',
        min: range.startMs,
        max: range.endMs,
        axisLabel: { hideOverlap: true, fontSize: 11 },
        splitLine: { show: false },
      },
      yAxis: {
        type: 'value',
        min: this.def.min,
        max: this.def.max,
        interval: this.def.max === 100 ? 25 : undefined,
        axisLabel: { formatter: fmtAxis, fontSize: 11 },
        splitNumber: 4,
      },
      series: lines,
    };
    this.apply();
    this.el.dataset.points = String(series.reduce((n, s) => n + s.points.length, 0));
  }

  apply() {
    this.inst.setOption(this.option, { notMerge: true });
    this.inst.dispatchAction({ type: 'takeGlobalCursor', key: 'dataZoomSelect', dataZoomSelectActive: true });
  }

  /** Stop drawing and forget the chart. */
  dispose() {
    this.resizer.disconnect();
    this.inst.dispose();
    charts.delete(this);
  }
}

// Charts in one group share the cursor; a zoom in one of them may be reported by
// several, so the first report wins and the rest of the same turn are dropped.
let pendingZoom = null;
function scheduleZoom(startMs, endMs) {
  if (pendingZoom) return;
  pendingZoom = [startMs, endMs];
  setTimeout(() => {
    const [s, e] = pendingZoom;
    pendingZoom = null;
    zoomTo(s, e);
  }, 0);
}

window.addEventListener('hs:theme', () => {
  for (const c of charts) c.retheme();
});

/** Connect the charts made so far (shared tooltip cursor). */
export function connectCharts() {
  if (window.echarts) window.echarts.connect(GROUP);
}

/** Whether ECharts loaded. */
export function echartsLoaded() {
  return typeof window.echarts === 'object' && window.echarts !== null;
}
