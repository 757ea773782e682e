// Chart.js helpers: one palette with enough contrast on white, chart lifecycle, and the
// figure + data table pair every chart comes in.

import { el } from './dom.js';

// Each colour has at least 4.5:1 contrast against the white page.
export const PALETTE = ['#1f5fbf', '#b3261e', '#1b7a3d', '#8a4b00', '#6a3d9a', '#00677a', '#a3005c', '#4d5b00', '#5c5c5c', '#003f88'];

export const COLORS = {
  promoters: '#1b7a3d',
  passives: '#6b6b6b',
  detractors: '#b3261e',
  primary: '#1f5fbf',
  secondary: '#8a4b00',
  band: 'rgba(31, 95, 191, 0.15)',
  bars: 'rgba(27, 122, 61, 0.55)',
  barsBorder: '#1b7a3d',
};

let active = [];

function chartLib() {
  return window.Chart;
}

export function setupCharts() {
  const Chart = chartLib();
  if (!Chart) return;
  Chart.defaults.animation = false;
  Chart.defaults.responsive = true;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.color = '#1f2328';
  Chart.defaults.borderColor = '#d0d7de';
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily || 'system-ui, sans-serif';
  Chart.defaults.font.size = 13;
  Chart.defaults.plugins.legend.labels.boxWidth = 14;
  Chart.defaults.plugins.tooltip.backgroundColor = '#1f2328';
}

/** Destroys every chart of the previous view. */
export function destroyCharts() {
  for (const chart of active) chart.destroy();
  active = [];
}

/**
 * A chart in a figure: a heading, a canvas with a text label, and whatever follows
 * (usually its data table). Returns the figure; the chart is drawn once it is attached.
 */
export function chartFigure({ title, description, config, tall = false }) {
  const canvas = el('canvas', { role: 'img', 'aria-label': `${title}. ${description || 'The numbers are in the table below.'}` });
  const frame = el('div', { class: tall ? 'chart-frame chart-frame-tall' : 'chart-frame' }, canvas);
  const figure = el('figure', { class: 'chart' }, el('figcaption', { class: 'chart-title' }, title), frame);
  figure.draw = () => {
    const Chart = chartLib();
    if (!Chart) {
      frame.replaceChildren(el('p', { class: 'help' }, 'The chart library did not load; the numbers are in the table.'));
      return;
    }
    active.push(new Chart(canvas, config));
  };
  return figure;
}

/**
 * Options shared by line/bar charts over buckets. `yCounts` / `y2Counts`: the axis counts things, so its ticks
 * are whole numbers (without it, small counts get steps of 0.5 and repeated labels).
 */
export function axisOptions({ yTitle, yTick, y2Title, y2Tick, stacked = false, y2Max, yMin, yMax, indexAxis, yCounts = false, y2Counts = false } = {}) {
  const scales = {
    x: { stacked, ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 12 } },
    y: {
      stacked,
      title: yTitle ? { display: true, text: yTitle } : undefined,
      ticks: yTick || yCounts ? { callback: yTick ? (v) => yTick(v) : undefined, precision: yCounts ? 0 : undefined } : undefined,
      min: yMin,
      max: yMax,
    },
  };
  if (y2Title) {
    scales.y2 = {
      position: 'right',
      title: { display: true, text: y2Title },
      ticks: y2Tick || y2Counts ? { callback: y2Tick ? (v) => y2Tick(v) : undefined, precision: y2Counts ? 0 : undefined } : undefined,
      grid: { drawOnChartArea: false },
      min: 0,
      max: y2Max,
    };
  }
  return {
    indexAxis,
    interaction: { mode: 'index', intersect: false },
    scales,
    plugins: {
      legend: { position: 'bottom' },
    },
  };
}

export function colorAt(i) {
  return PALETTE[i % PALETTE.length];
}
