// A uPlot time-series chart of Graphite targets (/render?format=json), one
// request per refresh for all its targets; re-renders on resize.
import uPlot from 'uplot';
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.js';
import { get, query } from './api.js';
import { num } from './format.js';

export const RANGES = ['-15min', '-1h', '-6h', '-24h', '-7d'];

const COLORS = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16', '#f97316', '#64748b'];

// Render answer -> uPlot data: x = union of timestamps, one y per series.
export function toColumns(series) {
  const xs = new Set();
  for (const s of series) for (const [, t] of s.datapoints) xs.add(t);
  const x = [...xs].sort((a, b) => a - b);
  const index = new Map(x.map((t, i) => [t, i]));
  const ys = series.map((s) => {
    const y = new Array(x.length).fill(null);
    for (const [v, t] of s.datapoints) y[index.get(t)] = v;
    return y;
  });
  return [x, ...ys];
}

const countPoints = (cols) => cols.slice(1).reduce((n, y) => n + y.filter((v) => v !== null).length, 0);

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// Axis ticks: `fmt(v, incr)` gets the tick step so it can pick its precision.
function options(width, series, cols, fmt, zero) {
  const axis = { stroke: cssVar('--muted'), grid: { stroke: cssVar('--grid'), width: 1 }, ticks: { show: false },
    font: '11px system-ui, sans-serif' };
  return {
    width, height: 180,
    legend: { show: true, live: true },
    cursor: { points: { size: 5 } },
    scales: { x: { time: true }, y: zero ? { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } : {} },
    axes: [axis, { ...axis, size: 64, values: (u, vals, ax, space, incr) => vals.map((v) => fmt(v, incr)) }],
    series: [{}, ...series.map((s, i) => {
      const sparse = cols[i + 1].filter((v) => v !== null).length < 40;
      return {
        label: s.target, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false,
        points: { show: sparse, size: 4, fill: COLORS[i % COLORS.length] }, value: (u, v) => (v === null ? '–' : fmt(v)),
      };
    })],
  };
}

// zero: the y axis starts at 0 (rates, ratios); otherwise it fits the data.
// `none`: what to say while no series matches (defaults to naming the targets).
export function Chart({ title, targets, from = '-1h', fmt = num, refreshMs = 15000, zero = true, none }) {
  const box = useRef(null);
  const plot = useRef(null);
  const [state, setState] = useState({ series: null, error: null });
  const points = state.series ? countPoints(toColumns(state.series)) : 0;
  const key = targets.join('\n');

  useEffect(() => {
    let alive = true;
    setState({ series: null, error: null });
    const load = () => get(`/render?${query({ target: targets, from, format: 'json', maxDataPoints: 400 })}`)
      .then((series) => alive && setState({ series, error: null }), (error) => alive && setState({ series: null, error }));
    load();
    const t = setInterval(() => { if (!document.hidden) load(); }, refreshMs);
    return () => { alive = false; clearInterval(t); };
  }, [key, from]);

  useEffect(() => {
    const el = box.current;
    if (!el || points === 0) return undefined;
    const cols = toColumns(state.series);
    plot.current?.destroy();
    plot.current = new uPlot(options(el.clientWidth || 400, state.series, cols, fmt, zero), cols, el);
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: el.clientWidth, height: 180 }));
    ro.observe(el);
    return () => { ro.disconnect(); plot.current?.destroy(); plot.current = null; };
  }, [state.series]);

  let note = null;
  if (state.error) note = html`<div class="error">${state.error.describe ? state.error.describe() : String(state.error)}</div>`;
  else if (!state.series) note = html`<div class="empty">loading…</div>`;
  else if (state.series.length === 0) note = html`<div class="empty">${none || `no series match ${targets.join(', ')}`}</div>`;
  else if (points === 0) note = html`<div class="empty">no points in the range yet</div>`;
  return html`<div class="chart" data-chart=${title} data-points=${points}>
    <div class="chart-title">${title}</div>
    ${note}
    <div ref=${box} class="plot" style=${points ? '' : 'display:none'}></div>
  </div>`;
}
