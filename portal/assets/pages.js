// The pages: each asks the API, draws its charts and tables, and says whether it had data.

import { apiUrl } from './api.js';
import { el, dataTable } from './dom.js';
import { chartFigure, axisOptions, colorAt, COLORS } from './charts.js';
import {
  formatInteger,
  formatNumber,
  formatFixed,
  formatSigned,
  formatPercent,
  formatDuration,
  formatSignedDuration,
  formatBucket,
  formatDateTime,
  isNumber,
} from './format.js';
import { splitList, minutesToSeconds, previousRange, stateToSearch, DEFAULT_PERIODS, DEFAULT_MAX_THEMES } from './state.js';

const PAGE_SIZE = 50;

// ---------------------------------------------------------------------------------------
// Query parameters

function rangeParams(state) {
  return { start: state.start, end: state.end, time_zone: state.tz };
}

function filterParams(state) {
  return {
    survey_id: splitList(state.survey),
    channel: splitList(state.channel),
    agent_id: splitList(state.agent),
    team_id: splitList(state.team),
  };
}

/** The filters of an interaction endpoint: interactions belong to no survey. */
function interactionFilterParams(state) {
  return { ...filterParams(state), survey_id: undefined };
}

function metricParams(state, { bucketed = true, grouped = true, interactions = false } = {}) {
  const groupBy = grouped && !(interactions && state.group_by === 'survey') ? state.group_by : '';
  return {
    ...rangeParams(state),
    granularity: bucketed && state.granularity !== 'none' ? state.granularity : undefined,
    group_by: groupBy || undefined,
    ...(interactions ? interactionFilterParams(state) : filterParams(state)),
  };
}

function slaParams(state, withResolution) {
  return {
    first_response_target: minutesToSeconds(state.frt),
    resolution_target: withResolution ? minutesToSeconds(state.rt) : undefined,
    calendar_id: state.calendar || undefined,
  };
}

/** The effective comment-themes kind (the endpoint needs one). */
export function themesKind(state) {
  return state.kind || 'nps';
}

function csvUrl(path, params) {
  return apiUrl(path, { ...params, format: 'csv' });
}

function fileName(state, what) {
  return `cxmetrics-${what}-${state.start}-to-${state.end}.csv`;
}

/** A link to another page of the portal with some state changed. */
export function pageHref(state, changes) {
  return `/${stateToSearch({ ...state, page_token: '', ...changes })}`;
}

// ---------------------------------------------------------------------------------------
// Tidy rows to series and groups

function groupLabel(key) {
  return key === '' || key === null || key === undefined ? '(none)' : key;
}

/**
 * Splits a tidy answer into buckets, groups and per-group series:
 * `{bucketed, grouped, labels: [iso], series: [row], groups: [{key, rows, total}]}`.
 */
function shape(json) {
  const names = new Set((json.columns || []).map((c) => c.name));
  const bucketed = names.has('period_start');
  const grouped = names.has('group');
  const rows = json.rows || [];
  const result = { bucketed, grouped, labels: [], series: [], groups: [] };
  if (bucketed && !grouped) {
    result.series = rows;
    result.labels = rows.map((r) => r.period_start);
  } else if (!bucketed && grouped) {
    result.groups = rows.map((r) => ({ key: r.group, rows: [], total: r }));
  } else if (bucketed && grouped) {
    if (rows.every((r) => r.period_start !== null)) {
      const byKey = new Map();
      const labels = [];
      for (const r of rows) {
        if (!byKey.has(r.group)) byKey.set(r.group, []);
        byKey.get(r.group).push(r);
        if (!labels.includes(r.period_start)) labels.push(r.period_start);
      }
      result.labels = labels;
      result.groups = [...byKey].map(([key, groupRows]) => ({ key, rows: groupRows, total: null }));
    } else {
      // No series per group: the overall series, then each group's total.
      result.series = rows.filter((r) => r.group === null);
      result.labels = result.series.map((r) => r.period_start);
      result.groups = rows.filter((r) => r.period_start === null).map((r) => ({ key: r.group, rows: [], total: r }));
    }
  }
  return result;
}

function valueAt(rows, labels, key) {
  const byStart = new Map(rows.map((r) => [r.period_start, r[key]]));
  return labels.map((l) => {
    const v = byStart.get(l);
    return isNumber(v) ? v : null;
  });
}

// ---------------------------------------------------------------------------------------
// Building blocks

function periodColumn(state) {
  return { key: 'period_start', label: 'Period', rowHeader: true, format: (v) => (v ? formatBucket(v, state.granularity, state.tz) : 'Whole range') };
}

function groupColumn(state) {
  return { key: 'group', label: groupName(state.group_by), rowHeader: true, format: (v) => (v === null ? 'All' : groupLabel(v)) };
}

function groupName(groupBy) {
  return { survey: 'Survey', channel: 'Channel', agent: 'Agent', team: 'Team', nps_category: 'NPS category' }[groupBy] || 'Group';
}

function num(key, label, format) {
  return { key, label, numeric: true, format };
}

/** The columns of a report's table: period and group first (as the API's rows), then `stats`. */
function reportColumns(state, sh, stats) {
  const columns = [];
  if (sh.bucketed) columns.push(periodColumn(state));
  if (sh.grouped) columns.push({ ...groupColumn(state), rowHeader: !sh.bucketed });
  return columns.concat(stats);
}

function rowAttrs(row) {
  return {
    'data-period-start': row.period_start ?? null,
    'data-group': row.group ?? null,
  };
}

function stat(label, value, text, extra) {
  return el(
    'div',
    { class: 'stat' },
    el('dt', null, label),
    el('dd', { 'data-value': isNumber(value) ? value : '', ...(extra || {}) }, text),
  );
}

function statList(items) {
  return el('dl', { class: 'stats' }, items);
}

function section(title, ...children) {
  const id = `section-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return el('section', { class: 'panel', 'aria-labelledby': id }, el('h2', { id }, title), children);
}

function emptyState(text) {
  return el(
    'div',
    { class: 'empty', 'data-empty': 'true' },
    el('h2', null, 'No data in this range yet'),
    el('p', null, text || 'There are no records for this range and these filters. Try a wider date range, fewer filters, or come back once data has been imported.'),
  );
}

/** Line datasets: one per group, or the overall series. */
function lineDatasets(sh, key, label, { dashed = false, colorOffset = 0, yAxisID = 'y' } = {}) {
  if (sh.grouped && sh.groups.some((g) => g.rows.length)) {
    return sh.groups.map((g, i) => ({
      type: 'line',
      label: `${groupLabel(g.key)}${label ? ` – ${label}` : ''}`,
      data: valueAt(g.rows, sh.labels, key),
      borderColor: colorAt(i + colorOffset),
      backgroundColor: colorAt(i + colorOffset),
      borderDash: dashed ? [6, 4] : undefined,
      spanGaps: false,
      pointRadius: 2,
      yAxisID,
      order: 1,
    }));
  }
  return [
    {
      type: 'line',
      label,
      data: valueAt(sh.series, sh.labels, key),
      borderColor: colorAt(colorOffset),
      backgroundColor: colorAt(colorOffset),
      borderDash: dashed ? [6, 4] : undefined,
      pointRadius: 2,
      yAxisID,
      order: 1,
    },
  ];
}

function bucketLabels(state, sh) {
  return sh.labels.map((l) => formatBucket(l, state.granularity, state.tz));
}

/** A bar chart of one value per group (a report grouped but without a granularity). */
function groupBarChart(state, sh, key, title, yTitle, yTick) {
  const groups = sh.groups.filter((g) => g.total);
  return chartFigure({
    title,
    config: {
      type: 'bar',
      data: {
        labels: groups.map((g) => groupLabel(g.key)),
        datasets: [{ label: yTitle, data: groups.map((g) => (isNumber(g.total[key]) ? g.total[key] : null)), backgroundColor: COLORS.primary }],
      },
      options: { ...axisOptions({ yTitle, yTick }), plugins: { legend: { display: false } } },
    },
  });
}

function hasTrend(sh) {
  return sh.bucketed && sh.labels.length > 0;
}

// ---------------------------------------------------------------------------------------
// Survey metric pages: NPS, CSAT, CES

async function surveyPage(ctx, { endpoint, tableName, caption, stats, summary, trend, extra }) {
  const { state } = ctx;
  const params = metricParams(state);
  const url = apiUrl(`/v1/metrics/${endpoint}`, params);
  ctx.setCsv(csvUrl(`/v1/metrics/${endpoint}`, params), fileName(state, endpoint));
  const json = await ctx.getJson(url);
  const total = json.summary && json.summary.total;
  if (!total || !total.responses) {
    ctx.content.append(emptyState());
    return 'empty';
  }
  const sh = shape(json);
  const parts = [section('Summary', statList(summary(total)))];
  const figures = [];
  if (hasTrend(sh)) {
    figures.push(trend(sh));
  } else if (sh.grouped) {
    figures.push(trend.byGroup(sh));
  }
  if (extra) figures.push(...extra(sh, json).filter(Boolean));
  const columns = reportColumns(state, sh, stats(json));
  const table = dataTable({ name: tableName, caption, columns, rows: json.rows, rowAttrs });
  parts.push(section('Charts', figures.length ? figures : el('p', { class: 'help' }, 'Choose a granularity or a grouping to see a chart.')));
  parts.push(section('Data table', table));
  ctx.content.append(...parts);
  for (const f of figures) f.draw();
  return 'ready';
}

export function npsPage(ctx) {
  const { state } = ctx;
  const trend = (sh) =>
    chartFigure({
      title: sh.grouped ? `NPS per ${groupName(state.group_by).toLowerCase()}` : 'NPS trend',
      description: 'Net Promoter Score per period, from −100 to 100.',
      config: {
        type: 'line',
        data: { labels: bucketLabels(state, sh), datasets: lineDatasets(sh, 'nps', sh.grouped ? '' : 'NPS') },
        options: axisOptions({ yTitle: 'NPS (points)', yTick: (v) => formatNumber(v, 0) }),
      },
    });
  trend.byGroup = (sh) => groupBarChart(state, sh, 'nps', `NPS per ${groupName(state.group_by).toLowerCase()}`, 'NPS (points)', (v) => formatNumber(v, 0));
  const composition = (sh) => {
    let labels;
    let rows;
    if (sh.bucketed && !sh.grouped) {
      labels = bucketLabels(state, sh);
      rows = sh.series;
    } else if (sh.grouped) {
      // Counts add up over buckets, so a group's composition is the sum of its series.
      labels = sh.groups.map((g) => groupLabel(g.key));
      rows = sh.groups.map((g) =>
        g.total ||
        g.rows.reduce(
          (acc, r) => ({ promoters: acc.promoters + r.promoters, passives: acc.passives + r.passives, detractors: acc.detractors + r.detractors }),
          { promoters: 0, passives: 0, detractors: 0 },
        ),
      );
    } else {
      return null;
    }
    const set = (key, label, color) => ({ label, data: rows.map((r) => r[key]), backgroundColor: color, stack: 'answers' });
    return chartFigure({
      title: sh.grouped ? 'Promoters, passives and detractors per group' : 'Promoters, passives and detractors per period',
      description: 'Stacked counts of answers.',
      config: {
        type: 'bar',
        data: {
          labels,
          datasets: [set('promoters', 'Promoters (9–10)', COLORS.promoters), set('passives', 'Passives (7–8)', COLORS.passives), set('detractors', 'Detractors (0–6)', COLORS.detractors)],
        },
        options: axisOptions({ yTitle: 'Responses', stacked: true, yTick: (v) => formatInteger(v), yCounts: true }),
      },
    });
  };
  return surveyPage(ctx, {
    endpoint: 'nps',
    tableName: 'nps',
    caption: 'NPS per period and group',
    summary: (t) => [
      stat('NPS', t.nps, `${formatFixed(t.nps)} ± ${formatFixed(t.margin_of_error)}`, { 'data-column': 'nps' }),
      stat('Responses', t.responses, formatInteger(t.responses), { 'data-column': 'responses' }),
      stat('Promoters', t.promoters, formatInteger(t.promoters), { 'data-column': 'promoters' }),
      stat('Passives', t.passives, formatInteger(t.passives), { 'data-column': 'passives' }),
      stat('Detractors', t.detractors, formatInteger(t.detractors), { 'data-column': 'detractors' }),
    ],
    stats: () => [
      num('nps', 'NPS', (v) => formatFixed(v)),
      num('margin_of_error', 'Margin of error (±)', (v) => formatFixed(v)),
      num('responses', 'Responses', formatInteger),
      num('promoters', 'Promoters', formatInteger),
      num('passives', 'Passives', formatInteger),
      num('detractors', 'Detractors', formatInteger),
    ],
    trend,
    extra: (sh) => [composition(sh)],
  });
}

function scoreColumns(json) {
  return (json.columns || []).map((c) => c.name).filter((n) => n.startsWith('score_counts_'));
}

export function csatPage(ctx) {
  const { state } = ctx;
  const trend = (sh) => {
    const datasets = lineDatasets(sh, 'csat', sh.grouped ? '' : 'CSAT');
    if (!sh.grouped) {
      // The Wilson interval as a band: the high edge fills down to the low edge.
      datasets.push(
        { type: 'line', label: '95% interval, low', data: valueAt(sh.series, sh.labels, 'ci_low'), borderColor: 'rgba(31, 95, 191, 0.5)', borderWidth: 1, pointRadius: 0, fill: false, order: 2 },
        { type: 'line', label: '95% interval, high', data: valueAt(sh.series, sh.labels, 'ci_high'), borderColor: 'rgba(31, 95, 191, 0.5)', borderWidth: 1, pointRadius: 0, backgroundColor: COLORS.band, fill: '-1', order: 2 },
      );
    }
    return chartFigure({
      title: sh.grouped ? `CSAT per ${groupName(state.group_by).toLowerCase()}` : 'CSAT trend with 95% Wilson interval',
      description: 'Share of satisfied responses per period, in percent.',
      config: {
        type: 'line',
        data: { labels: bucketLabels(state, sh), datasets },
        options: axisOptions({ yTitle: 'CSAT (%)', yTick: (v) => formatPercent(v, 0) }),
      },
    });
  };
  trend.byGroup = (sh) => groupBarChart(state, sh, 'csat', `CSAT per ${groupName(state.group_by).toLowerCase()}`, 'CSAT (%)', (v) => formatPercent(v, 0));
  const distribution = (sh, json) => {
    const total = json.summary.total;
    const keys = scoreColumns(json);
    if (!keys.length) return null;
    const figure = chartFigure({
      title: 'Score distribution over the range',
      description: 'Number of responses per score.',
      config: {
        type: 'bar',
        data: {
          labels: keys.map((k) => `Score ${k.slice('score_counts_'.length)}`),
          datasets: [{ label: 'Responses', data: keys.map((k) => total[k] ?? 0), backgroundColor: COLORS.primary }],
        },
        options: { ...axisOptions({ yTitle: 'Responses', yTick: (v) => formatInteger(v), yCounts: true }), plugins: { legend: { display: false } } },
      },
    });
    const rows = keys.map((k) => ({ score: Number(k.slice('score_counts_'.length)), count: total[k] ?? 0 }));
    figure.append(
      dataTable({
        name: 'csat-distribution',
        caption: 'Responses per score over the range',
        columns: [
          { key: 'score', label: 'Score', rowHeader: true, numeric: true },
          num('count', 'Responses', formatInteger),
        ],
        rows,
      }),
    );
    return figure;
  };
  return surveyPage(ctx, {
    endpoint: 'csat',
    tableName: 'csat',
    caption: 'CSAT per period and group',
    summary: (t) => [
      stat('CSAT', t.csat, formatPercent(t.csat), { 'data-column': 'csat' }),
      stat('95% interval', t.ci_low, `${formatPercent(t.ci_low)} – ${formatPercent(t.ci_high)}`, { 'data-column': 'ci_low', 'data-high': isNumber(t.ci_high) ? t.ci_high : '' }),
      stat('Mean score', t.mean_score, formatFixed(t.mean_score, 2), { 'data-column': 'mean_score' }),
      stat('Responses', t.responses, formatInteger(t.responses), { 'data-column': 'responses' }),
      stat('Satisfied', t.satisfied, formatInteger(t.satisfied), { 'data-column': 'satisfied' }),
    ],
    stats: (json) => [
      num('csat', 'CSAT', (v) => formatPercent(v)),
      num('ci_low', '95% low', (v) => formatPercent(v)),
      num('ci_high', '95% high', (v) => formatPercent(v)),
      num('mean_score', 'Mean score', (v) => formatFixed(v, 2)),
      num('responses', 'Responses', formatInteger),
      num('satisfied', 'Satisfied', formatInteger),
      ...scoreColumns(json).map((k) => num(k, `Score ${k.slice('score_counts_'.length)}`, formatInteger)),
    ],
    trend,
    extra: (sh, json) => [distribution(sh, json)],
  });
}

export function cesPage(ctx) {
  const { state } = ctx;
  const trend = (sh) => {
    const datasets = lineDatasets(sh, 'easy_share', sh.grouped ? '' : 'Easy share (%)');
    let options = axisOptions({ yTitle: 'Easy share (%)', yTick: (v) => formatPercent(v, 0) });
    if (!sh.grouped) {
      datasets.push({ ...lineDatasets(sh, 'mean_score', 'Mean score (1–7)', { dashed: true, colorOffset: 3, yAxisID: 'y2' })[0] });
      options = axisOptions({ yTitle: 'Easy share (%)', yTick: (v) => formatPercent(v, 0), y2Title: 'Mean score', y2Tick: (v) => formatNumber(v, 1), y2Max: 7 });
    }
    return chartFigure({
      title: sh.grouped ? `CES easy share per ${groupName(state.group_by).toLowerCase()}` : 'CES trend: easy share and mean score',
      description: 'Share of easy answers (5–7) per period and the mean score.',
      config: { type: 'line', data: { labels: bucketLabels(state, sh), datasets }, options },
    });
  };
  trend.byGroup = (sh) => groupBarChart(state, sh, 'easy_share', `CES easy share per ${groupName(state.group_by).toLowerCase()}`, 'Easy share (%)', (v) => formatPercent(v, 0));
  return surveyPage(ctx, {
    endpoint: 'ces',
    tableName: 'ces',
    caption: 'CES per period and group',
    summary: (t) => [
      stat('Easy share', t.easy_share, formatPercent(t.easy_share), { 'data-column': 'easy_share' }),
      stat('Mean score', t.mean_score, formatFixed(t.mean_score, 2), { 'data-column': 'mean_score' }),
      stat('Responses', t.responses, formatInteger(t.responses), { 'data-column': 'responses' }),
      stat('Easy (5–7)', t.easy, formatInteger(t.easy), { 'data-column': 'easy' }),
    ],
    stats: () => [
      num('easy_share', 'Easy share', (v) => formatPercent(v)),
      num('mean_score', 'Mean score', (v) => formatFixed(v, 2)),
      num('responses', 'Responses', formatInteger),
      num('easy', 'Easy', formatInteger),
    ],
    trend,
  });
}

// ---------------------------------------------------------------------------------------
// Response times

export async function responseTimesPage(ctx) {
  const { state } = ctx;
  const params = { ...metricParams(state, { interactions: true }), ...slaParams(state, true) };
  const url = apiUrl('/v1/metrics/response-times', params);
  ctx.setCsv(csvUrl('/v1/metrics/response-times', params), fileName(state, 'response-times'));
  const json = await ctx.getJson(url);
  const t = json.summary && json.summary.total;
  if (!t || !t.interactions) {
    ctx.content.append(emptyState());
    return 'empty';
  }
  const sh = shape(json);
  const withSla = minutesToSeconds(state.frt) !== undefined;
  const withResolutionSla = minutesToSeconds(state.rt) !== undefined;
  const summary = [
    stat('Interactions', t.interactions, formatInteger(t.interactions), { 'data-column': 'interactions' }),
    stat('Unanswered', t.unanswered, formatInteger(t.unanswered), { 'data-column': 'unanswered' }),
    stat('First response, median (p50)', t.first_response_p50_seconds, formatDuration(t.first_response_p50_seconds), { 'data-column': 'first_response_p50_seconds' }),
    stat('First response, p90', t.first_response_p90_seconds, formatDuration(t.first_response_p90_seconds), { 'data-column': 'first_response_p90_seconds' }),
    stat('First response, mean', t.first_response_mean_seconds, formatDuration(t.first_response_mean_seconds), { 'data-column': 'first_response_mean_seconds' }),
    stat('Resolution, median (p50)', t.resolution_p50_seconds, formatDuration(t.resolution_p50_seconds), { 'data-column': 'resolution_p50_seconds' }),
  ];
  if (withSla) summary.push(stat('First-response SLA attainment', t.first_response_sla_attainment, formatPercent(t.first_response_sla_attainment), { 'data-column': 'first_response_sla_attainment' }));
  if (withResolutionSla) summary.push(stat('Resolution SLA attainment', t.resolution_sla_attainment, formatPercent(t.resolution_sla_attainment), { 'data-column': 'resolution_sla_attainment' }));

  const figures = [];
  // Durations are drawn in minutes or hours, so the axis gets round steps.
  const maxSeconds = Math.max(0, ...json.rows.map((r) => (isNumber(r.first_response_p90_seconds) ? r.first_response_p90_seconds : 0)));
  const scale = maxSeconds > 3 * 3600 ? { size: 3600, unit: 'hours', short: 'h' } : { size: 60, unit: 'minutes', short: 'min' };
  const scaled = (datasets) =>
    datasets.map((d) => (d.yAxisID === 'y2' ? d : { ...d, data: d.data.map((v) => (isNumber(v) ? v / scale.size : v)) }));
  const durationTick = (v) => `${formatNumber(v, 1)} ${scale.short}`;
  const tooltip = {
    callbacks: {
      label: (item) => {
        const v = item.raw;
        if (!isNumber(v)) return `${item.dataset.label}: –`;
        return item.dataset.yAxisID === 'y2' ? `${item.dataset.label}: ${formatPercent(v)}` : `${item.dataset.label}: ${formatDuration(v * scale.size)}`;
      },
    },
  };
  const withTooltip = (options) => ({ ...options, plugins: { ...options.plugins, tooltip } });
  if (hasTrend(sh)) {
    const datasets = [
      ...lineDatasets(sh, 'first_response_p50_seconds', 'p50 first response'),
      ...lineDatasets(sh, 'first_response_p90_seconds', 'p90 first response', { dashed: true, colorOffset: sh.grouped ? 0 : 1 }),
    ];
    if (withSla && !sh.grouped) {
      datasets.push({
        type: 'bar',
        label: 'SLA attainment (%)',
        data: valueAt(sh.series, sh.labels, 'first_response_sla_attainment'),
        backgroundColor: COLORS.bars,
        borderColor: COLORS.barsBorder,
        borderWidth: 1,
        yAxisID: 'y2',
        order: 3,
      });
    }
    figures.push(
      chartFigure({
        title: sh.grouped ? `First-response time per ${groupName(state.group_by).toLowerCase()} (solid p50, dashed p90)` : 'First-response time p50 and p90, with SLA attainment',
        description: 'Median and 90th percentile of the first-response time per period.',
        tall: true,
        config: {
          type: 'bar',
          data: { labels: bucketLabels(state, sh), datasets: scaled(datasets) },
          options: withTooltip(
            axisOptions({
              yTitle: `First-response time (${scale.unit})`,
              yTick: durationTick,
              ...(withSla && !sh.grouped ? { y2Title: 'SLA attainment (%)', y2Tick: (v) => formatPercent(v, 0), y2Max: 100 } : {}),
            }),
          ),
        },
      }),
    );
  } else if (sh.grouped) {
    const groups = sh.groups.filter((g) => g.total);
    figures.push(
      chartFigure({
        title: `First-response time per ${groupName(state.group_by).toLowerCase()}`,
        config: {
          type: 'bar',
          data: {
            labels: groups.map((g) => groupLabel(g.key)),
            datasets: scaled([
              { label: 'p50', data: groups.map((g) => g.total.first_response_p50_seconds), backgroundColor: colorAt(0) },
              { label: 'p90', data: groups.map((g) => g.total.first_response_p90_seconds), backgroundColor: colorAt(1) },
            ]),
          },
          options: withTooltip(axisOptions({ yTitle: `First-response time (${scale.unit})`, yTick: durationTick })),
        },
      }),
    );
  }
  const dur = (key, label) => num(key, label, (v) => formatDuration(v));
  const stats = [
    num('interactions', 'Interactions', formatInteger),
    num('unanswered', 'Unanswered', formatInteger),
    dur('first_response_p50_seconds', 'First response p50'),
    dur('first_response_p90_seconds', 'First response p90'),
    dur('first_response_mean_seconds', 'First response mean'),
  ];
  if (withSla) {
    stats.push(
      num('first_response_sla_attainment', 'First-response SLA', (v) => formatPercent(v)),
      num('first_response_sla_met', 'SLA met', formatInteger),
      num('first_response_sla_breached', 'SLA breached', formatInteger),
    );
  }
  stats.push(dur('resolution_p50_seconds', 'Resolution p50'), dur('resolution_p90_seconds', 'Resolution p90'));
  if (withResolutionSla) stats.push(num('resolution_sla_attainment', 'Resolution SLA', (v) => formatPercent(v)));
  const table = dataTable({ name: 'response-times', caption: 'Response times per period and group', columns: reportColumns(state, sh, stats), rows: json.rows, rowAttrs });
  const note = state.calendar ? el('p', { class: 'help' }, `Durations are counted in the business hours of calendar “${state.calendar}”.`) : null;
  ctx.content.append(
    section('Summary', statList(summary), note),
    section('Charts', figures.length ? figures : el('p', { class: 'help' }, 'Choose a granularity or a grouping to see a chart.')),
    section('Data table', table),
  );
  for (const f of figures) f.draw();
  return 'ready';
}

// ---------------------------------------------------------------------------------------
// Retention and cohorts

/** The shade step (0..9) of a rate, relative to the highest rate `top` (so small rates still differ). */
function heatStep(rate, top) {
  if (!isNumber(rate) || !(top > 0)) return null;
  return Math.min(9, Math.max(0, Math.floor((rate / top) * 9.999)));
}

export async function retentionPage(ctx) {
  const { state } = ctx;
  const granularity = state.granularity !== 'none' ? state.granularity : undefined;
  const byCategory = state.nps_category === 'true';
  const params = { ...rangeParams(state), granularity, group_by_nps_category: byCategory || undefined };
  const cohortGranularity = granularity || 'month';
  const periods = Number(state.periods) > 0 ? Math.min(60, Math.round(Number(state.periods))) : DEFAULT_PERIODS;
  const cohortParams = { ...rangeParams(state), granularity: cohortGranularity, periods };
  const url = apiUrl('/v1/metrics/retention', params);
  const cohortUrl = apiUrl('/v1/metrics/cohort-retention', cohortParams);
  ctx.setCsv(csvUrl('/v1/metrics/retention', params), fileName(state, 'retention'));
  const [json, cohorts] = await Promise.all([ctx.getJson(url), ctx.getJson(cohortUrl)]);
  const t = json.summary && json.summary.total;
  const noCustomers = !t || (!t.start_customers && !t.end_customers && !t.new_customers);
  if (noCustomers && !(cohorts.rows || []).some((r) => r.size > 0)) {
    ctx.content.append(emptyState());
    return 'empty';
  }
  const sh = shape(json);
  const summary = statList([
    stat('Retention rate', t.retention_rate, formatPercent(t.retention_rate), { 'data-column': 'retention_rate' }),
    stat('Churn rate', t.churn_rate, formatPercent(t.churn_rate), { 'data-column': 'churn_rate' }),
    stat('Customers at start', t.start_customers, formatInteger(t.start_customers), { 'data-column': 'start_customers' }),
    stat('Customers at end', t.end_customers, formatInteger(t.end_customers), { 'data-column': 'end_customers' }),
    stat('New customers', t.new_customers, formatInteger(t.new_customers), { 'data-column': 'new_customers' }),
    stat('Retained', t.retained, formatInteger(t.retained), { 'data-column': 'retained' }),
  ]);
  const figures = [];
  if (hasTrend(sh)) {
    figures.push(
      chartFigure({
        title: 'Retention rate per period',
        description: 'Share of the customers active at the start of each period still active at its end.',
        config: {
          type: 'bar',
          data: {
            labels: bucketLabels(state, sh),
            datasets: [
              { type: 'line', label: 'Retention rate (%)', data: valueAt(sh.series, sh.labels, 'retention_rate'), borderColor: COLORS.primary, backgroundColor: COLORS.primary, pointRadius: 2, order: 1 },
              { type: 'bar', label: 'New customers', data: valueAt(sh.series, sh.labels, 'new_customers'), backgroundColor: COLORS.bars, borderColor: COLORS.barsBorder, borderWidth: 1, yAxisID: 'y2', order: 2 },
            ],
          },
          options: axisOptions({ yTitle: 'Retention rate (%)', yTick: (v) => formatPercent(v, 0), y2Title: 'New customers', y2Tick: (v) => formatInteger(v), y2Counts: true }),
        },
      }),
    );
  }
  const stats = [
    num('retention_rate', 'Retention', (v) => formatPercent(v)),
    num('churn_rate', 'Churn', (v) => formatPercent(v)),
    num('start_customers', 'At start', formatInteger),
    num('end_customers', 'At end', formatInteger),
    num('new_customers', 'New', formatInteger),
    num('retained', 'Retained', formatInteger),
    num('churned', 'Churned', formatInteger),
  ];
  if (sh.grouped) {
    figures.push(groupBarChart(state, sh, 'retention_rate', 'Retention rate per NPS category (latest NPS answer before the range)', 'Retention rate (%)', (v) => formatPercent(v, 0)));
  }
  const table = dataTable({
    name: 'retention',
    caption: sh.grouped ? 'Retention per period (all customers) and per NPS category (whole range)' : 'Retention per period',
    columns: reportColumns({ ...state, group_by: 'nps_category' }, sh, stats),
    rows: json.rows,
    rowAttrs,
  });

  ctx.content.append(
    section('Summary', summary),
    section('Retention over time', figures.length ? figures : el('p', { class: 'help' }, 'Choose a granularity to see retention per period.'), table),
    section('Cohort retention', cohortHeatMap(state, cohorts, cohortGranularity, cohortUrl, csvUrl('/v1/metrics/cohort-retention', cohortParams))),
  );
  for (const f of figures) f.draw();
  return 'ready';
}

function cohortHeatMap(state, cohorts, granularity, cohortUrl, cohortCsv) {
  const rows = cohorts.rows || [];
  if (!rows.length) return el('p', { class: 'help' }, 'No cohorts in this range yet.');
  const byStart = new Map();
  let maxOffset = 0;
  for (const r of rows) {
    if (!byStart.has(r.period_start)) byStart.set(r.period_start, { start: r.period_start, size: r.size, cells: [] });
    byStart.get(r.period_start).cells[r.offset] = r;
    maxOffset = Math.max(maxOffset, r.offset);
  }
  const unit = { day: 'Day', week: 'Week', month: 'Month', quarter: 'Quarter', year: 'Year' }[granularity];
  // Offset 0 is 100% by definition; shades follow the highest rate after it.
  const later = rows.filter((r) => r.offset > 0 && isNumber(r.rate)).map((r) => r.rate);
  const top = later.length ? Math.max(...later) : 100;
  const offsets = Array.from({ length: maxOffset + 1 }, (_, i) => i);
  const head = el(
    'tr',
    null,
    el('th', { scope: 'col' }, 'Cohort'),
    el('th', { scope: 'col', class: 'num' }, 'Customers'),
    offsets.map((k) => el('th', { scope: 'col', class: 'num' }, `${unit} ${k}`)),
  );
  const body = [...byStart.values()].map((c) =>
    el(
      'tr',
      { 'data-period-start': c.start },
      el('th', { scope: 'row', 'data-column': 'period_start', 'data-value': c.start }, formatBucket(c.start, granularity, state.tz)),
      el('td', { class: 'num', 'data-column': 'size', 'data-value': c.size }, formatInteger(c.size)),
      offsets.map((k) => {
        const cell = c.cells[k];
        const rate = cell ? cell.rate : null;
        const step = k === 0 && isNumber(rate) ? 9 : heatStep(rate, top);
        return el(
          'td',
          {
            class: `num heat ${step === null ? 'heat-none' : `heat-${step}`}`,
            'data-column': `rate_${k}`,
            'data-offset': k,
            'data-value': isNumber(rate) ? rate : '',
            'data-active': cell ? cell.active : '',
            title: cell ? `${formatInteger(cell.active)} of ${formatInteger(c.size)} active` : null,
          },
          isNumber(rate) ? formatPercent(rate, rate < 10 && k > 0 ? 1 : 0) : '–',
        );
      }),
    ),
  );
  const caption = `Share of each cohort (customers by ${unit.toLowerCase()} of first activity) active ${unit.toLowerCase()}s later`;
  const table = el('table', { class: 'data-table heatmap', 'data-table': 'cohort-retention', 'data-api-url': cohortUrl }, el('caption', null, caption), el('thead', null, head), el('tbody', null, body));
  const legend = el(
    'p',
    { class: 'heat-legend', 'aria-hidden': 'true' },
    `Shade: share active, from 0 (lightest) to ${formatPercent(top, 1)} or more (darkest): `,
    [0, 2, 4, 6, 8, 9].map((s) => el('span', { class: `heat heat-${s}` }, formatPercent((s / 10) * top, 1))),
  );
  const download = csvButton('csv-download-cohorts', cohortCsv, fileName(state, 'cohort-retention'), 'Download cohorts CSV');
  return el('div', null, legend, el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption }, table), el('p', null, download));
}

/** A button that downloads an API CSV (wired up by app.js through its class). */
function csvButton(id, url, filename, label) {
  return el('button', { type: 'button', class: 'button button-secondary button-small csv-button', id, 'data-api-url': url, 'data-filename': filename }, label);
}

// ---------------------------------------------------------------------------------------
// Comment themes

export async function commentThemesPage(ctx) {
  const { state } = ctx;
  const kind = themesKind(state);
  const maxThemes = Number(state.max_themes) > 0 ? Math.min(100, Math.round(Number(state.max_themes))) : DEFAULT_MAX_THEMES;
  const params = { ...rangeParams(state), ...filterParams(state), kind, max_themes: maxThemes };
  const url = apiUrl('/v1/metrics/comment-themes', params);
  ctx.setCsv(csvUrl('/v1/metrics/comment-themes', params), fileName(state, `comment-themes-${kind}`));
  const json = await ctx.getJson(url);
  const counts = json.comments || {};
  if (!counts.comments) {
    ctx.content.append(emptyState('There are no comments for this range, survey kind and these filters yet.'));
    return 'empty';
  }
  const sides = {
    negative: (json.rows || []).filter((r) => r.side === 'negative'),
    positive: (json.rows || []).filter((r) => r.side === 'positive'),
  };
  const sideNames = {
    nps: { negative: 'detractors (0–6)', positive: 'promoters (9–10)' },
    csat: { negative: 'unsatisfied (below the top two points)', positive: 'satisfied (top two points)' },
    ces: { negative: 'not easy (below the top three points)', positive: 'easy (top three points)' },
  }[kind];
  const summary = statList([
    stat('Comments', counts.comments, formatInteger(counts.comments), { 'data-column': 'comments' }),
    stat(`From ${sideNames.negative}`, counts.negative_comments, formatInteger(counts.negative_comments), { 'data-column': 'negative_comments' }),
    stat(`From ${sideNames.positive}`, counts.positive_comments, formatInteger(counts.positive_comments), { 'data-column': 'positive_comments' }),
  ]);
  const sideTable = (side) => {
    const rows = sides[side];
    if (!rows.length) return el('p', { class: 'help' }, 'No theme stands out on this side (themes need at least 5 mentions).');
    return dataTable({
      name: 'comment-themes',
      extraAttrs: { 'data-side': side },
      caption: `Themes that set ${sideNames[side]} apart`,
      rowAttrs: (r) => ({ 'data-phrase': r.phrase }),
      columns: [
        {
          key: 'phrase',
          label: 'Theme',
          rowHeader: true,
          render: (r) => el('a', { href: pageHref(state, { page: 'responses', kind, comment_query: r.phrase }), 'data-nav': 'responses' }, r.phrase),
        },
        {
          key: 'z_score',
          label: 'z-score',
          numeric: true,
          render: (r, v) => el('span', null, formatSigned(v, 2), Math.abs(v) > 1.96 ? el('span', { class: 'badge' }, 'significant') : null),
        },
        num('mentions', 'Mentions', formatInteger),
        num('negative_mentions', side === 'negative' ? 'On this side' : 'Negative side', formatInteger),
        num('positive_mentions', side === 'positive' ? 'On this side' : 'Positive side', formatInteger),
        {
          key: 'examples',
          label: 'Example responses',
          value: (r) => [r.example_response_id_1, r.example_response_id_2, r.example_response_id_3].filter(Boolean).join(' '),
          render: (r) => {
            const ids = [r.example_response_id_1, r.example_response_id_2, r.example_response_id_3].filter(Boolean);
            return el('span', { class: 'ids' }, ids.map((id) => el('code', null, id)));
          },
        },
      ],
      rows,
    });
  };
  ctx.content.append(
    section('Summary', summary, el('p', { class: 'help' }, 'A theme is a word or two-word phrase. Its z-score (log-odds with an informative prior) says how strongly it sets one side apart; beyond ±1.96 it is significant. Follow a theme to read its comments.')),
    section(`Negative side: ${sideNames.negative}`, sideTable('negative')),
    section(`Positive side: ${sideNames.positive}`, sideTable('positive')),
  );
  return 'ready';
}

// ---------------------------------------------------------------------------------------
// Drill-down listings

function listingColumn(column, state) {
  const base = { key: column.name, label: column.name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase()) };
  if (column.type === 'time') return { ...base, format: (v) => formatDateTime(v, state.tz) };
  if (column.type === 'integer' || column.type === 'number') return { ...base, numeric: true, format: (v) => formatNumber(v, 2) };
  if (column.name.endsWith('_id')) base.label = base.label.replace(/ id$/, ' ID');
  if (column.name === 'attributes') return { ...base, format: (v) => (!v || v === '{}' ? '–' : v) };
  if (column.name === 'comment') return { ...base, format: (v) => v || '–', className: 'wrap' };
  return base;
}

async function listingPage(ctx, { endpoint, tableName, caption, withKind }) {
  const { state } = ctx;
  const base = { ...rangeParams(state), ...(withKind ? filterParams(state) : interactionFilterParams(state)) };
  if (withKind) {
    base.kind = state.kind || undefined;
    base.comment_query = state.comment_query || undefined;
  }
  const url = apiUrl(`/v1/${endpoint}`, { ...base, page_size: PAGE_SIZE, page_token: state.page_token || undefined });
  ctx.setCsv(csvUrl(`/v1/${endpoint}`, base), fileName(state, endpoint));
  const json = await ctx.getJson(url);
  const rows = json.rows || [];
  if (!rows.length && !state.page_token) {
    ctx.content.append(emptyState(state.comment_query ? `No comments match “${state.comment_query}” in this range.` : undefined));
    return 'empty';
  }
  // The columns people read first come first; the rest keep the API's order.
  const first = ['response_id', 'interaction_id', 'respond_time', 'open_time', 'kind', 'score', 'comment', 'channel', 'agent_id', 'team_id', 'survey_id'];
  const rank = (name) => (first.includes(name) ? first.indexOf(name) : first.length);
  const ordered = [...(json.columns || [])].sort((a, b) => rank(a.name) - rank(b.name));
  const columns = ordered.map((c) => listingColumn(c, state));
  if (columns.length) columns[0].rowHeader = true;
  const table = dataTable({ name: tableName, caption, columns, rows, extraAttrs: { 'data-page-token': state.page_token || '' } });
  const stack = (history.state && history.state.tokens) || [];
  const pageNumber = stack.length + 1;
  const pager = el(
    'nav',
    { class: 'pager', 'aria-label': 'Pages of results' },
    el('button', { type: 'button', class: 'button button-secondary', id: 'page-first', disabled: !state.page_token }, 'First page'),
    el('button', { type: 'button', class: 'button button-secondary', id: 'page-previous', disabled: !state.page_token || !stack.length }, 'Previous page'),
    el('span', { class: 'pager-label', id: 'page-label' }, state.page_token ? `Page ${stack.length ? formatInteger(pageNumber) : 'n'} · ${formatInteger(rows.length)} rows` : `Page 1 · ${formatInteger(rows.length)} rows`),
    el('button', { type: 'button', class: 'button', id: 'page-next', disabled: !json.next_page_token, 'data-token': json.next_page_token || '' }, 'Next page'),
  );
  const intro = state.comment_query
    ? el('p', { class: 'help' }, `Responses whose comment matches “${state.comment_query}” (same stemming as comment themes).`)
    : null;
  ctx.content.append(section(caption, intro, table, pager));
  ctx.onPager(pager, json.next_page_token || '');
  return 'ready';
}

export function responsesPage(ctx) {
  return listingPage(ctx, { endpoint: 'survey-responses', tableName: 'responses', caption: 'Survey responses', withKind: true });
}

export function interactionsPage(ctx) {
  return listingPage(ctx, { endpoint: 'interactions', tableName: 'interactions', caption: 'Interactions', withKind: false });
}

// ---------------------------------------------------------------------------------------
// Overview

/** Two-proportion z-test of retained / start customers between two periods. */
function retentionChange(now, before) {
  if (!now || !before || !now.start_customers || !before.start_customers || !isNumber(now.retention_rate) || !isNumber(before.retention_rate)) return null;
  const n1 = now.start_customers;
  const n2 = before.start_customers;
  const p1 = now.retained / n1;
  const p2 = before.retained / n2;
  const p = (now.retained + before.retained) / (n1 + n2);
  const se = Math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2));
  const z = se > 0 ? (p1 - p2) / se : 0;
  return { delta: now.retention_rate - before.retention_rate, significant: Math.abs(z) > 1.96, z };
}

function card({ metric, title, value, text, change, better, count, countLabel, href, note, csv }) {
  const hasChange = change && isNumber(change.delta);
  const significant = Boolean(hasChange && change.significant);
  let direction = 'flat';
  if (hasChange && change.delta > 0) direction = 'up';
  if (hasChange && change.delta < 0) direction = 'down';
  const improving = hasChange && change.delta !== 0 ? (better === 'lower' ? change.delta < 0 : change.delta > 0) : null;
  const arrow = { up: '▲', down: '▼', flat: '■' }[direction];
  const changeText = hasChange ? `${change.text} vs previous period` : 'No previous period to compare';
  let sigText;
  if (!hasChange) sigText = '';
  else if (change.untested) sigText = change.untested;
  else sigText = significant ? `Significant ${improving ? 'improvement' : 'decline'}` : 'Not significant';
  const id = `card-${metric}`;
  return el(
    'article',
    { class: `card${significant ? ' card-significant' : ''}`, 'data-metric': metric, 'data-significant': String(significant), 'data-count': isNumber(count) ? count : '', 'aria-labelledby': id },
    el('h2', { id, class: 'card-title' }, title),
    el('p', { class: 'card-value', 'data-value': isNumber(value) ? value : '' }, text),
    el(
      'p',
      { class: `card-change ${improving === null ? 'neutral' : improving ? 'good' : 'bad'}`, 'data-delta': hasChange ? change.delta : '', 'data-significant': String(significant) },
      hasChange ? el('span', { class: 'arrow', 'aria-hidden': 'true' }, arrow) : null,
      ' ',
      changeText,
    ),
    el('p', { class: 'card-significance' }, significant ? el('span', { class: 'badge badge-significant' }, '★ Significant') : null, significant ? ` ${sigText.replace(/^Significant /, '')}` : sigText),
    el('p', { class: 'card-count', 'data-count': isNumber(count) ? count : '' }, `${formatInteger(count)} ${countLabel}`),
    note ? el('p', { class: 'card-note' }, note) : null,
    el(
      'p',
      { class: 'card-link' },
      el('a', { href, 'data-nav': 'page' }, 'Details', el('span', { class: 'visually-hidden' }, ` of ${title}`)),
      csv ? csvButton(`csv-download-${metric}`, csv.url, csv.filename, 'CSV') : null,
    ),
  );
}

export async function overviewPage(ctx) {
  const { state } = ctx;
  const survey = { ...rangeParams(state), ...filterParams(state), compare_previous: true };
  const times = { ...survey, ...interactionFilterParams(state), ...slaParams(state, false) };
  const prev = previousRange(state.start, state.end);
  const urls = {
    nps: apiUrl('/v1/metrics/nps', survey),
    csat: apiUrl('/v1/metrics/csat', survey),
    ces: apiUrl('/v1/metrics/ces', survey),
    times: apiUrl('/v1/metrics/response-times', times),
    retention: apiUrl('/v1/metrics/retention', rangeParams(state)),
    retentionPrevious: apiUrl('/v1/metrics/retention', { start: prev.start, end: prev.end, time_zone: state.tz }),
  };
  // The overview has no single answer to download: each card offers its own API CSV.
  ctx.setCsv(null);
  const csvOf = (path, params, what) => ({ url: csvUrl(path, params), filename: fileName(state, what) });
  const [nps, csat, ces, rt, ret, retPrev] = await Promise.all(Object.values(urls).map((u) => ctx.getJson(u)));
  const s = (r) => r.summary || {};
  const n = s(nps).total || {};
  const c = s(csat).total || {};
  const e = s(ces).total || {};
  const t = s(rt).total || {};
  const r = s(ret).total || {};
  const rp = s(retPrev).total || null;
  const empty = !n.responses && !c.responses && !e.responses && !t.interactions && !r.start_customers && !r.end_customers && !r.new_customers;
  if (empty) {
    ctx.content.append(emptyState());
    return 'empty';
  }
  const href = (page) => pageHref(state, { page });
  const surveyChange = (report, digits, unit) => {
    const ch = s(report).change;
    if (!ch || !isNumber(ch.delta)) return null;
    return { delta: ch.delta, significant: ch.significant, text: `${formatSigned(ch.delta, digits)} ${unit}` };
  };
  const prevT = s(rt).previous || {};
  const pctChange = (key) => {
    if (!isNumber(t[key]) || !isNumber(prevT[key])) return null;
    const delta = t[key] - prevT[key];
    return { delta, significant: false, untested: 'No significance test for percentiles', text: formatSignedDuration(delta) };
  };
  const slaCh = s(rt).change && s(rt).change.first_response_attainment;
  const retCh = retentionChange(r, rp);
  const frtMinutes = minutesToSeconds(state.frt);
  const cards = [
    card({ csv: csvOf('/v1/metrics/nps', survey, 'nps'), metric: 'nps', title: 'NPS', value: n.nps, text: formatFixed(n.nps), change: surveyChange(nps, 1, 'points'), count: n.responses, countLabel: 'responses', href: href('nps') }),
    card({ csv: csvOf('/v1/metrics/csat', survey, 'csat'), metric: 'csat', title: 'CSAT', value: c.csat, text: formatPercent(c.csat), change: surveyChange(csat, 1, 'points'), count: c.responses, countLabel: 'responses', href: href('csat') }),
    card({ csv: csvOf('/v1/metrics/ces', survey, 'ces'), metric: 'ces', title: 'CES easy share', value: e.easy_share, text: formatPercent(e.easy_share), change: surveyChange(ces, 1, 'points'), count: e.responses, countLabel: 'responses', href: href('ces'), note: isNumber(e.mean_score) ? `Mean score ${formatNumber(e.mean_score, 2)} of 7` : null }),
    card({ csv: csvOf('/v1/metrics/response-times', times, 'response-times'), metric: 'frt-p50', title: 'First response, median', value: t.first_response_p50_seconds, text: formatDuration(t.first_response_p50_seconds), change: pctChange('first_response_p50_seconds'), better: 'lower', count: t.interactions, countLabel: 'interactions', href: href('response-times') }),
    card({ csv: csvOf('/v1/metrics/response-times', times, 'response-times'), metric: 'frt-p90', title: 'First response, p90', value: t.first_response_p90_seconds, text: formatDuration(t.first_response_p90_seconds), change: pctChange('first_response_p90_seconds'), better: 'lower', count: t.interactions, countLabel: 'interactions', href: href('response-times') }),
    card({
      metric: 'sla',
      csv: csvOf('/v1/metrics/response-times', times, 'response-times'),
      title: 'First-response SLA',
      value: t.first_response_sla_attainment,
      text: frtMinutes ? formatPercent(t.first_response_sla_attainment) : 'No target set',
      change: slaCh && isNumber(slaCh.delta) ? { delta: slaCh.delta, significant: slaCh.significant, text: `${formatSigned(slaCh.delta, 1)} points` } : null,
      count: t.interactions,
      countLabel: 'interactions',
      href: href('response-times'),
      note: frtMinutes ? `Answered within ${formatDuration(frtMinutes)}${state.calendar ? ' of business hours' : ''}` : 'Set a first-response target to measure attainment.',
    }),
    card({
      metric: 'retention',
      csv: csvOf('/v1/metrics/retention', rangeParams(state), 'retention'),
      title: 'Retention',
      value: r.retention_rate,
      text: formatPercent(r.retention_rate),
      change: retCh ? { ...retCh, text: `${formatSigned(retCh.delta, 1)} points` } : null,
      count: r.start_customers,
      countLabel: 'customers at start',
      href: href('retention'),
      note: 'All customers; compared with the same number of days before.',
    }),
  ];
  ctx.content.append(el('div', { class: 'cards' }, cards));
  return 'ready';
}

export const RENDERERS = {
  overview: overviewPage,
  nps: npsPage,
  csat: csatPage,
  ces: cesPage,
  'response-times': responseTimesPage,
  retention: retentionPage,
  'comment-themes': commentThemesPage,
  responses: responsesPage,
  interactions: interactionsPage,
};
